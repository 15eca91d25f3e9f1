// F.layerNorm (kernels/layer-norm.ts) against a float64 LayerNorm: the output and the gradients of
// x, weight and bias, on rows of 4-value vectors and of single values, with the column sums of
// dweight/dbias in one chunk of rows and in several, with and without the ReLU on its input, under
// both kernel profiles.
import { it, beforeAll, expect } from 'vitest';
import { init, F, type Tensor } from '../kernels/index.js';
import { randArr, runGrad, expectClose, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

/** y, and for d loss / d y = w: dx, dweight, dbias, in float64; with `relu`, of relu(x). */
function layerNormRef(x0: Float32Array, g: Float32Array, b: Float32Array, w: Float32Array, D: number, eps: number, relu = false) {
  const x = relu ? x0.map((v) => Math.max(v, 0)) : x0;
  const rows = x.length / D;
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dg = new Float64Array(D);
  const db = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let mean = 0;
    for (let j = 0; j < D; j++) mean += x[o + j];
    mean /= D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[o + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / D + eps);
    const xhat = Array.from({ length: D }, (_, j) => (x[o + j] - mean) * rstd);
    const gh = Array.from({ length: D }, (_, j) => w[o + j] * g[j]);
    const meanG = gh.reduce((a, c) => a + c, 0) / D;
    const meanGx = gh.reduce((a, c, j) => a + c * xhat[j], 0) / D;
    for (let j = 0; j < D; j++) {
      y[o + j] = xhat[j] * g[j] + b[j];
      dx[o + j] = relu && !(x0[o + j] > 0) ? 0 : rstd * (gh[j] - meanG - xhat[j] * meanGx);
      dg[j] += w[o + j] * xhat[j];
      db[j] += w[o + j];
    }
  }
  return { y, dx, dg, db };
}

const TOL = 2e-5;

forEachKernelProfile((p) => `F.layerNorm (${p} kernels)`, () => {
  // [shape, what it covers]: vec4 rows in one chunk and in several (≥ 256 rows); odd widths.
  const CASES: [number[], string][] = [
    [[2, 5, 64], 'vec4 rows, one chunk'],
    [[3, 100, 16], 'vec4 rows, two chunks'],
    [[7, 6], 'rows of 6 values'],
    [[600, 3], 'rows of 3 values, three chunks'],
    [[4, 1], 'rows of one value'],
  ];
  it.each(CASES.flatMap(([shape, what]) => [false, true].map((relu) => [shape, what, relu] as const)))('%j (%s), relu %s: output and the gradients of x, weight and bias', async (shape, _what, relu) => {
    const D = shape[shape.length - 1];
    const n = shape.reduce((a, c) => a * c, 1);
    // An offset per row, so that the mean matters.
    const x = randArr(shape, 3).map((v, i) => v * 2 + ((Math.floor(i / D) % 5) - 2));
    const g = randArr([D], 4, 0.5, 1.5);
    const b = randArr([D], 5);
    const run = await runGrad([{ data: x, shape }, { data: g, shape: [D] }, { data: b, shape: [D] }], (xt: Tensor, gt: Tensor, bt: Tensor) => F.layerNorm(xt, gt, bt, { eps: 1e-5, relu }), 9);
    const ref = layerNormRef(x, g, b, run.w, D, 1e-5, relu);
    expect(run.shape).toEqual(shape);
    expectClose(run.out, ref.y, TOL, 'y');
    // dx sums D products per value; dweight and dbias sum over every row.
    const dxScale = Math.max(...Array.from(ref.dx, Math.abs), 1);
    expectClose(run.grads[0], ref.dx, TOL, 'dx', dxScale);
    expectClose(run.grads[1], ref.dg, TOL * Math.sqrt(n / D), 'dweight');
    expectClose(run.grads[2], ref.db, TOL * Math.sqrt(n / D), 'dbias');
  });

  it('names the tensor at fault', () => {
    const x = F.zeros([2, 8]);
    const w = F.zeros([4]);
    expect(() => F.layerNorm(x, w, w)).toThrow(/layerNorm x \[2,8\]: weight .* must hold 8 values/);
    x.release();
    w.release();
  });
});
