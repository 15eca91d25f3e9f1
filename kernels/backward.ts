// `backward`: the engine's tape walk with this layer's kernels for accumulating and seeding gradients.
import { backwardWith, type GradArithmetic } from '../engine/autograd.js';
import type { Tensor } from '../engine/tensor.js';
import { add } from './elementwise.js';
import { full } from './fill.js';

const arithmetic: GradArithmetic = { add, ones: (shape) => full(shape, 1) };

/**
 * Accumulate d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad; `grad` defaults to
 * ones for a scalar root. The graph is freed, so a second backward through it is an error (as in PyTorch).
 */
export function backward(root: Tensor, grad?: Tensor): void {
  backwardWith(arithmetic, root, grad);
}
