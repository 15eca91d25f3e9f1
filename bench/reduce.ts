// Reductions over a [R, C] input: along the contiguous axis (sum_rows, max_rows with argmax), across
// rows (sum_cols, strided reads) and everything (sum_all). GB/s over input read + output written.
import { Tensor } from '../engine/tensor.js';
import { sum, max } from '../kernels/reduce.js';
import type { BenchSize, Family } from './common.js';

const SHAPES: Record<BenchSize, [number, number]> = {
  tiny: [7, 100],
  small: [1024, 1024],
  large: [4096, 4096],
};

export const bench: Family = async (ctx) => {
  const [r, c] = SHAPES[ctx.size];
  const n = r * c;
  const x = Tensor.randn([r, c], 1);
  await ctx.measure({ name: 'sum_rows', shape: [r, c], flops: n, bytes: (n + r) * 4 }, () => sum(x, 1));
  await ctx.measure({ name: 'sum_cols', shape: [r, c], flops: n, bytes: (n + c) * 4 }, () => sum(x, 0));
  await ctx.measure({ name: 'sum_all', shape: [r, c], flops: n, bytes: (n + 1) * 4 }, () => sum(x));
  await ctx.measure({ name: 'max_rows', shape: [r, c], bytes: (n + 2 * r) * 4 }, () => max(x, 1));
  x.release();
};
