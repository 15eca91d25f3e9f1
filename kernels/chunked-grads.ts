// Parameter gradients summed in chunks (of images for a conv's dw, of rows for LayerNorm's): on a
// CPU adapter a workgroup is one CPU thread, so a gradient with few output tiles splits its sum
// until enough workgroups run; the chunks' partial gradients are then added in a fixed order
// (bitwise deterministic).
import { Tensor } from '../engine/tensor.js';
import type { PendingGrads } from '../engine/autograd.js';
import { sum } from './reduce.js';

/** Images per chunk and the number of chunks for `tiles` workgroups per chunk and about `target` workgroups in all. */
export function imageChunks(B: number, tiles: number, target: number): { perChunk: number; splits: number } {
  const perChunk = Math.ceil(B / Math.max(1, Math.min(B, Math.ceil(target / tiles))));
  return { perChunk, splits: Math.ceil(B / perChunk) };
}

/**
 * A weight gradient shaped `wshape` (and a bias gradient [wshape[0]] with `biasGrad`) that `run`
 * computes in `splits` chunks: unsplit, straight into the parameters' gradient homes (inputs 1 and
 * 2) when they have them; split, one partial per chunk, then the chunks added in a fixed order.
 */
export function chunkedWeightGrad(
  wshape: number[], biasGrad: boolean, splits: number, pending: PendingGrads, run: (dw: Tensor, db: Tensor | null) => void, op = 'conv2d',
): [Tensor, Tensor | null] {
  const Cout = wshape[0];
  const partial = (splits === 1 && pending.home(1)) || Tensor.empty(splits === 1 ? wshape : [splits, ...wshape], 'f32', `${op} dw`);
  const dbPartial = biasGrad ? (splits === 1 && pending.home(2)) || Tensor.empty(splits === 1 ? [Cout] : [splits, Cout], 'f32', `${op} db`) : null;
  run(partial, dbPartial);
  if (splits === 1) return [partial, dbPartial];
  const [dw, db] = [sum(partial, 0), dbPartial && sum(dbPartial, 0)];
  partial.release();
  dbPartial?.release();
  return [dw, db];
}
