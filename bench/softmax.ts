// Softmax along the last axis of [rows, C]: GB/s over one read and one write of the tensor. The two
// widths are a short axis (196 tokens of a 14×14 map) and a wide one (1000 classes).
import { Tensor } from '../engine/tensor.js';
import { softmax } from '../kernels/softmax.js';
import type { BenchSize, Family } from './common.js';

const SHAPES: Record<BenchSize, [number, number][]> = {
  tiny: [[7, 33]],
  small: [[1024, 196], [256, 1000]],
  large: [[16384, 196], [4096, 1000]],
};

export const bench: Family = async (ctx) => {
  for (const [r, c] of SHAPES[ctx.size]) {
    const x = Tensor.randn([r, c], 1);
    await ctx.measure({ name: 'softmax', shape: [r, c], bytes: 2 * r * c * 4 }, () => softmax(x));
    x.release();
  }
};
