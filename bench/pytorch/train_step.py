#!/usr/bin/env python3
"""Official-code reference for `webvig bench --suite train --size large --json` (or one `--case`).

One training step of the official models on a fixed random batch already on the device, as
bench/train.ts times webvig's: forward, the GKGNet loss (LS-BCE + 10 x ASL), backward, global-norm
clipping at 5.0, AdamW (the official config: lr 1e-4, wd 0.05, no decay on norms and biases), in
mmcv's OptimizerHook order (zero_grad after the forward). Each sample is the wall clock of one step
ending in a device synchronisation; the median is reported with images/s, in webvig's JSON shape:
{"device": {...}, "suite": "train", "config": {...}, "results": [{"name": "gkgnet-s@448", ...}]}.

The models come from the official code, never part of this repository (bench/pytorch/official.py
imports it without mmcv or timm):
  REPO         a checkout of jin-s13/GKGNet (or the copy bench/gpu/prepare-cache.sh makes in .cache/)
  --vig-repo   a checkout of huawei-noah/Efficient-AI-Backbones, for vig-s (pvig_s_224_gelu, 80
               outputs, GKGNet's loss terms); without it the vig-s case is skipped with a note
Precision: fp32 with TF32 off by default (what webvig's f32 kernels compute); --tf32 allows TF32 in
cuBLAS and cuDNN; --amp runs the official recipe's fp16 autocast with dynamic loss scaling.
--device cpu (with --threads) runs anywhere, e.g. a small --case as a check of the script itself.
"""
import argparse
import contextlib
import json
import statistics
import sys
import time

import torch

import official

LABELS = 80
# bench/train.ts CASES.large: (model, input side, batch).
CASES = [('gkgnet-s', 224, 32), ('gkgnet-s', 448, 16), ('gkgnet-t', 448, 16), ('vig-s', 224, 64)]
MODELS = ('gkgnet-tiny', 'gkgnet-t', 'gkgnet-s', 'vig-s')


def parse_case(spec):
    """MODEL@SIZE:BATCH, as webvig's --case."""
    try:
        name, rest = spec.split('@')
        size, batch = (int(v) for v in rest.split(':'))
    except ValueError:
        sys.exit(f'train_step.py: --case {spec}: expected MODEL@SIZE:BATCH, e.g. gkgnet-t@224:4')
    if name not in MODELS:
        sys.exit(f'train_step.py: --case {spec}: model must be one of {", ".join(MODELS)}')
    return name, size, batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('repo', help='a checkout of the official GKGNet repository (jin-s13/GKGNet)')
    p.add_argument('--vig-repo', help='a checkout of huawei-noah/Efficient-AI-Backbones, for vig-s')
    p.add_argument('--case', action='append', help='MODEL@SIZE:BATCH instead of the large cases (repeatable)')
    p.add_argument('--only', help='comma-separated case names of the large cases, e.g. gkgnet-s@448')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps per model (default: 3)')
    p.add_argument('--iters', type=int, default=10, help='timed steps per model; the median is reported (default: 10)')
    p.add_argument('--amp', action='store_true', help='fp16 autocast + dynamic loss scaling (the official recipe)')
    p.add_argument('--tf32', action='store_true', help='allow TF32 in cuBLAS and cuDNN (default: true fp32)')
    p.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    p.add_argument('--threads', type=int, help='CPU threads (torch.set_num_threads)')
    args = p.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('train_step.py: no CUDA device (use --device cpu)')
    if args.device == 'cpu':
        if args.amp:
            sys.exit('train_step.py: --amp needs --device cuda')
        torch.Tensor.cuda = lambda self, *a, **kw: self  # the official GKGNet forward calls .cuda()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.set_float32_matmul_precision('high' if args.tf32 else 'highest')
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cuda = args.device == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cases = [parse_case(c) for c in args.case] if args.case else CASES
    only = set(args.only.split(',')) if args.only else None

    results = []
    for name, size, batch in cases:
        case = f'{name}@{size}'
        if only is not None and case not in only:
            continue
        if name == 'vig-s' and not args.vig_repo:
            print(f'train_step.py: {case} skipped (no --vig-repo)', file=sys.stderr)
            continue
        # The official constructors print their options: keep stdout for the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            if name == 'vig-s':
                model, losses = official.vig_s(args.repo, args.vig_repo, LABELS)
            else:
                model, losses = official.gkgnet(args.repo, name[len('gkgnet-'):], size, LABELS)
            model = model.to(dev).train()
        opt = official.adamw(model)
        scaler = torch.amp.GradScaler('cuda', enabled=args.amp)
        params = [q for q in model.parameters() if q.requires_grad]
        x = torch.randn(batch, 3, size, size, device=dev)
        y = (torch.rand(batch, LABELS, device=dev) < 0.05).long()

        # mmcv's OptimizerHook order: forward, zero_grad, backward, clip, step. (zero_grad at the end
        # of the step instead made the CPU step ~30 % slower: the forward then runs without last
        # step's gradient buffers, and the backward allocates them again.)
        def step():
            if not args.amp:
                # Plain eager fp32: a disabled GradScaler and autocast still cost time on small steps.
                terms = losses(x, y)
                loss = terms['bce_loss'] + terms['asy_loss']
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 5.0)
                opt.step()
                return
            with torch.autocast(args.device, dtype=torch.float16):
                terms = losses(x, y)
                loss = terms['bce_loss'] + terms['asy_loss']
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            scaler.step(opt)
            scaler.update()

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with contextlib.redirect_stdout(sys.stderr):
            for _ in range(args.warmup):
                step()
            sync()
            samples = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                step()
                sync()
                samples.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(samples)
        row = {'suite': 'train', 'name': case, 'shape': [batch, 3, size, size], 'ms': ms, 'minMs': min(samples),
               'images_per_s': batch * 1000 / ms, 'method': 'wallclock'}
        if cuda:
            row['peak_bytes'] = torch.cuda.max_memory_allocated()
            row['peak_reserved_bytes'] = torch.cuda.max_memory_reserved()
        results.append(row)
        print(f'{case:16s} {ms:10.2f} ms  {batch * 1000 / ms:8.1f} img/s', file=sys.stderr)
        del model, opt, params, x, y
        if cuda:
            torch.cuda.empty_cache()

    precision = 'amp' if args.amp else 'tf32' if args.tf32 else 'fp32'
    adapter = {'vendor': 'nvidia', 'device': torch.cuda.get_device_name(dev)} if cuda else {'vendor': 'cpu', 'threads': torch.get_num_threads()}
    print(json.dumps({
        'device': {
            'adapter': adapter,
            'backend': f'torch {torch.__version__}' + (f' cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}' if cuda else ' cpu'),
            'allow_tf32': args.tf32,
            'amp': args.amp,
        },
        'suite': 'train',
        'config': {'size': 'large' if not args.case else 'case', 'warmup': args.warmup, 'iters': args.iters,
                   'timer': 'wallclock', 'amp': args.amp, 'precision': precision},
        'results': results,
    }))


if __name__ == '__main__':
    main()
