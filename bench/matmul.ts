// Matmul: square C = A·B, shape [M, K, N], 2·M·K·N FLOPs (the same cases as bench/pytorch/matmul.py).
import { Tensor } from '../engine/tensor.js';
import { matmul } from '../kernels/matmul.js';
import type { BenchSize, Family } from './common.js';

const SIZES: Record<BenchSize, number[]> = {
  tiny: [32, 65],
  small: [128, 256],
  large: [1024, 2048, 4096],
};

export const bench: Family = async (ctx) => {
  for (const n of SIZES[ctx.size]) {
    const a = Tensor.randn([n, n], 1);
    const b = Tensor.randn([n, n], 2);
    await ctx.measure({ name: 'matmul', shape: [n, n, n], flops: 2 * n * n * n }, () => matmul(a, b));
    a.release();
    b.release();
  }
};
