// Parameter gradients summed in chunks (of images for a conv's dw, of rows for LayerNorm's): on a
// CPU adapter a workgroup is one CPU thread, so a gradient with few output tiles splits its sum
// until enough workgroups run; the chunks' partial gradients are then added in a fixed order
// (bitwise deterministic).
import { Tensor } from '../engine/tensor.js';
import type { PendingGrads } from '../engine/autograd.js';
import { sum } from './reduce.js';
import { gatherFits } from './flat-gather.js';

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
  return [sumChunks(partial, splits, pending, 1), dbPartial && sumChunks(dbPartial, splits, pending, 2)];
}

/**
 * Σ over the `chunks` rows of `partial` (which it takes over): into input i's gradient home when
 * it has one (sumIntoHome); else a sum of its own.
 */
export function sumChunks(partial: Tensor, chunks: number, pending: PendingGrads, i: number): Tensor {
  const home = sumIntoHome(partial, chunks, partial.size / chunks, partial.size / chunks, pending, i);
  if (home) return home;
  const total = sum(partial, 0);
  partial.release();
  return total;
}

/**
 * Input i's gradient home, to be filled with the sum of `src`'s `chunks` rows of `n` values,
 * `stride` apart, with the walk's other deferred sums (PendingGrads.sumLater: a few dispatches for
 * all of them, and no gather into the optimizer's buffer later); it takes `src` over. Null, and
 * `src` left alone, when the input has no home or the sum does not fit a gather.
 */
export function sumIntoHome(src: Tensor, chunks: number, stride: number, n: number, pending: PendingGrads, i: number): Tensor | null {
  const home = gatherFits(n) ? pending.home(i) : null;
  if (home) pending.sumLater({ src, chunks, stride, dst: home });
  return home;
}
