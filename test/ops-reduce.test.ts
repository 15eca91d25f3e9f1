// Reductions over any set of axes, with and without keepdim, forward and backward, against float64
// references: sum, mean, variance (biased / unbiased), max with argmax.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy, noGrad } from '../kernels/index.js';
import { randArr, reduceRef, maxRef, reduceMap, runGrad, expectClose, numel, type ReduceKind, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-4;

// Reduced extents below, at and above the 256-thread workgroup; size-1 axes; ranks 1–4.
const SHAPES: number[][] = [[7], [3, 5], [4, 1, 6], [2, 3, 4, 5], [1, 300], [257, 2], [2, 3, 1, 5]];

/** Every non-empty subset of the axes of a rank-r shape. */
function subsets(rank: number): number[][] {
  const out: number[][] = [];
  for (let m = 1; m < 1 << rank; m++) out.push([...Array(rank).keys()].filter((i) => m & (1 << i)));
  return out;
}

const OPS: Record<ReduceKind, (x: Tensor, axes: number[] | undefined, keepdim: boolean) => Tensor> = {
  sum: (x, a, k) => F.sum(x, a, k),
  mean: (x, a, k) => F.mean(x, a, k),
  var: (x, a, k) => F.variance(x, a, k, false),
  varUnbiased: (x, a, k) => F.variance(x, a, k, true),
};

/** Per-output Σ|x| (÷n for a mean): the scale of a sum with cancellation. */
function absScale(x: Float32Array, shape: number[], axes: number[], kind: ReduceKind): number {
  if (kind !== 'sum' && kind !== 'mean') return 0;
  const r = reduceRef(x.map(Math.abs), shape, axes, kind);
  return Math.max(...r.data);
}

async function checkReduce(kind: ReduceKind, x: Float32Array, shape: number[], axes: number[] | undefined, keepdim: boolean, what: string) {
  const ax = axes ?? [...shape.keys()];
  const norm = ax.map((a) => (a < 0 ? a + shape.length : a));
  const r = await runGrad([{ data: x, shape }], (t) => OPS[kind](t, axes, keepdim));
  const w = r.w;
  const ref = reduceRef(x, shape, norm, kind, w);
  expect(r.shape, what).toEqual(keepdim ? ref.keepdim : ref.kept);
  expectClose(r.out, ref.data, TOL, `${what} forward`, absScale(x, shape, norm, kind));
  expectClose(r.grads[0], ref.grad, TOL, `${what} backward`);
}

// Every case runs with both kernel profiles: reduce.wgsl with 256-wide trees and uniform ranks
// ('gpu'), and with 64-wide trees and the ranks as constants ('cpu').
forEachKernelProfile((profile) => `${profile} kernel profile`, suite);

function suite() {
  describe('sum / mean / variance over any axes', () => {
    for (const kind of ['sum', 'mean', 'var', 'varUnbiased'] as const) {
      it(`${kind}: every subset of axes, keepdim on and off, negative axes`, async () => {
        let seed = 1;
        for (const shape of SHAPES) {
          for (const axes of subsets(shape.length)) {
            // Unbiased variance over one element divides by zero (PyTorch: NaN); skip those.
            if (kind === 'varUnbiased' && axes.reduce((a, i) => a * shape[i], 1) < 2) continue;
            const keepdim = seed % 2 === 0;
            // Alternate positive and negative spellings of the same axes.
            const spelled = seed % 3 === 0 ? axes.map((a) => a - shape.length) : axes;
            const x = randArr(shape, seed++);
            await checkReduce(kind, x, shape, spelled, keepdim, `${kind} ${JSON.stringify(shape)} axes ${JSON.stringify(spelled)} keepdim ${keepdim}`);
          }
        }
      });
    }

    it('all axes by default (scalar result), and a single axis given as a number', async () => {
      const shape = [5, 7, 3];
      const x = randArr(shape, 77);
      for (const kind of ['sum', 'mean', 'var'] as const) {
        await checkReduce(kind, x, shape, undefined, false, `${kind} all axes`);
        const r = await runGrad([{ data: x, shape }], (t) => OPS[kind](t, 1 as unknown as number[], false));
        const ref = reduceRef(x, shape, [1], kind, r.w);
        expect(r.shape).toEqual([5, 3]);
        expectClose(r.out, ref.data, TOL, `${kind} axis 1 as a number`, absScale(x, shape, [1], kind));
        expectClose(r.grads[0], ref.grad, TOL, `${kind} axis 1 as a number backward`);
      }
    });

    it('large and tiny magnitudes, and a variance with a large mean (two-pass, no cancellation)', async () => {
      const shape = [6, 45];
      const cases: [string, Float32Array][] = [
        // Squares must stay in float32 range (as in PyTorch, a variance of 1e20-sized values is inf).
        ['×1e15', randArr(shape, 5).map((v) => v * 1e15)],
        ['×1e-15', randArr(shape, 6).map((v) => v * 1e-15)],
        ['1000 + u', randArr(shape, 7).map((v) => 1000 + v)],
      ];
      for (const [name, x] of cases) {
        for (const kind of ['sum', 'mean', 'var', 'varUnbiased'] as const) {
          for (const axes of [[1], [0]]) {
            await checkReduce(kind, x, shape, axes, false, `${kind} ${name} axes ${axes}`);
          }
        }
      }
    });

    it('sum over a long axis (many elements per thread) and many outputs', async () => {
      const shape = [3, 2000];
      const x = randArr(shape, 9);
      await checkReduce('sum', x, shape, [1], true, 'sum [3,2000] axis 1');
      const tall = [1100, 3];
      await checkReduce('mean', randArr(tall, 10), tall, [0], false, 'mean [1100,3] axis 0');
      await checkReduce('sum', randArr(tall, 11), tall, [1], false, 'sum [1100,3] axis 1');
    });
  });

  describe('max with argmax', () => {
    it('values, first-maximum indices and the gradient routed to them, every axis', async () => {
      let seed = 200;
      for (const shape of SHAPES) {
        for (let axis = 0; axis < shape.length; axis++) {
          const keepdim = seed % 2 === 0;
          const spelled = seed % 3 === 0 ? axis - shape.length : axis;
          const x = randArr(shape, seed++, -5, 5);
          const what = `max ${JSON.stringify(shape)} axis ${spelled} keepdim ${keepdim}`;
          const r = await runGrad([{ data: x, shape }], (t) => F.max(t, spelled, keepdim).values);
          const ref = maxRef(x, shape, axis, r.w);
          const kept = shape.filter((_, i) => i !== axis);
          expect(r.shape, what).toEqual(keepdim ? shape.map((d, i) => (i === axis ? 1 : d)) : kept);
          expectClose(r.out, ref.values, 0, `${what} values`);
          expectClose(r.grads[0], ref.grad, 0, `${what} backward`);
          const xt = Tensor.from(x, shape);
          const idx = noGrad(() => tidy(() => F.max(xt, spelled, keepdim).indices));
          expect(idx.dtype).toBe('i32');
          expect(Array.from(await idx.toInt32Array()), `${what} indices`).toEqual(Array.from(ref.indices));
          xt.release();
          idx.release();
        }
      }
    });

    it('ties pick the first index (as torch.argmax); -inf and all-equal rows', async () => {
      const shape = [40, 37];
      const r0 = randArr(shape, 3);
      // Values from {0, 1, 2}: every row has many tied maxima.
      const x = r0.map((v) => Math.floor((v + 1) * 1.5));
      for (let c = 0; c < 37; c++) x[c] = -Infinity; // row 0 all -inf: index 0
      for (let c = 0; c < 37; c++) x[37 + c] = 7; // row 1 all equal
      for (const axis of [0, 1]) {
        const t = Tensor.from(x, shape);
        const { values, indices } = tidy(() => F.max(t, axis));
        const ref = maxRef(x, shape, axis);
        expect(Array.from(await values.toArray())).toEqual(Array.from(ref.values));
        expect(Array.from(await indices.toInt32Array())).toEqual(Array.from(ref.indices));
        for (const u of [t, values, indices]) u.release();
      }
    });

    it('a max over a 300-long axis (two elements per thread) still finds the first maximum', async () => {
      const shape = [2, 300];
      const x = new Float32Array(600);
      x[17] = 5;
      x[273] = 5; // a later tie in another thread's stride
      x[300 + 299] = 1;
      const t = Tensor.from(x, shape);
      const { indices } = tidy(() => F.max(t, 1));
      expect(Array.from(await indices.toInt32Array())).toEqual([17, 299]);
      t.release();
      indices.release();
    });
  });

  describe('reduction plumbing', () => {
    it('the reference reduce map agrees with a hand count', () => {
      // Guards the float64 reference: reducing [2,3] over axis 1 maps columns to rows.
      expect(Array.from(reduceMap([2, 3], [1]))).toEqual([0, 0, 0, 1, 1, 1]);
      expect(Array.from(reduceMap([2, 3], [0]))).toEqual([0, 1, 2, 0, 1, 2]);
      expect(numel([])).toBe(1);
    });
  });
}
