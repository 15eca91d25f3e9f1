#!/usr/bin/env python3
"""Convert an official PyTorch checkpoint (.pth / .pth.tar) to safetensors for webvig, and back.

Needs PyTorch and the `safetensors` package (pip install torch safetensors); webvig itself does not.

  python3 scripts/convert_checkpoint.py to-safetensors pvig_s_82.1.pth.tar pvig_s.safetensors [--prefix backbone.]
  python3 scripts/convert_checkpoint.py to-pth last.safetensors gkgnet.pth

Keys are kept as they are (official state-dict names). A checkpoint that wraps its weights in
`state_dict` / `model` / `module.` is unwrapped. `--prefix` prepends a string to every key, e.g. to
load Pyramid ViG ImageNet weights into GKGNet's `backbone.` (webvig loads non-strictly and skips
shape mismatches such as pos_embed and relative_pos at another input size). Optimizer state written
by webvig (`optimizer.*` keys) is dropped when converting back to .pth.
"""
import argparse

import torch
from safetensors.torch import load_file, save_file


def unwrap(obj):
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items() if torch.is_tensor(v)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("direction", choices=["to-safetensors", "to-pth"])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--prefix", default="", help="prepend to every key (to-safetensors)")
    a = ap.parse_args()
    if a.direction == "to-safetensors":
        sd = unwrap(torch.load(a.src, map_location="cpu", weights_only=True))
        out = {a.prefix + k: v.detach().float().contiguous() if v.is_floating_point() else v.contiguous() for k, v in sd.items()}
        save_file(out, a.dst, metadata={"format": "pt"})
    else:
        sd = {k: v for k, v in load_file(a.src).items() if not k.startswith("optimizer.")}
        torch.save(sd, a.dst)
    print(f"wrote {a.dst}")


if __name__ == "__main__":
    main()
