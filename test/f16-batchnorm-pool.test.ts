// f16 activations through batchNorm2d (train / eval, fused GELU, residual, drop-path scale; one and
// several chunks per channel), the average pools, layerNorm and softmax, under both kernel profiles:
// outputs and gradients in the activations' dtypes, BN's statistics and parameter gradients f32,
// against float64 references computed from the half-rounded inputs.
import { it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';
import { rand, maxRelErr, roundHalf, forEachKernelProfile, batchNormRef, avgPoolWindowsRef } from './ref.js';

beforeAll(async () => {
  await init();
});

/** n values of U(lo, hi) rounded to half (exactly what an f16 tensor of them holds). */
function halfRand(n: number, seed: number, lo = -1, hi = 1): number[] {
  return Array.from(rand(n, seed, lo, hi), roundHalf);
}

/**
 * Every |got − want| within the output's rounding to f16 (2⁻¹⁰·|want|, twice the half ulp) plus
 * `tol` (the f32 kernels' own error) times the largest |want|.
 */
function expectHalfClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 2 ** -10 * Math.abs(want[i]) + tol * scale)) {
      expect.fail(`${what}[${i}] = ${got[i]}, want ${want[i]} (error ${err.toExponential(2)}, scale ${scale.toExponential(2)})`);
    }
  }
}

interface BnCase {
  shape: number[];
  training: boolean;
  act?: boolean;
  /** The residual's dtype (none without). */
  residual?: 'f16' | 'f32';
  /** Drop path's per-image factor (some 0), with a residual. */
  scaled?: boolean;
  /** x is a constant: only dweight and dbias are computed. */
  constantX?: boolean;
  offset?: number;
  seed: number;
}

async function checkBn(k: BnCase) {
  const C = k.shape[1];
  const size = k.shape.reduce((a, v) => a * v, 1);
  const off = k.offset ?? 0;
  const xv = halfRand(size, k.seed, off - 1, off + 1);
  const wv = Array.from(rand(C, k.seed + 1, 0.5, 1.5));
  const bv = Array.from(rand(C, k.seed + 2, -0.3, 0.3));
  const rmv = Array.from(rand(C, k.seed + 3, -0.5, 0.5));
  const rvv = Array.from(rand(C, k.seed + 4, 0.5, 2));
  const gv = halfRand(size, k.seed + 5);
  const resv = k.residual ? (k.residual === 'f16' ? halfRand(size, k.seed + 6) : Array.from(rand(size, k.seed + 6))) : undefined;
  const sv = k.scaled ? Array.from({ length: k.shape[0] }, (_, i) => (i % 3 === 1 ? 0 : 1 / 0.9)) : undefined;
  const ref = batchNormRef(k.shape, xv, wv, bv, rmv, rvv, gv, { training: k.training, act: !!k.act, residual: resv, scale: sv });

  const x = Tensor.from(xv, k.shape, 'f16');
  if (!k.constantX) x.param();
  const w = Tensor.from(wv, [C]).param();
  const b = Tensor.from(bv, [C]).param();
  const rm = Tensor.from(rmv, [C]);
  const rv = Tensor.from(rvv, [C]);
  const res = resv ? Tensor.from(resv, k.shape, k.residual).param() : undefined;
  const scale = sv ? Tensor.from(sv, [k.shape[0], 1, 1, 1]) : undefined;
  const y = tidy(() => {
    const out = F.batchNorm2d(x, w, b, rm, rv, { training: k.training, activation: k.act ? 'gelu' : 'none', residual: res, branchScale: scale });
    backward(out, Tensor.from(gv, k.shape, 'f16'));
    return out;
  });
  expect(y.dtype).toBe('f16');
  expectHalfClose(await y.toArray(), ref.y, 1e-5, 'y');
  if (k.constantX) {
    expect(x.grad).toBeNull();
  } else {
    expect(x.grad!.dtype).toBe('f16');
    expectHalfClose(await x.grad!.toArray(), ref.dx, 1e-4, 'dx');
  }
  for (const [t, want, what] of [[w, ref.dw, 'dweight'], [b, ref.db, 'dbias']] as const) {
    expect(t.grad!.dtype).toBe('f32');
    expect(maxRelErr(await t.grad!.toArray(), want), what).toBeLessThan(1e-4);
  }
  expect(rm.dtype).toBe('f32');
  expect(maxRelErr(await rm.toArray(), ref.runMean)).toBeLessThan(1e-6);
  expect(maxRelErr(await rv.toArray(), ref.runVar)).toBeLessThan(1e-6);
  if (res) {
    // the residual's gradient is the output's (f16, exact), in the residual's dtype
    expect(res.grad!.dtype).toBe(k.residual);
    expect(Array.from(await res.grad!.toArray())).toEqual(gv);
    res.grad!.release();
    res.release();
  }
  scale?.release();
  for (const t of [x, w, b]) t.grad?.release();
  for (const t of [x, w, b, rm, rv, y]) t.release();
}

/** `run` pools an f16 x by kh×kw windows; `uses` = how many times the output sums that pool (x's other uses add into dx). */
async function checkPool(shape: number[], kh: number, kw: number, run: (x: Tensor) => Tensor, seed: number, uses = 1) {
  const [B, C, H, W] = shape;
  const xv = halfRand(B * C * H * W, seed, -3, 3);
  const gv = halfRand((B * C * H * W) / (kh * kw), seed + 1);
  const ref = avgPoolWindowsRef(B * C, H, W, kh, kw, xv, gv);
  const x = Tensor.from(xv, shape, 'f16').param();
  const y = tidy(() => {
    const out = run(x);
    backward(out, Tensor.from(gv, out.shape, 'f16'));
    return out;
  });
  expect(y.dtype).toBe('f16');
  expectHalfClose(await y.toArray(), ref.y.map((v) => v * uses), 1e-6, 'y');
  expect(x.grad!.dtype).toBe('f16');
  expectHalfClose(await x.grad!.toArray(), ref.dx.map((v) => v * uses), 1e-6, 'dx');
  for (const t of [x, x.grad!, y]) t.release();
}

forEachKernelProfile((profile) => `f16 batchNorm2d and pooling (${profile} kernel profile) vs float64 reference`, () => {
  it('BN train, f16 x → f16 y, dx f16, dweight/dbias and running statistics f32 (odd planes, vec4 planes)', async () => {
    await checkBn({ shape: [2, 3, 5, 7], training: true, seed: 1 });
    await checkBn({ shape: [3, 4, 4, 4], training: true, offset: 2, seed: 2 });
  });
  it('BN train with a fused GELU, the residual (f16 and f32) and drop path\'s scale', async () => {
    await checkBn({ shape: [2, 5, 6, 3], training: true, act: true, seed: 3 });
    await checkBn({ shape: [4, 3, 4, 4], training: true, act: true, residual: 'f16', scaled: true, seed: 4 });
    await checkBn({ shape: [5, 3, 3, 3], training: true, residual: 'f32', scaled: true, seed: 5 });
  });
  it('BN train, several chunks per channel on the gpu profile (B·S = 2112 > 2048)', async () => {
    await checkBn({ shape: [2, 2, 33, 32], training: true, act: true, residual: 'f16', scaled: true, offset: 0.5, seed: 6 });
    await checkBn({ shape: [2, 2, 33, 32], training: true, seed: 7 });
    await checkBn({ shape: [2, 2, 33, 32], training: true, act: true, constantX: true, seed: 8 });
  });
  it('BN train, x without a gradient (dweight and dbias only)', async () => {
    await checkBn({ shape: [2, 3, 5, 7], training: true, act: true, constantX: true, seed: 9 });
  });
  it('BN eval (running statistics), with GELU and the residual, one and several chunks', async () => {
    await checkBn({ shape: [2, 3, 5, 7], training: false, seed: 10 });
    await checkBn({ shape: [3, 3, 4, 4], training: false, act: true, residual: 'f16', scaled: true, seed: 11 });
    await checkBn({ shape: [2, 2, 33, 32], training: false, act: true, seed: 12 });
  });
  it('avgPool2d and globalAvgPool: f16 in, f16 out, dx f16', async () => {
    await checkPool([2, 3, 8, 12], 2, 2, (x) => F.avgPool2d(x, 2), 20);
    await checkPool([3, 7, 5, 9], 5, 9, (x) => F.globalAvgPool(x), 21);
  });
  it('avgPool2d backward adds x\'s gradient from its other uses into its f16 dx', async () => {
    await checkPool([2, 2, 4, 6], 2, 2, (x) => F.add(F.avgPool2d(x, 2), F.avgPool2d(x, 2)), 22, 2);
  });
});

forEachKernelProfile((profile) => `f16 through the f32 kernels of layerNorm and softmax (${profile} kernel profile)`, () => {
  it('layerNorm: f16 x → f32 y (autocast\'s f32 list), dx f16, dweight/dbias f32', async () => {
    const [R, D] = [6, 10];
    const xv = halfRand(R * D, 30, -2, 2);
    const wv = Array.from(rand(D, 31, 0.5, 1.5));
    const bv = Array.from(rand(D, 32, -0.3, 0.3));
    const gv = halfRand(R * D, 33);
    const y64 = new Float64Array(R * D);
    const dx64 = new Float64Array(R * D);
    const dw64 = new Float64Array(D);
    const db64 = new Float64Array(D);
    for (let r = 0; r < R; r++) {
      const row = xv.slice(r * D, (r + 1) * D);
      const mean = row.reduce((a, v) => a + v, 0) / D;
      const inv = 1 / Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / D + 1e-5);
      const xhat = row.map((v) => (v - mean) * inv);
      const gh = xhat.map((_, j) => gv[r * D + j] * wv[j]);
      const sg = gh.reduce((a, v) => a + v, 0);
      const sgx = gh.reduce((a, v, j) => a + v * xhat[j], 0);
      for (let j = 0; j < D; j++) {
        y64[r * D + j] = xhat[j] * wv[j] + bv[j];
        dx64[r * D + j] = (inv / D) * (D * gh[j] - sg - xhat[j] * sgx);
        dw64[j] += gv[r * D + j] * xhat[j];
        db64[j] += gv[r * D + j];
      }
    }
    const x = Tensor.from(xv, [R, D], 'f16').param();
    const w = Tensor.from(wv, [D]).param();
    const b = Tensor.from(bv, [D]).param();
    const y = tidy(() => {
      const out = F.layerNorm(x, w, b);
      backward(out, Tensor.from(gv, [R, D], 'f16'));
      return out;
    });
    expect(y.dtype).toBe('f32');
    expect(maxRelErr(await y.toArray(), y64)).toBeLessThan(1e-5);
    expect(x.grad!.dtype).toBe('f16');
    expectHalfClose(await x.grad!.toArray(), dx64, 1e-4, 'dx');
    expect(w.grad!.dtype).toBe('f32');
    expect(maxRelErr(await w.grad!.toArray(), dw64)).toBeLessThan(1e-5);
    expect(maxRelErr(await b.grad!.toArray(), db64)).toBeLessThan(1e-5);
    for (const t of [x, w, b]) t.grad!.release();
    for (const t of [x, w, b, y]) t.release();
  });

  it('softmax and logSoftmax: f16 x → f32 output (autocast\'s f32 list), dx f16', async () => {
    const [R, N] = [5, 9];
    const xv = halfRand(R * N, 40, -4, 4);
    const gv = Array.from(rand(R * N, 41));
    for (const log of [false, true]) {
      const y64 = new Float64Array(R * N);
      const dx64 = new Float64Array(R * N);
      for (let r = 0; r < R; r++) {
        const row = xv.slice(r * N, (r + 1) * N);
        const m = Math.max(...row);
        const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
        const p = row.map((v) => Math.exp(v - m) / z);
        const g = gv.slice(r * N, (r + 1) * N);
        const gp = g.reduce((a, v, j) => a + v * p[j], 0);
        const gs = g.reduce((a, v) => a + v, 0);
        for (let j = 0; j < N; j++) {
          y64[r * N + j] = log ? row[j] - m - Math.log(z) : p[j];
          dx64[r * N + j] = log ? g[j] - p[j] * gs : p[j] * (g[j] - gp);
        }
      }
      const x = Tensor.from(xv, [R, N], 'f16').param();
      const y = tidy(() => {
        const out = log ? F.logSoftmax(x, -1) : F.softmax(x, -1);
        backward(out, Tensor.from(gv, [R, N]));
        return out;
      });
      expect(y.dtype).toBe('f32');
      expect(maxRelErr(await y.toArray(), y64), `${log ? 'logSoftmax' : 'softmax'} y`).toBeLessThan(1e-5);
      expect(x.grad!.dtype).toBe('f16');
      expectHalfClose(await x.grad!.toArray(), dx64, 1e-5, `${log ? 'logSoftmax' : 'softmax'} dx`);
      for (const t of [x, x.grad!, y]) t.release();
    }
  });
});
