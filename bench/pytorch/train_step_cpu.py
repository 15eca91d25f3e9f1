"""Official-code GKGNet training step on the CPU, timed like `webvig bench --suite train`.

The model is the official GKGNet (jin-s13/GKGNet checkout given as REPO, imported without mmcv/timm
through scripts/fixtures/make_gkgnet_fixture.py's stand-ins), 80 labels, at webvig's tiny
configuration (`--variant tiny`: widths 8/16/32/48, one block per stage, k = 4, 2 channel groups; the
train suite's size small) or as GKGNet-T (`--variant t`: the official arch, k = 9, k_label 9, drop
path 0.1; webvig's `--case gkgnet-t@224:4`). One step = forward, the head's LS-BCE + 10·ASL,
backward, clipping 5.0, AdamW. Prints one JSON row with img/s (median of --iters).
"""
import argparse, json, os, sys, time
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'fixtures'))
from make_gkgnet_fixture import load_official, EasyDict  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument('repo')
ap.add_argument('--variant', choices=['tiny', 't'], default='tiny')
ap.add_argument('--size', type=int, default=64)
ap.add_argument('--batch', type=int, default=16)
ap.add_argument('--labels', type=int, default=80)
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--warmup', type=int, default=3)
ap.add_argument('--iters', type=int, default=10)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.Tensor.cuda = lambda self, *args, **kw: self  # the official forward calls .cuda()
if not hasattr(np, 'float'):
    np.float = float
gk, lq, _, _ = load_official(a.repo)
gk.GKGNet.arch_settings['tiny'] = EasyDict({
    'k': 4, 'conv': 'mr', 'act': 'gelu', 'norm': 'batch', 'bias': True, 'dropout': 0.0, 'use_dilation': True,
    'epsilon': 0.2, 'use_stochastic': False, 'blocks': [1, 1, 1, 1], 'channels': [8, 16, 32, 48], 'emb_dims': 1024})
if a.variant == 'tiny':
    backbone = gk.GKGNet(choice='tiny', k=4, k_label_gcn=4, num_group=2, drop_path=0.0, n_classes=a.labels, size=a.size)
else:
    backbone = gk.GKGNet(choice='t', k=9, k_label_gcn=9, num_group=2, drop_path=0.1, n_classes=a.labels, size=a.size)
head = lq.LabelQueryHead(num_classes=a.labels, in_channels=gk.GKGNet.arch_settings[a.variant].channels[-1],
                         loss=dict(type='AsymmetricLoss', gamma_pos=0.0, gamma_neg=2.0, clip=0.05), topk=(1, 1))
params = list(backbone.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
img = torch.randn(a.batch, 3, a.size, a.size)
target = (torch.rand(a.batch, a.labels) < 0.1).long()


def step():
    losses = head.forward_train(backbone(img), target)
    loss = losses['bce_loss'] + losses['asy_loss']
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(params, 5.0)
    opt.step()


for _ in range(a.warmup):
    step()
times = []
for _ in range(a.iters):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
ms = float(np.median(times)) * 1e3
print(json.dumps({'name': f'gkgnet-{a.variant}@{a.size}', 'batch': a.batch, 'threads': a.threads, 'ms': ms,
                  'images_per_s': a.batch / ms * 1e3, 'torch': torch.__version__}))
