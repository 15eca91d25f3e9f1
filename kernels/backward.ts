// `backward`: the engine's tape walk with this layer's kernels for accumulating and seeding
// gradients and for the split reductions' deferred sums (into gradient homes, 8 per dispatch).
import { backwardWith, type GradArithmetic } from '../engine/autograd.js';
import type { Tensor } from '../engine/tensor.js';
import { add, cast } from './elementwise.js';
import { full } from './fill.js';
import { gather, GATHER } from './flat-gather.js';

const arithmetic: GradArithmetic = {
  add,
  cast,
  ones: (shape) => full(shape, 1),
  sumChunks: (sums) =>
    gather(sums.map((s) => ({ src: s.src, chunks: s.chunks, stride: s.stride, n: s.dst.size, dst: s.dst.pooled, byteOffset: s.dst.byteOffset, owner: s.dst })), 'split sums into gradient homes'),
  sumBatch: GATHER,
};

/**
 * Accumulate d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad; `grad` defaults to
 * ones for a scalar root. The graph is freed, so a second backward through it is an error (as in PyTorch).
 */
export function backward(root: Tensor, grad?: Tensor): void {
  backwardWith(arithmetic, root, grad);
}
