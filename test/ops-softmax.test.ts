// softmax and logSoftmax along any axis, forward and backward, against float64 references; large
// logits (max-shift), rows longer than one workgroup, masked (-inf) entries.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy } from '../kernels/index.js';
import { randArr, softmaxRef, reduceMap, runGrad, expectClose } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-4;

const SHAPES: number[][] = [[7], [3, 5], [2, 3, 4], [2, 300], [300, 2], [1, 1], [4, 1, 3], [2, 2, 3, 5]];

/**
 * The softmax gradient p·(w − Σ w·p) cancels when a row is nearly one-hot (its true value can be
 * e^-1000 while float32 handles terms of size |w|): measure against the size of those terms,
 * max_i p_i·(|w_i| + Σ_j |w_j|·p_j), as the error a float32 evaluation can reach.
 */
function softmaxGradScale(p: ArrayLike<number>, w: ArrayLike<number>, shape: number[], axis: number): number {
  const row = reduceMap(shape, [axis < 0 ? axis + shape.length : axis]);
  const rowSum = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) rowSum[row[i]] += Math.abs(w[i]) * p[i];
  let m = 0;
  for (let i = 0; i < p.length; i++) m = Math.max(m, p[i] * (Math.abs(w[i]) + rowSum[row[i]]));
  return m;
}

async function check(log: boolean, x: Float32Array, shape: number[], axis: number, what: string) {
  const r = await runGrad([{ data: x, shape }], (t) => (log ? F.logSoftmax(t, axis) : F.softmax(t, axis)));
  const ref = softmaxRef(x, shape, axis, log, r.w);
  expect(r.shape, what).toEqual(shape);
  expectClose(r.out, ref.data, TOL, `${what} forward`);
  const scale = log ? 0 : softmaxGradScale(ref.data, r.w, shape, axis);
  expectClose(r.grads[0], ref.grad, TOL, `${what} backward`, scale);
}

describe('softmax / logSoftmax', () => {
  for (const log of [false, true]) {
    const name = log ? 'logSoftmax' : 'softmax';
    it(`${name}: every axis (positive and negative) of awkward shapes`, async () => {
      let seed = log ? 500 : 1;
      for (const shape of SHAPES) {
        for (let axis = 0; axis < shape.length; axis++) {
          const spelled = seed % 2 === 0 ? axis - shape.length : axis;
          await check(log, randArr(shape, seed++, -3, 3), shape, spelled, `${name} ${JSON.stringify(shape)} axis ${spelled}`);
        }
      }
    });

    it(`${name}: large logits (×1e3, ×1e30 offset-free) and tiny ones stay exact after the max shift`, async () => {
      const shape = [5, 37];
      for (const [k, scale] of [1e3, 1e30, 1e-30].entries()) {
        const x = randArr(shape, 40 + k).map((v) => v * scale);
        // Logits of 1e30 make every row one-hot; the reference agrees in float64.
        await check(log, x, shape, -1, `${name} ×${scale}`);
        await check(log, x, shape, 0, `${name} ×${scale} axis 0`);
      }
      const shifted = randArr(shape, 50).map((v) => v + 1e4);
      await check(log, shifted, shape, 1, `${name} 1e4 + u`);
    });
  }

  it('softmax default axis is the last one', async () => {
    const x = randArr([3, 4], 9);
    const t = Tensor.from(x, [3, 4]);
    const y = tidy(() => F.softmax(t));
    expectClose(await y.toArray(), softmaxRef(x, [3, 4], 1, false).data, TOL, 'softmax default axis');
    t.release();
    y.release();
  });

  it('masked (-inf) entries get probability 0 and no gradient', async () => {
    const shape = [4, 9];
    const x = randArr(shape, 11);
    // One masked entry per column, two or three per row: no row or column is fully masked.
    for (let i = 1; i < x.length; i += 4) x[i] = -Infinity;
    await check(false, x, shape, 1, 'softmax with -inf entries');
    await check(false, x, shape, 0, 'softmax with -inf entries, axis 0');
  });

  it('rows sum to one over a long axis', async () => {
    const shape = [3, 1000];
    const x = randArr(shape, 12, -10, 10);
    const t = Tensor.from(x, shape);
    const s = tidy(() => F.sum(F.softmax(t, 1), 1));
    expectClose(await s.toArray(), [1, 1, 1], 1e-5, 'row sums');
    t.release();
    s.release();
  });
});
