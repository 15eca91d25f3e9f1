// Convolutions of GKGNet's stage 0 (the same cases as bench/pytorch/kernels.py): the three stem convs
// (3×3 s2 3→C0/2, 3×3 s2 C0/2→C0, 3×3 s1 C0→C0), the FFN's dense 1×1 fc1 (C0→4C0) and the Grapher's
// grouped 1×1 graph_conv (2C0→2C0, groups 4), all with bias. `<conv>` times the forward pass,
// `<conv>_fwd_bwd` forward then backward(y, dy): dX, dW and db, 3× the forward FLOPs (db ignored).
// Shape: [B, Cin, H, W, Cout, k, stride, groups] (k×k kernel, padding (k − 1)/2).
import { noGrad } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { backward } from '../kernels/backward.js';
import { conv2d } from '../kernels/conv2d.js';
import type { BenchSize, Family } from './common.js';

/** Batch, stage-0 width C0 and input side (stage 0 runs at side/4). large: GKGNet-S at 448. */
const CONFIG: Record<BenchSize, { B: number; C0: number; side: number }> = {
  tiny: { B: 2, C0: 8, side: 32 },
  small: { B: 2, C0: 16, side: 64 },
  large: { B: 16, C0: 80, side: 448 },
};

type Conv = [name: string, B: number, Cin: number, H: number, W: number, Cout: number, k: number, stride: number, groups: number];

/** The cases of one size (bench/pytorch/kernels.py lists the same). */
function convCases(size: BenchSize): Conv[] {
  const { B, C0, side: s } = CONFIG[size];
  return [
    ['conv_stem0', B, 3, s, s, C0 / 2, 3, 2, 1],
    ['conv_stem1', B, C0 / 2, s / 2, s / 2, C0, 3, 2, 1],
    ['conv_stem2', B, C0, s / 4, s / 4, C0, 3, 1, 1],
    ['conv_fc1', B, C0, s / 4, s / 4, 4 * C0, 1, 1, 1],
    ['conv_gconv', B, 2 * C0, s / 4, s / 4, 2 * C0, 1, 1, 4],
  ];
}

export const bench: Family = async (ctx) => {
  for (const [name, B, Cin, H, W, Cout, k, stride, groups] of convCases(ctx.size)) {
    const padding = (k - 1) / 2;
    const Ho = Math.floor((H + 2 * padding - k) / stride) + 1;
    const Wo = Math.floor((W + 2 * padding - k) / stride) + 1;
    const flops = 2 * B * Cout * Ho * Wo * (Cin / groups) * k * k;
    const shape = [B, Cin, H, W, Cout, k, stride, groups];
    const x = Tensor.randn([B, Cin, H, W], 1);
    const w = Tensor.randn([Cout, Cin / groups, k, k], 2, Math.sqrt(2 / ((Cin / groups) * k * k)));
    const b = Tensor.randn([Cout], 3);
    const dy = Tensor.randn([B, Cout, Ho, Wo], 4);
    const o = { stride, padding, groups };
    await ctx.measure({ name, shape, flops }, () => noGrad(() => conv2d(x, w, b, o)));
    for (const t of [x, w, b]) t.requiresGrad = true;
    await ctx.measure({ name: `${name}_fwd_bwd`, shape, flops: 3 * flops }, () => {
      backward(conv2d(x, w, b, o), dy);
      for (const t of [x, w, b]) {
        t.grad?.release();
        t.grad = null;
      }
    });
    for (const t of [x, w, b, dy]) t.release();
  }
};
