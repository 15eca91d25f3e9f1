"""The official models of the train-step benchmarks, built from their checkouts without mmcv or timm.

GKGNet (jin-s13/GKGNet) comes through scripts/fixtures/make_gkgnet_fixture.py's stand-ins (registries,
BatchNorm for SyncBN, DropPath), Pyramid ViG-S (huawei-noah/Efficient-AI-Backbones, vig_pytorch/)
through the few timm names it imports. Both checkouts are read, never copied into this repository;
`bench/gpu/prepare-cache.sh` copies the files these imports need into the ignored `.cache/`, so that
the GPU machine (no network, no mmcv) runs them with PyTorch alone.

Each builder returns (model, losses(x, y) -> {'bce_loss', 'asy_loss'}): the official GKGNet loss, the
head's label-smoothed BCE + 10 x ASL (gamma_neg 2, clip 0.05), for every model as webvig's train
suite uses it. `adamw()` is the official optimizer config: AdamW lr 1e-4, wd 0.05, eps 1e-8, with no
decay on biases and norm parameters (mmcv's paramwise_cfg norm_decay_mult = bias_decay_mult = 0).
"""
import os
import sys
import types

import numpy as np
import torch
from torch import nn

if not hasattr(np, 'float'):
    np.float = float  # the official pos_embed code predates NumPy 1.24

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts', 'fixtures'))
from make_gkgnet_fixture import load_official, EasyDict  # noqa: E402

ASL = dict(gamma_pos=0.0, gamma_neg=2.0, clip=0.05)
# webvig's gkgnet-tiny (models/gkgnet.ts): the official arch dict at widths 8/16/32/48, one block a stage.
TINY = {'k': 4, 'conv': 'mr', 'act': 'gelu', 'norm': 'batch', 'bias': True, 'dropout': 0.0, 'use_dilation': True,
        'epsilon': 0.2, 'use_stochastic': False, 'blocks': [1, 1, 1, 1], 'channels': [8, 16, 32, 48], 'emb_dims': 1024}

_official = None


def official(repo):
    """(gkgnet module, label_query_head module, mmcls AsymmetricLoss, mmcls LabelSmoothLoss), imported once."""
    global _official
    if _official is None:
        if not os.path.isfile(os.path.join(repo, 'mmcls', 'models', 'backbones', 'gkgnet.py')):
            sys.exit(f'{repo}: not a GKGNet checkout (no mmcls/models/backbones/gkgnet.py)')
        gk, lq, _, _ = load_official(repo)
        gk.GKGNet.arch_settings['tiny'] = EasyDict(TINY)
        losses = sys.modules['mmcls.models.losses.asymmetric_loss'], sys.modules['mmcls.models.losses.label_smooth_loss']
        _official = gk, lq, losses[0].AsymmetricLoss, losses[1].LabelSmoothLoss
    return _official


def gkgnet(repo, choice, size, labels):
    """The official GKGNet backbone + LabelQueryHead: 'tiny' (webvig's), 't' or 's' (gkgnet_coco_576.py: k 9,
    k_label_gcn 9, drop path 0.1)."""
    gk, lq, _, _ = official(repo)
    if choice == 'tiny':
        backbone = gk.GKGNet(choice='tiny', k=4, k_label_gcn=4, num_group=2, drop_path=0.0, n_classes=labels, size=size)
    else:
        backbone = gk.GKGNet(choice=choice, k=9, k_label_gcn=9, num_group=2, drop_path=0.1, n_classes=labels, size=size)
    head = lq.LabelQueryHead(num_classes=labels, in_channels=gk.GKGNet.arch_settings[choice].channels[-1],
                             loss=dict(type='AsymmetricLoss', **ASL), topk=(1, 1))
    model = nn.ModuleDict({'backbone': backbone, 'head': head})
    return model, lambda x, y: head.forward_train(backbone(x), y)


def vig_s(repo, vig_repo, labels, drop_path=0.1):
    """Pyramid ViG-S (pvig_s_224_gelu) with `labels` outputs, trained with GKGNet's loss terms."""
    _, _, asl_cls, bce_cls = official(repo)
    timm_layers = sys.modules['timm.models.layers']
    timm_layers.to_2tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    timm_layers.trunc_normal_ = nn.init.trunc_normal_
    for name, attrs in {'timm.models.helpers': {'load_pretrained': None},
                        'timm.models.registry': {'register_model': lambda f: f}}.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
    path = os.path.join(os.path.abspath(vig_repo), 'vig_pytorch')
    if not os.path.isfile(os.path.join(path, 'pyramid_vig.py')):
        sys.exit(f'{vig_repo}: not an Efficient-AI-Backbones checkout (no vig_pytorch/pyramid_vig.py)')
    sys.path.insert(0, path)
    import pyramid_vig  # noqa: E402
    model = pyramid_vig.pvig_s_224_gelu(num_classes=labels, drop_path_rate=drop_path)
    asl = asl_cls(**ASL)
    bce = bce_cls(label_smooth_val=0.1, mode='multi_label', reduction='mean')

    def losses(x, y):
        score = model(x)
        return {'bce_loss': bce(score, y, avg_factor=len(score)), 'asy_loss': asl(score, y, avg_factor=len(score)) * 10.0}

    return model, losses


def adamw(model, lr=1e-4, weight_decay=0.05):
    """The official optimizer: no weight decay on biases and on the parameters of norm layers."""
    decay, no_decay = [], []
    for module in model.modules():
        norm = isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))
        for name, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                (no_decay if norm or name == 'bias' else decay).append(p)
    return torch.optim.AdamW([{'params': decay}, {'params': no_decay, 'weight_decay': 0.0}],
                             lr=lr, weight_decay=weight_decay, eps=1e-8, betas=(0.9, 0.999))

