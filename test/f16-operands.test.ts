// --precision mixed's kernels: matmul and conv2d (every kernel: implicit GEMM, pointwise, direct;
// forward, dx, dw) with f16 operands and f32 sums, against float64 references.
// Tolerances, relative to Σ|term| of each result (the magnitude its sum handles):
//   vs the reference on f16-rounded operands: 1e-5 (only f32 summation error is left, so the
//   operands were rounded to f16 and nothing else, and the sums were not f16);
//   vs the reference on the original operands: 1e-3 (the documented f16 tolerance: each product
//   of two f16-rounded operands is within 2·2⁻¹¹ ≈ 9.8e-4 of the exact one).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { init, Tensor, F, backward, tidy, setOperandPrecision, device } from '../kernels/index.js';
import { rng, f16round, maxScaledErr, matmulRef, conv2dRef, convOutSize, type ConvCase } from './ref.js';

const ROUNDED_TOL = 1e-5;
const F16_TOL = 1e-3;

beforeAll(async () => {
  await init();
  setOperandPrecision('f16');
});

afterAll(() => {
  setOperandPrecision('f32');
});

function rand(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}
const r16 = (a: ArrayLike<number>) => Float64Array.from(a, f16round);
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);

function expectF16(got: ArrayLike<number>, exact: ArrayLike<number>, rounded: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  const eRounded = maxScaledErr(got, rounded, scale);
  const eExact = maxScaledErr(got, exact, scale);
  expect(eRounded, `${what} vs f16-rounded operands`).toBeLessThanOrEqual(ROUNDED_TOL);
  expect(eExact, `${what} vs exact operands`).toBeLessThanOrEqual(F16_TOL);
  // f32 operands would land within ~1e-7 of the exact result: the rounding must be visible.
  expect(eExact, `${what}: no f16 rounding visible`).toBeGreaterThan(ROUNDED_TOL);
}

describe('f16 operands, f32 sums (--precision mixed)', () => {
  it('the device offers shader-f16 (lavapipe does), so the mixed kernels compile here', () => {
    expect(device().features.has('shader-f16')).toBe(true);
  });

  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    it(`matmul 19×23·K 70, transA ${transA}, transB ${transB}`, async () => {
      const [M, N, K] = [19, 23, 70];
      const av = rand(M * K, 1);
      const bv = rand(K * N, 2);
      const a = Tensor.from(av, transA ? [K, M] : [M, K]);
      const b = Tensor.from(bv, transB ? [N, K] : [K, N]);
      const y = F.matmul(a, b, { transA, transB });
      const got = await y.toArray();
      const ref = (x: ArrayLike<number>, z: ArrayLike<number>) => matmulRef(x, z, M, N, K, 1, 1, transA, transB);
      expectF16(got, ref(av, bv), ref(r16(av), r16(bv)), ref(abs(av), abs(bv)), 'matmul');
      for (const t of [a, b, y]) t.release();
    });
  }

  const cases: [string, ConvCase, F.Conv2dOptions['impl']][] = [
    ['implicit GEMM, 3×3 stride 2 pad 1, groups 2', { B: 2, Cin: 4, H: 9, W: 8, Cout: 6, kh: 3, kw: 3, stride: 2, pad: 1, groups: 2 }, 'gemm'],
    ['direct, 3×3 stride 2 pad 1, groups 2', { B: 2, Cin: 4, H: 9, W: 8, Cout: 6, kh: 3, kw: 3, stride: 2, pad: 1, groups: 2 }, 'direct'],
    ['pointwise, 1×1, Cin 24, Cout 10', { B: 2, Cin: 24, H: 5, W: 7, Cout: 10, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, 'pointwise'],
    ['implicit GEMM, 1×1, Cin 24, Cout 10', { B: 2, Cin: 24, H: 5, W: 7, Cout: 10, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, 'gemm'],
  ];
  for (const [name, c, impl] of cases) {
    it(`conv2d ${name}: forward, dx, dw`, async () => {
      const [Ho, Wo] = convOutSize(c);
      const xs = [c.B, c.Cin, c.H, c.W];
      const ws = [c.Cout, c.Cin / c.groups, c.kh, c.kw];
      const xv = rand(xs.reduce((p, q) => p * q), 3);
      const wv = rand(ws.reduce((p, q) => p * q), 4);
      const gv = rand(c.B * c.Cout * Ho * Wo, 5);
      const exact = conv2dRef(c, xv, wv, null, gv);
      const rounded = conv2dRef(c, r16(xv), r16(wv), null, r16(gv));
      const scale = conv2dRef(c, abs(xv), abs(wv), null, abs(gv));
      const x = Tensor.from(xv, xs).param('x');
      const w = Tensor.from(wv, ws).param('w');
      const y = tidy(() => {
        const out = F.conv2d(x, w, null, { stride: c.stride, padding: c.pad, groups: c.groups, impl });
        backward(out, Tensor.from(gv, out.shape));
        return out;
      });
      expectF16(await y.toArray(), exact.y, rounded.y, scale.y, 'y');
      expectF16(await x.grad!.toArray(), exact.dx, rounded.dx, scale.dx, 'dx');
      expectF16(await w.grad!.toArray(), exact.dw, rounded.dw, scale.dw, 'dw');
      for (const t of [x.grad, w.grad, x, w, y]) t?.release();
    });
  }
});
