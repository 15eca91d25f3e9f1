#!/usr/bin/env python3
"""PyTorch fp32 SGEMM reference for `webvig bench --suite kernels --size large --only matmul --json`.

Same cases (square C = A @ B, shape [M, K, N], 2*M*K*N FLOPs), same method as engine/timing.ts (warm-up
calls, then one call per sample with the GPU idle before it, median reported), and the same JSON
shape on stdout: {"device": {...}, "suite": "kernels", "config": {...}, "results": [...]}.
TF32 is off so that cuBLAS runs true fp32 SGEMM, the arithmetic WebGPU's f32 kernels perform.
GPU machine only: never run by the tests.
"""
import argparse
import json
import statistics
import sys

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', default='1024,2048,4096', help='comma-separated square sizes (default: 1024,2048,4096)')
    p.add_argument('--warmup', type=int, default=3, help='untimed calls per case (default: 3)')
    p.add_argument('--iters', type=int, default=10, help='timed calls per case; the median is reported (default: 10)')
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit('bench/pytorch/matmul.py: no CUDA device')

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    dev = torch.device('cuda')

    sizes = [int(s) for s in args.sizes.split(',')]
    results = []
    for n in sizes:
        g = torch.Generator(device=dev).manual_seed(0)
        a = torch.randn(n, n, device=dev, generator=g)
        b = torch.randn(n, n, device=dev, generator=g)
        out = torch.empty(n, n, device=dev)
        for _ in range(args.warmup):
            torch.matmul(a, b, out=out)
        torch.cuda.synchronize()
        samples = []
        for _ in range(args.iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.matmul(a, b, out=out)
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        ms = statistics.median(samples)
        results.append({
            'suite': 'kernels', 'name': 'matmul', 'shape': [n, n, n], 'ms': ms, 'minMs': min(samples),
            'gflops': 2 * n ** 3 / (ms * 1e6), 'method': 'cuda-events',
        })

    print(json.dumps({
        'device': {
            'adapter': {'vendor': 'nvidia', 'device': torch.cuda.get_device_name(dev)},
            'backend': f'torch {torch.__version__} cuda {torch.version.cuda}',
            'allow_tf32': torch.backends.cuda.matmul.allow_tf32,
        },
        'suite': 'kernels',
        'config': {'sizes': sizes, 'warmup': args.warmup, 'iters': args.iters, 'timer': 'cuda-events'},
        'results': results,
    }))


if __name__ == '__main__':
    main()
