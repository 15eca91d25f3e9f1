#!/usr/bin/env python3
"""Official-code reference for `webvig bench --suite train --size large --json`.

One training step of the official models on a fixed random batch already on the GPU, as
bench/train.ts times webvig's: forward, the GKGNet loss (LS-BCE + 10 x ASL), backward, global-norm
clipping at 5.0, AdamW (lr 1e-4, wd 0.05, no decay on norms and biases: the official optimizer
config), zero_grad. Each sample is the wall clock of one step ending in torch.cuda.synchronize();
the median is reported with images/s, in the same JSON shape:
{"device": {...}, "suite": "train", "config": {...}, "results": [{"name": "gkgnet-s@448", ...}]}.

The models come from the official code, which is never part of this repository; pass its location:
  REPO         a checkout of jin-s13/GKGNet (mmcls 0.x based; needs mmcv 1.x importable, as its README
               installs). gkgnet-s and gkgnet-t are built from configs/gkgnet/gkgnet_coco_576.py with
               the backbone's `choice` and `size` replaced and no pretrained checkpoint.
  --vig-repo   a checkout of huawei-noah/Efficient-AI-Backbones (vig_pytorch/, needs timm) for vig-s
               (pvig_s_224_gelu with 80 classes, trained with the same loss and optimizer). Without it
               the vig-s case is skipped with a note on stderr.
fp32 with TF32 off by default (what webvig computes); --amp runs the official recipe's fp16 autocast
with dynamic loss scaling instead. GPU machine only: never run by the tests.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

LABELS = 80
# bench/train.ts CASES.large: (model, input side, batch).
CASES = [('gkgnet-s', 224, 32), ('gkgnet-s', 448, 16), ('gkgnet-t', 448, 16), ('vig-s', 224, 64)]
CONFIG = 'configs/gkgnet/gkgnet_coco_576.py'


def fail(msg):
    sys.exit(f'bench/pytorch/train_step.py: {msg}')


def import_official(repo):
    """mmcls from the checkout (not an installed copy), and mmcv's helpers."""
    if not os.path.isfile(os.path.join(repo, CONFIG)):
        fail(f'{repo} is not a GKGNet checkout (no {CONFIG})')
    sys.path.insert(0, os.path.abspath(repo))
    try:
        from mmcv import Config
        from mmcv.runner import build_optimizer
        from mmcls.models import build_classifier
        from mmcls.models.losses import AsymmetricLoss, LabelSmoothLoss
    except ImportError as e:
        fail(f'cannot import the official code from {repo} ({e}); it needs mmcv 1.x (the repo README: mmcv-full==1.5.0)')
    try:
        from mmcv.cnn.utils import revert_sync_batchnorm
    except ImportError:
        revert_sync_batchnorm = None
    cfg = Config.fromfile(os.path.join(repo, CONFIG))
    return cfg, build_classifier, build_optimizer, (AsymmetricLoss, LabelSmoothLoss), revert_sync_batchnorm


def gkgnet(official, choice, size):
    """The official classifier; its forward with return_loss=True returns {bce_loss, asy_loss}."""
    cfg, build_classifier, _, _, revert = official
    m = cfg.model.copy()
    m.backbone = dict(m.backbone, choice=choice, size=size, init_cfg=None)
    m.head = dict(m.head, in_channels={'s': 640, 't': 384}[choice])
    model = build_classifier(m)
    model.init_weights()
    # Every norm is SyncBN; on one process it is plain BN over the batch, as in webvig.
    if revert is not None:
        model = revert(model)
    return model, lambda x, y: model(img=x, gt_label=y, return_loss=True)


def vig_s(official, vig_repo):
    """Pyramid ViG-S with an 80-label head, trained with GKGNet's loss terms."""
    sys.path.insert(0, os.path.join(os.path.abspath(vig_repo), 'vig_pytorch'))
    try:
        import pyramid_vig
    except ImportError as e:
        fail(f'cannot import vig_pytorch/pyramid_vig.py from {vig_repo} ({e}); it needs timm')
    drop_path = official[0].model.backbone.drop_path
    model = pyramid_vig.pvig_s_224_gelu(num_classes=LABELS, drop_path_rate=drop_path)
    asl_cls, bce_cls = official[3]
    head = official[0].model.head
    asl = asl_cls(**{k: v for k, v in head.loss.items() if k != 'type'})
    bce = bce_cls(label_smooth_val=0.1, mode='multi_label', reduction='mean')

    def losses(x, y):
        score = model(x)
        return {'bce_loss': bce(score, y, avg_factor=len(score)), 'asy_loss': asl(score, y, avg_factor=len(score)) * 10.0}

    return model, losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('repo', help='path to a checkout of the official GKGNet repository (jin-s13/GKGNet)')
    p.add_argument('--vig-repo', help='path to a checkout of huawei-noah/Efficient-AI-Backbones, for vig-s')
    p.add_argument('--only', help='comma-separated case names, e.g. gkgnet-s@448 (default: all)')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps per model (default: 3)')
    p.add_argument('--iters', type=int, default=10, help='timed steps per model; the median is reported (default: 10)')
    p.add_argument('--amp', action='store_true', help='fp16 autocast + dynamic loss scaling (the official recipe) instead of fp32')
    args = p.parse_args()
    if not torch.cuda.is_available():
        fail('no CUDA device')
    with contextlib.redirect_stdout(sys.stderr):
        official = import_official(args.repo)
    _, _, build_optimizer, _, _ = official

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision('highest')
    torch.manual_seed(0)
    dev = torch.device('cuda')
    only = set(args.only.split(',')) if args.only else None

    results = []
    for name, size, batch in CASES:
        case = f'{name}@{size}'
        if only is not None and case not in only:
            continue
        if name == 'vig-s' and not args.vig_repo:
            print(f'train_step.py: {case} skipped (no --vig-repo)', file=sys.stderr)
            continue
        # The official constructors print their options: keep stdout for the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            model, losses = vig_s(official, args.vig_repo) if name == 'vig-s' else gkgnet(official, name[-1], size)
            model = model.to(dev).train()
            opt = build_optimizer(model, official[0].optimizer)
        scaler = torch.amp.GradScaler('cuda', enabled=args.amp)
        params = [q for q in model.parameters() if q.requires_grad]
        x = torch.randn(batch, 3, size, size, device=dev)
        y = (torch.rand(batch, LABELS, device=dev) < 0.05).float()

        def step():
            with torch.autocast('cuda', dtype=torch.float16, enabled=args.amp):
                # The summed loss terms (mmcls' _parse_losses would also read every term back).
                loss = sum(losses(x, y).values())
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([q for q in params if q.grad is not None], 5.0)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)

        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        samples = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            samples.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(samples)
        results.append({
            'suite': 'train', 'name': case, 'shape': [batch, 3, size, size], 'ms': ms, 'minMs': min(samples),
            'images_per_s': batch * 1000 / ms, 'peak_bytes': torch.cuda.max_memory_allocated(), 'method': 'wallclock',
        })
        print(f'{case:16s} {ms:10.2f} ms  {batch * 1000 / ms:8.1f} img/s', file=sys.stderr)
        del model, opt, params, x, y
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    print(json.dumps({
        'device': {
            'adapter': {'vendor': 'nvidia', 'device': torch.cuda.get_device_name(dev)},
            'backend': f'torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()}',
            'allow_tf32': False,
            'amp': args.amp,
        },
        'suite': 'train',
        'config': {'size': 'large', 'warmup': args.warmup, 'iters': args.iters, 'timer': 'wallclock', 'amp': args.amp},
        'results': results,
    }))


if __name__ == '__main__':
    main()
