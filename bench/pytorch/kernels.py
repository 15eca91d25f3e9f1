#!/usr/bin/env python3
"""PyTorch reference for `webvig bench --suite kernels --only conv,knn,maxrel,bn,adamw --json`.

The same cases as bench/{conv,knn,maxrel,bn,adamw}.ts (the tables below mirror theirs: keep them in
step), the same work formulas for GFLOP/s and GB/s, the same method as engine/timing.ts (warm-up
calls, then one call per sample with the GPU idle before it, median reported) and the same JSON shape
on stdout: {"device": {...}, "suite": "kernels", "config": {...}, "results": [...]}.

  conv    F.conv2d forward, and forward + backward(dy) into x, weight and bias (cuDNN).
  knn     the official dense form (spec models.md §3.4): normalise both sides per channel group,
          materialise the B·G × N × M distance matrix ‖u‖² − 2·u·v + ‖v‖² + relative_pos, top-k of its
          negation, keep every d-th. Reports the matrix's bytes (dense_bytes) and the peak memory the
          call allocated (peak_bytes) next to webvig's fused_bytes.
  maxrel  max-relative as the official code does it: index rows of the node-major source features,
          subtract the centre, max over the k neighbours; forward, and forward + backward.
  bn      F.batch_norm in train mode; forward, and forward + backward.
  adamw   torch.optim.AdamW(fused=False) step over GKGNet's trainable tensors (34 017 840 values at
          large), gradients random and set once; timed by the wall clock around a synchronize, as
          webvig's step (its copies leave the timed pass, so it is wall-clock timed too).

TF32 is off (cuDNN and cuBLAS), so convolutions and matmuls run true fp32, the arithmetic of WebGPU's
f32 kernels. GPU machine only: never run by the tests.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

K = 9  # neighbours
G = 2  # KNN channel groups

# bench/conv.ts CONFIG: batch, stage-0 width C0, input side.
CONV = {'tiny': (2, 8, 32), 'small': (2, 16, 64), 'large': (16, 80, 448)}
# bench/knn.ts CASES: (B, C, N, M), G = 2.
KNN = {
    'tiny': [(2, 16, 100, 25)],
    'small': [(4, 80, 1024, 64)],
    'large': [(16, 80, 12544, 784), (16, 80, 20736, 1296)],
}
# bench/maxrel.ts SHAPES: (B, C, N, M).
MAXREL = {'tiny': (2, 8, 100, 25), 'small': (4, 32, 1024, 64), 'large': (16, 80, 12544, 784)}
# bench/bn.ts SHAPES.
BN = {'tiny': (2, 8, 7, 9), 'small': (4, 16, 32, 32), 'large': (16, 80, 112, 112)}
# bench/adamw.ts LAYOUTS: widths, blocks, labels, input side.
ADAMW = {
    'tiny': ((4, 8, 16, 32), (1, 1, 1, 1), 8, 32),
    'small': ((16, 32, 64, 112), (2, 2, 6, 2), 80, 224),
    'large': ((80, 160, 400, 640), (2, 2, 6, 2), 80, 448),
}


def conv_cases(size):
    """[name, B, Cin, H, W, Cout, k, stride, groups] of GKGNet's stage 0."""
    b, c0, s = CONV[size]
    return [
        ['conv_stem0', b, 3, s, s, c0 // 2, 3, 2, 1],
        ['conv_stem1', b, c0 // 2, s // 2, s // 2, c0, 3, 2, 1],
        ['conv_stem2', b, c0, s // 4, s // 4, c0, 3, 1, 1],
        ['conv_fc1', b, c0, s // 4, s // 4, 4 * c0, 1, 1, 1],
        ['conv_gconv', b, 2 * c0, s // 4, s // 4, 2 * c0, 1, 1, 4],
    ]


def gkgnet_shapes(widths, blocks, labels, side):
    """GKGNet's trainable tensors in state-dict order (bench/adamw.ts gkgnetShapes)."""
    c0 = widths[0]

    def conv_bn(o, i, k):
        return [[o, i, k, k], [o], [o], [o]]

    def block(c):
        return [s for o, i in [(c, c), (2 * c, c // 2), (c, 2 * c), (4 * c, c), (c, 4 * c)] for s in conv_bn(o, i, 1)]

    out = conv_bn(c0 // 2, 3, 3) + conv_bn(c0, c0 // 2, 3) + conv_bn(c0, c0, 3) + [[1, c0, side // 4, side // 4], [labels, c0]]
    for i, c in enumerate(widths):
        if i > 0:
            out += conv_bn(c, widths[i - 1], 3)
        for _ in range(blocks[i]):
            out += block(c)
        out += block(c)
        if i < 3:
            out += [[widths[i + 1], c], [widths[i + 1]]]
    return out + [[labels, widths[3]], [labels], [labels, widths[3]], [labels]]


def knn_dense(query, source, pos, k, dilation, groups):
    """Official-style dilated KNN: the whole distance matrix, then top-k. Returns [B·G, N, k] int64."""
    b, c, n = query.shape
    m = source.shape[2]
    q = F.normalize(query.reshape(b * groups, c // groups, n), dim=1).transpose(1, 2)   # [R, N, cg]
    s = F.normalize(source.reshape(b * groups, c // groups, m), dim=1).transpose(1, 2)  # [R, M, cg]
    dist = q.pow(2).sum(-1, keepdim=True) - 2 * torch.matmul(q, s.transpose(1, 2)) + s.pow(2).sum(-1).unsqueeze(1)
    if pos is not None:
        dist = dist + pos
    return torch.topk(-dist, k * dilation, dim=-1).indices[:, :, ::dilation]


def max_relative(x, y, idx, groups):
    """R[b, c, n] = max_t y[b, c, idx[b·G + g(c), n, t]] − x[b, c, n] by row indexing + max."""
    b, c, n = x.shape
    m = y.shape[2]
    rows, cg, k = b * groups, c // groups, idx.shape[2]
    nodes = y.reshape(rows, cg, m).transpose(1, 2).reshape(rows * m, cg)   # one row per source node
    flat = (idx + torch.arange(rows, device=idx.device).view(rows, 1, 1) * m).reshape(-1)
    neighbours = nodes[flat].view(rows, n, k, cg).permute(0, 3, 1, 2)      # [R, cg, N, k]
    centres = x.reshape(rows, cg, n, 1)
    return torch.max(neighbours - centres, dim=-1).values.reshape(b, c, n)


class Bench:
    def __init__(self, warmup, iters):
        self.warmup = warmup
        self.iters = iters
        self.results = []

    def time(self, fn, method):
        for _ in range(self.warmup):
            fn()
        torch.cuda.synchronize()
        samples = []
        for _ in range(self.iters):
            if method == 'cuda-events':
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                torch.cuda.synchronize()
                samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples), min(samples)

    def measure(self, name, shape, fn, flops=None, nbytes=None, extra=None, method='cuda-events'):
        ms, min_ms = self.time(fn, method)
        r = {'suite': 'kernels', 'name': name, 'shape': list(shape), 'ms': ms, 'minMs': min_ms}
        if flops is not None:
            r['gflops'] = flops / (ms * 1e6)
        if nbytes is not None:
            r['gbps'] = nbytes / (ms * 1e6)
        r.update(extra or {})
        r['method'] = method
        self.results.append(r)
        print(f"{name:20s} {str(list(shape)):28s} {ms:10.4f} ms", file=sys.stderr)


def release_grads(*tensors):
    for t in tensors:
        t.grad = None


def bench_conv(bench, size, dev):
    for name, b, cin, h, w, cout, k, stride, groups in conv_cases(size):
        pad = (k - 1) // 2
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        flops = 2 * b * cout * ho * wo * (cin // groups) * k * k
        shape = [b, cin, h, w, cout, k, stride, groups]
        x = torch.randn(b, cin, h, w, device=dev)
        wt = torch.randn(cout, cin // groups, k, k, device=dev) * math.sqrt(2 / ((cin // groups) * k * k))
        bias = torch.randn(cout, device=dev)
        dy = torch.randn(b, cout, ho, wo, device=dev)

        def fwd():
            with torch.no_grad():
                F.conv2d(x, wt, bias, stride, pad, 1, groups)

        bench.measure(name, shape, fwd, flops=flops)
        for t in (x, wt, bias):
            t.requires_grad_(True)

        def fwd_bwd():
            F.conv2d(x, wt, bias, stride, pad, 1, groups).backward(dy)
            release_grads(x, wt, bias)

        bench.measure(f'{name}_fwd_bwd', shape, fwd_bwd, flops=3 * flops)
        del x, wt, bias, dy


def bench_knn(bench, size, dev):
    for b, c, n, m in KNN[size]:
        rows = b * G
        query = torch.randn(b, c, n, device=dev)
        source = torch.randn(b, c, m, device=dev)
        pos = torch.rand(n, m, device=dev) * 2 - 1

        def call():
            with torch.no_grad():
                return knn_dense(query, source, pos, K, 1, G)

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        idx = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del idx
        bench.measure('knn', [rows, n, m, c // G, K], call, flops=2 * rows * n * m * (c // G),
                      extra={'dense_bytes': rows * n * m * 4, 'peak_bytes': peak})
        del query, source, pos


def bench_maxrel(bench, size, dev):
    b, c, n, m = MAXREL[size]
    shape = [b, c, n, m, G, K]
    x = torch.randn(b, c, n, device=dev)
    y = torch.randn(b, c, m, device=dev)
    g = torch.randn(b, c, n, device=dev)
    with torch.no_grad():
        idx = knn_dense(x, y, None, K, 1, G)
    # Each direction moves two [B, C, N] tensors, one [B, C, M] and the indices (counted as int32, as webvig's).
    per_pass = 4 * (2 * b * c * n + b * c * m + b * G * n * K)

    def fwd():
        with torch.no_grad():
            max_relative(x, y, idx, G)

    bench.measure('maxrel', shape, fwd, nbytes=per_pass)
    x.requires_grad_(True)
    y.requires_grad_(True)

    def fwd_bwd():
        max_relative(x, y, idx, G).backward(g)
        release_grads(x, y)

    bench.measure('maxrel_fwd_bwd', shape, fwd_bwd, nbytes=2 * per_pass)


def bench_bn(bench, size, dev):
    shape = list(BN[size])
    c = shape[1]
    n = math.prod(shape)
    x = torch.randn(*shape, device=dev)
    dy = torch.randn(*shape, device=dev)
    weight = torch.rand(c, device=dev) + 0.5
    bias = torch.randn(c, device=dev)
    running_mean = torch.zeros(c, device=dev)
    running_var = torch.ones(c, device=dev)

    def bn():
        return F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=0.1, eps=1e-5)

    def fwd():
        with torch.no_grad():
            bn()

    bench.measure('bn_train', shape, fwd, nbytes=2 * n * 4)
    for t in (x, weight, bias):
        t.requires_grad_(True)

    def fwd_bwd():
        bn().backward(dy)
        release_grads(x, weight, bias)

    bench.measure('bn_train_fwd_bwd', shape, fwd_bwd, nbytes=5 * n * 4)


def bench_adamw(bench, size, dev):
    shapes = gkgnet_shapes(*ADAMW[size])
    params = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(*s, device=dev) * 0.02)
        p.grad = torch.randn(*s, device=dev) * 1e-3
        params.append(p)
    values = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, fused=False)
    bench.measure('adamw', [values, len(params)], opt.step, nbytes=28 * values, method='wallclock')


FAMILIES = {'conv': bench_conv, 'knn': bench_knn, 'maxrel': bench_maxrel, 'bn': bench_bn, 'adamw': bench_adamw}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', choices=['tiny', 'small', 'large'], default='large', help='case table (default: large)')
    p.add_argument('--only', default=','.join(FAMILIES), help=f'comma-separated families (default: {",".join(FAMILIES)})')
    p.add_argument('--warmup', type=int, default=3, help='untimed calls per case (default: 3)')
    p.add_argument('--iters', type=int, default=10, help='timed calls per case; the median is reported (default: 10)')
    p.add_argument('--cudnn-benchmark', action='store_true', help='let cuDNN time its algorithms during warm-up (default: off, PyTorch\'s default)')
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit('bench/pytorch/kernels.py: no CUDA device')
    only = [f.strip() for f in args.only.split(',') if f.strip()]
    unknown = [f for f in only if f not in FAMILIES]
    if unknown:
        sys.exit(f'bench/pytorch/kernels.py: --only: no family {", ".join(unknown)}; families: {", ".join(FAMILIES)}')

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    torch.set_float32_matmul_precision('highest')
    torch.manual_seed(0)
    dev = torch.device('cuda')

    bench = Bench(args.warmup, args.iters)
    for name in only:
        FAMILIES[name](bench, args.size, dev)
        torch.cuda.empty_cache()

    print(json.dumps({
        'device': {
            'adapter': {'vendor': 'nvidia', 'device': torch.cuda.get_device_name(dev)},
            'backend': f'torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}',
            'allow_tf32': torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32,
            'cudnn_benchmark': args.cudnn_benchmark,
        },
        'suite': 'kernels',
        'config': {'size': args.size, 'only': only, 'warmup': args.warmup, 'iters': args.iters, 'timer': 'cuda-events'},
        'results': bench.results,
    }))


if __name__ == '__main__':
    main()
