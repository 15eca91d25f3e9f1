#!/bin/sh
# Copy the parts of the official checkouts that bench/pytorch/train_step.py imports (through
# bench/pytorch/official.py: no mmcv, no timm) into the ignored .cache/, so that they can travel
# to the GPU machine (no network there) in the device tool's carry: under 0.2 MB.
#   bench/gpu/prepare-cache.sh GKGNET_CHECKOUT EFFICIENT_AI_BACKBONES_CHECKOUT
set -eu
[ $# -eq 2 ] || { echo "usage: $0 GKGNET_CHECKOUT EFFICIENT_AI_BACKBONES_CHECKOUT" >&2; exit 2; }
gkg=$1
vig=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -f "$gkg/mmcls/models/backbones/gkgnet.py" ] || { echo "$gkg: not a jin-s13/GKGNet checkout (no mmcls/models/backbones/gkgnet.py)" >&2; exit 2; }
[ -f "$vig/vig_pytorch/pyramid_vig.py" ] || { echo "$vig: not a huawei-noah/Efficient-AI-Backbones checkout (no vig_pytorch/pyramid_vig.py)" >&2; exit 2; }
rm -rf "$root/.cache/GKGNet" "$root/.cache/Efficient-AI-Backbones"
copy() { # copy SRC_ROOT DST_ROOT PATH...
  src=$1; dst=$2; shift 2
  for p in "$@"; do
    mkdir -p "$dst/$(dirname "$p")"
    cp -R "$src/$p" "$dst/$p"
  done
}
m=mmcls/models
copy "$gkg" "$root/.cache/GKGNet" \
  $m/backbones/gkgnet.py $m/backbones/base_backbone.py $m/backbones/vig_model \
  $m/heads/base_head.py $m/heads/cls_head.py $m/heads/label_query_head.py \
  $m/losses/utils.py $m/losses/cross_entropy_loss.py $m/losses/label_smooth_loss.py $m/losses/asymmetric_loss.py
copy "$vig" "$root/.cache/Efficient-AI-Backbones" vig_pytorch/pyramid_vig.py vig_pytorch/gcn_lib
find "$root/.cache" -name __pycache__ -prune -exec rm -rf {} +
du -sh "$root/.cache/GKGNet" "$root/.cache/Efficient-AI-Backbones"
