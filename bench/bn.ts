// F.batchNorm2d in train mode (batch statistics, running-statistics update) at the stage-0 map of
// GKGNet-S at 448 (the same cases as bench/pytorch/kernels.py). `bn_train` times the forward pass,
// `bn_train_fwd_bwd` forward then backward(y, dy) into x, weight and bias. GB/s over the bytes it
// must move at least: forward reads x and writes y; backward reads x and dy and writes dx.
// Shape: [B, C, H, W].
import { Tensor } from '../engine/tensor.js';
import { noGrad } from '../engine/context.js';
import { backward } from '../kernels/backward.js';
import { batchNorm2d } from '../kernels/batchnorm.js';
import type { BenchSize, Family } from './common.js';

const SHAPES: Record<BenchSize, [number, number, number, number]> = {
  tiny: [2, 8, 7, 9],
  small: [4, 16, 32, 32],
  large: [16, 80, 112, 112],
};

export const bench: Family = async (ctx) => {
  const shape = SHAPES[ctx.size];
  const C = shape[1];
  const n = shape.reduce((a, b) => a * b, 1);
  const x = Tensor.randn(shape, 1);
  const dy = Tensor.randn(shape, 2);
  const weight = Tensor.rand([C], 3, 0.5, 1.5);
  const bias = Tensor.randn([C], 4);
  const runningMean = Tensor.from(new Float32Array(C));
  const runningVar = Tensor.from(new Float32Array(C).fill(1));
  const bn = () => batchNorm2d(x, weight, bias, runningMean, runningVar, { training: true });
  await ctx.measure({ name: 'bn_train', shape, bytes: 2 * n * 4 }, () => noGrad(bn));
  for (const t of [x, weight, bias]) t.requiresGrad = true;
  await ctx.measure({ name: 'bn_train_fwd_bwd', shape, bytes: 5 * n * 4 }, () => {
    backward(bn(), dy);
    for (const t of [x, weight, bias]) {
      t.grad?.release();
      t.grad = null;
    }
  });
  for (const t of [x, dy, weight, bias, runningMean, runningVar]) t.release();
};
