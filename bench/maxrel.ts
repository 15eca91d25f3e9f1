// F.maxRelative (MRConv's aggregation) at GKGNet's stage-0 shapes (the same cases as
// bench/pytorch/kernels.py): centres x [B, C, N], sources y [B, C, M], neighbour lists idx
// [B·G, N, k] from one dilatedKnn call. `maxrel` times the forward pass, `maxrel_fwd_bwd` forward
// then backward(out, g) into x and y. GB/s over the bytes the op must move at least — forward:
// read x, y and idx, write out; backward: read g and idx, write dx and dy. Shape: [B, C, N, M, G, k].
import { Tensor } from '../engine/tensor.js';
import { noGrad } from '../engine/context.js';
import { backward } from '../kernels/backward.js';
import { dilatedKnn } from '../kernels/knn.js';
import { maxRelative } from '../kernels/max-relative.js';
import type { BenchSize, Family } from './common.js';

const K = 9;
const G = 2;

/** large: GKGNet-S at 448 (112² patches, 28² pooled sources). */
const SHAPES: Record<BenchSize, { B: number; C: number; N: number; M: number }> = {
  tiny: { B: 2, C: 8, N: 100, M: 25 },
  small: { B: 4, C: 32, N: 1024, M: 64 },
  large: { B: 16, C: 80, N: 12544, M: 784 },
};

export const bench: Family = async (ctx) => {
  const { B, C, N, M } = SHAPES[ctx.size];
  const shape = [B, C, N, M, G, K];
  const x = Tensor.randn([B, C, N], 1);
  const y = Tensor.randn([B, C, M], 2);
  const g = Tensor.randn([B, C, N], 3);
  const idx = noGrad(() => dilatedKnn(x, y, { k: K, groups: G }));
  // Each direction moves two [B, C, N] tensors, one [B, C, M] and the indices.
  const pass = 4 * (2 * B * C * N + B * C * M + B * G * N * K);
  await ctx.measure({ name: 'maxrel', shape, bytes: pass }, () => noGrad(() => maxRelative(x, y, idx, G)));
  x.requiresGrad = true;
  y.requiresGrad = true;
  await ctx.measure({ name: 'maxrel_fwd_bwd', shape, bytes: 2 * pass }, () => {
    backward(maxRelative(x, y, idx, G), g);
    for (const t of [x, y]) {
      t.grad?.release();
      t.grad = null;
    }
  });
  for (const t of [x, y, g, idx]) t.release();
};
