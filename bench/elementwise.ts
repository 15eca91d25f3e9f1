// Elementwise kernels, bandwidth-bound: GB/s over the bytes each op must read and write.
// Shapes are [R, C]; add_bias broadcasts a [C] row over the rows.
import { Tensor } from '../engine/tensor.js';
import { add, relu, gelu } from '../kernels/elementwise.js';
import type { BenchSize, Family } from './common.js';

const SHAPES: Record<BenchSize, [number, number]> = {
  tiny: [10, 100],
  small: [1024, 1024],
  large: [4096, 4096],
};

export const bench: Family = async (ctx) => {
  const [r, c] = SHAPES[ctx.size];
  const n = r * c;
  const x = Tensor.randn([r, c], 1);
  const y = Tensor.randn([r, c], 2);
  const bias = Tensor.randn([c], 3);
  await ctx.measure({ name: 'add', shape: [r, c], flops: n, bytes: 3 * n * 4 }, () => add(x, y));
  await ctx.measure({ name: 'add_bias', shape: [r, c], flops: n, bytes: (2 * n + c) * 4 }, () => add(x, bias));
  await ctx.measure({ name: 'relu', shape: [r, c], bytes: 2 * n * 4 }, () => relu(x));
  await ctx.measure({ name: 'gelu', shape: [r, c], bytes: 2 * n * 4 }, () => gelu(x));
  for (const t of [x, y, bias]) t.release();
};
