// One AdamW.step (train/optim.ts: gradient gather, norm, fused update in the parameter arena) over
// the trainable parameter list of a GKGNet, the same tensors as bench/pytorch/kernels.py steps with
// torch.optim.AdamW: large is GKGNet-S at 448 (356 tensors, 34 017 840 values, spec models.md §4.6),
// small and tiny the same layout with narrower widths (about 1 M and 50 k values). Gradients are
// random, set once. No clipping (torch's AdamW has none). GB/s over 28 bytes per value: parameter,
// exp_avg and exp_avg_sq read and written, gradient read. Shape: [values, tensors].
import { Tensor } from '../engine/tensor.js';
import { keep } from '../engine/context.js';
import { AdamW } from '../train/optim.js';
import type { BenchSize, Family } from './common.js';

interface Layout {
  widths: [number, number, number, number];
  blocks: [number, number, number, number];
  labels: number;
  side: number;
}

const LAYOUTS: Record<BenchSize, Layout> = {
  tiny: { widths: [4, 8, 16, 32], blocks: [1, 1, 1, 1], labels: 8, side: 32 },
  small: { widths: [16, 32, 64, 112], blocks: [2, 2, 6, 2], labels: 80, side: 224 },
  large: { widths: [80, 160, 400, 640], blocks: [2, 2, 6, 2], labels: 80, side: 448 },
};

/**
 * GKGNet's trainable tensors in the order of its state dict: stem, pos_embed, label embedding, then
 * per stage the downsample, the ViG blocks (Grapher fc1, grouped graph_conv, fc2; FFN fc1, fc2 —
 * each conv weight, bias, BN weight, BN bias), the cross-level module (same layout) and the label
 * Linear; the head's two Linears.
 */
export function gkgnetShapes({ widths, blocks, labels, side }: Layout): number[][] {
  const c0 = widths[0];
  const convBn = (o: number, i: number, k: number) => [[o, i, k, k], [o], [o], [o]];
  const block = (c: number) => [[c, c], [2 * c, c / 2], [c, 2 * c], [4 * c, c], [c, 4 * c]].flatMap(([o, i]) => convBn(o, i, 1));
  const out = [...convBn(c0 / 2, 3, 3), ...convBn(c0, c0 / 2, 3), ...convBn(c0, c0, 3), [1, c0, side / 4, side / 4], [labels, c0]];
  widths.forEach((c, i) => {
    if (i > 0) out.push(...convBn(c, widths[i - 1], 3));
    for (let j = 0; j < blocks[i]; j++) out.push(...block(c));
    out.push(...block(c));
    if (i < 3) out.push([widths[i + 1], c], [widths[i + 1]]);
  });
  out.push([labels, widths[3]], [labels], [labels, widths[3]], [labels]);
  return out;
}

export const bench: Family = async (ctx) => {
  const shapes = gkgnetShapes(LAYOUTS[ctx.size]);
  const params = shapes.map((s, i) => {
    const p = Tensor.randn(s, 2 * i + 1, 0.02).param(`p${i}`);
    p.grad = keep(Tensor.randn(s, 2 * i + 2, 1e-3));
    return p;
  });
  const values = params.reduce((a, p) => a + p.size, 0);
  const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.05 });
  await ctx.measure({ name: 'adamw', shape: [values, params.length], bytes: 28 * values }, () => opt.step());
  opt.release();
  for (const p of params) {
    p.grad?.release();
    p.release();
  }
};
