// f16 activation storage in conv2d and matmul (--precision mixed: activationDtype() 'f16', f16
// operands): forward outputs f16, an activation's gradient in its dtype (f16), a parameter's f32;
// under both kernel profiles (the gpu profile's GEMM kernels read and write f16 themselves, the cpu
// profile's kernels go through casts), and on the emulated subgroup-matrix tiles (the real ones:
// compiled on Dawn's null backend).
// References: float64 on the half-rounded inputs (f16 tensors hold them; f32 weights are rounded to
// f16 as operands). Tolerance per element: 2⁻¹⁰·|ref| (the output's rounding to f16, either
// direction) + 1e-5·Σ|terms| (the f32 sums, as test/f16-operands.test.ts's tolerance on
// f16-rounded operands); f32 results (dw, db) only the second.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { init, Tensor, F, backward, tidy, device, setOperandPrecision, setActivationDtype, type DType } from '../kernels/index.js';
import { Device } from '../engine/device.js';
import { setMatrixTilesMode, matrixSource, matrixTileVariants, type MatrixTiles } from '../kernels/matrix-tiles.js';
import { tiledSource } from '../kernels/matmul.js';
import type { GemmStorage } from '../kernels/operand.js';
import { rand, roundHalf, matmulRef, conv2dRef, convOutSize, numel, forEachKernelProfile, watching, type ConvCase } from './ref.js';

const SUM_TOL = 1e-5;
const HALF_TOL = 2 ** -10;

beforeAll(async () => {
  await init();
  setActivationDtype('f16');
  setOperandPrecision('f16');
});

afterAll(() => {
  setActivationDtype('f32');
  setOperandPrecision('f32');
});

const r16 = (a: ArrayLike<number>) => Float64Array.from(a, roundHalf);
const abs = (a: ArrayLike<number>) => Float64Array.from(a, Math.abs);
const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);

/** `t`'s dtype and values against `ref` (expectValues). */
async function expectResult(t: Tensor, dtype: DType, ref: ArrayLike<number>, scale: ArrayLike<number>, what: string, rounded?: ArrayLike<number>): Promise<void> {
  expect(t.dtype, `${what} dtype`).toBe(dtype);
  expectValues(await t.toArray(), dtype, ref, scale, what, rounded);
}

/**
 * Values of a `dtype` result against `ref`: within 2⁻¹⁰·|ref| (f16 only) + SUM_TOL·scale, and
 * 2⁻¹⁰·|rounded| for a part of it that was rounded to f16 on its own before it was added.
 */
function expectValues(got: Float32Array, dtype: DType, ref: ArrayLike<number>, scale: ArrayLike<number>, what: string, rounded?: ArrayLike<number>): void {
  expect(got.length, what).toBe(ref.length);
  const half = dtype === 'f16' ? HALF_TOL : 0;
  let worst = 0;
  let at = 0;
  for (let i = 0; i < ref.length; i++) {
    const allowed = half * (Math.abs(ref[i]) + (rounded ? Math.abs(rounded[i]) : 0)) + SUM_TOL * scale[i];
    const e = Math.abs(got[i] - ref[i]) / (allowed + 1e-30);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  expect(worst, `${what}[${at}] = ${got[at]}, reference ${ref[at]}`).toBeLessThanOrEqual(1);
}

interface ConvTest {
  name: string;
  c: ConvCase;
  /** x's dtype: an f16 activation, or the f32 image a first layer reads. */
  x: DType;
  bias: boolean;
  /** The residual added in the store, in this dtype; 'reuse': none, and y + x instead (x's gradient from another use). */
  residual: DType | 'reuse' | null;
}

const CONVS: ConvTest[] = [
  { name: '1×1, y + x (dx adds the pending gradient)', c: { B: 2, Cin: 8, Cout: 8, H: 5, W: 7, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, x: 'f16', bias: false, residual: 'reuse' },
  { name: '3×3 stride 2 pad 1, bias, f16 residual', c: { B: 2, Cin: 4, Cout: 6, H: 9, W: 8, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1 }, x: 'f16', bias: true, residual: 'f16' },
  { name: '3×3 pad 1, 2 groups, bias, f32 residual', c: { B: 1, Cin: 6, Cout: 4, H: 6, W: 5, kh: 3, kw: 3, stride: 1, pad: 1, groups: 2 }, x: 'f16', bias: true, residual: 'f32' },
  { name: '1×1 with bias, f32 image input (a first layer)', c: { B: 1, Cin: 3, Cout: 8, H: 4, W: 6, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, x: 'f32', bias: true, residual: null },
];

/** Runs test `t` and checks y, dx, dw, db and the residual's gradient: dtypes and values. */
async function checkConv(t: ConvTest, seed: number): Promise<void> {
  const { c } = t;
  const [Ho, Wo] = convOutSize(c);
  const xs = [c.B, c.Cin, c.H, c.W];
  const ws = [c.Cout, c.Cin / c.groups, c.kh, c.kw];
  const ys = [c.B, c.Cout, Ho, Wo];
  const xv = rand(numel(xs), seed), wv = rand(numel(ws), seed + 1), gv = rand(numel(ys), seed + 2);
  const bv = t.bias ? rand(c.Cout, seed + 3) : null;
  const rv = t.residual === 'f16' || t.residual === 'f32' ? rand(numel(ys), seed + 4) : null;
  // What the kernels see: x, dy and the weight rounded to f16 (as stored, or as operands).
  const xh = r16(xv), wh = r16(wv), gh = r16(gv);
  const rh = rv && (t.residual === 'f16' ? r16(rv) : Float64Array.from(rv));
  const ref = conv2dRef(c, xh, wh, bv, gh);
  const scale = conv2dRef(c, abs(xh), abs(wh), bv && abs(bv), abs(gh));

  const x = Tensor.from(xv, xs, t.x).param('x');
  const w = Tensor.from(wv, ws).param('w');
  const b = bv ? Tensor.from(bv, [c.Cout]).param('b') : null;
  const r = rv ? Tensor.from(rv, ys, t.residual as DType).param('r') : null;
  const y = tidy(() => {
    const out = F.conv2d(x, w, b, { stride: c.stride, padding: c.pad, groups: c.groups, residual: r ?? undefined });
    const z = t.residual === 'reuse' ? F.add(out, x) : out;
    expect(z.dtype).toBe('f16');
    backward(z, Tensor.from(gv, ys, 'f16'));
    return out;
  });
  await expectResult(y, 'f16', rh ? plus(ref.y, rh) : ref.y, rh ? plus(scale.y, abs(rh)) : scale.y, 'y');
  // y + x: x's gradient is dx + dy. The GEMM adds dy in its store; the cpu profile's kernels write
  // dx in f32, which reaches x through a cast, so it is rounded to f16 before the add.
  const reuse = t.residual === 'reuse';
  const roundedDx = reuse && device().kernelProfile === 'cpu' ? ref.dx : undefined;
  await expectResult(x.grad!, t.x, reuse ? plus(ref.dx, gh) : ref.dx, reuse ? plus(scale.dx, abs(gh)) : scale.dx, 'dx', roundedDx);
  await expectResult(w.grad!, 'f32', ref.dw, scale.dw, 'dw');
  if (b) await expectResult(b.grad!, 'f32', ref.db, scale.db, 'db');
  if (r) await expectResult(r.grad!, r.dtype, gh, abs(gh), 'residual gradient');
  for (const u of [x, w, b, r]) u?.grad?.release();
  for (const u of [x, w, b, r, y]) u?.release();
}

interface MatmulTest {
  name: string;
  M: number;
  N: number;
  K: number;
  /** Batches of A and B (1: shared). */
  na: number;
  nb: number;
  transA: boolean;
  transB: boolean;
  aType: DType;
  bType: DType;
  bias: boolean;
}

const MATMULS: MatmulTest[] = [
  { name: 'f16 activation · f32 weightᵀ + bias, a batch over a shared weight (Linear)', M: 7, N: 10, K: 12, na: 2, nb: 1, transA: false, transB: true, aType: 'f16', bType: 'f32', bias: true },
  { name: 'f16 · f16, both batched, Aᵀ', M: 9, N: 6, K: 11, na: 2, nb: 2, transA: true, transB: false, aType: 'f16', bType: 'f16', bias: false },
  { name: 'shared f16 A · batched f32 Bᵀ', M: 5, N: 8, K: 13, na: 1, nb: 3, transA: false, transB: true, aType: 'f16', bType: 'f32', bias: false },
  { name: 'f32 · f32 (an f16 output all the same)', M: 6, N: 5, K: 9, na: 1, nb: 1, transA: false, transB: false, aType: 'f32', bType: 'f32', bias: false },
];

/** Σ over the batch of a [batch, rows, cols] array when the operand is shared (n = 1). */
function sumBatch(v: ArrayLike<number>, batch: number, n: number): Float64Array {
  if (n === batch) return Float64Array.from(v);
  const per = v.length / batch;
  const out = new Float64Array(per);
  for (let i = 0; i < v.length; i++) out[i % per] += v[i];
  return out;
}

/** op(A) stored as its own [rows, cols] per batch, transposed: the reference's gradient layout for a transposed operand. */
function transpose(v: ArrayLike<number>, batch: number, rows: number, cols: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let z = 0; z < batch; z++) for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[z * rows * cols + j * rows + i] = v[z * rows * cols + i * cols + j];
  return out;
}

async function checkMatmul(t: MatmulTest, seed: number): Promise<void> {
  const { M, N, K, na, nb, transA, transB } = t;
  const batch = Math.max(na, nb);
  const as = [na, ...(transA ? [K, M] : [M, K])];
  const bs = [nb, ...(transB ? [N, K] : [K, N])];
  const av = rand(numel(as), seed), bv = rand(numel(bs), seed + 1), gv = rand(batch * M * N, seed + 2);
  const biasv = t.bias ? rand(N, seed + 3) : null;
  const ah = r16(av), bh = r16(bv), gh = r16(gv);
  const withBias = (v: Float64Array, f = (u: number) => u) => (biasv ? v.map((u, i) => u + f(biasv[i % N])) : v);
  const yRef = withBias(matmulRef(ah, bh, M, N, K, na, nb, transA, transB));
  const yScale = withBias(matmulRef(abs(ah), abs(bh), M, N, K, na, nb, transA, transB), Math.abs);
  // dA = dY·op(B)ᵀ as [M, K] per batch (stored transposed for Aᵀ); dB = op(A)ᵀ·dY as [K, N] (likewise).
  const gradA = (g: Float64Array, b: Float64Array) => {
    const d = matmulRef(g, b, M, K, N, batch, nb, false, !transB);
    return sumBatch(transA ? transpose(d, batch, M, K) : d, batch, na);
  };
  const gradB = (a: Float64Array, g: Float64Array) => {
    const d = matmulRef(a, g, K, N, M, na, batch, !transA, false);
    return sumBatch(transB ? transpose(d, batch, K, N) : d, batch, nb);
  };

  const a = Tensor.from(av, as, t.aType).param('a');
  const b = Tensor.from(bv, bs, t.bType).param('b');
  // The bias's gradient is a reduction (reduce.ts), not this file's: the bias here is forward only.
  const bias = biasv ? Tensor.from(biasv, [N]) : undefined;
  const y = tidy(() => {
    const out = F.matmul(a, b, { transA, transB, bias });
    backward(out, Tensor.from(gv, out.shape, 'f16'));
    return out;
  });
  await expectResult(y, 'f16', yRef, yScale, 'y');
  await expectResult(a.grad!, t.aType, gradA(gh, bh), gradA(abs(gh), abs(bh)), 'dA');
  await expectResult(b.grad!, t.bType, gradB(ah, gh), gradB(abs(ah), abs(gh)), 'dB');
  for (const u of [a, b]) u.grad?.release();
  for (const u of [a, b, bias, y]) u?.release();
}

forEachKernelProfile((p) => `f16 activations in conv2d and matmul (${p} kernels)`, () => {
  CONVS.forEach((t, i) => {
    it(`conv2d ${t.name}`, () => checkConv(t, 10 * i + 1));
  });
  MATMULS.forEach((t, i) => {
    it(`matmul ${t.name}`, () => checkMatmul(t, 10 * i + 5));
  });
});

describe('f16 storage on emulated subgroup-matrix tiles (gpu profile)', () => {
  let saved: 'gpu' | 'cpu';
  beforeAll(() => {
    saved = device().kernelProfile;
    device().kernelProfile = 'gpu';
  });
  afterAll(() => {
    device().kernelProfile = saved;
    setMatrixTilesMode('auto');
  });

  it('conv2d (64 channels: every GEMM on matrix tiles): the reference, and bit-identical to register tiles', async () => {
    const c: ConvCase = { B: 1, Cin: 64, Cout: 64, H: 8, W: 9, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 };
    const xs = [c.B, c.Cin, c.H, c.W];
    const xv = rand(numel(xs), 31), wv = rand(c.Cout * c.Cin, 32), gv = rand(c.B * c.Cout * c.H * c.W, 33), bv = rand(c.Cout, 34), rv = rand(gv.length, 35);
    const run = async (mode: 'emulate' | 'off') => {
      setMatrixTilesMode(mode);
      const x = Tensor.from(xv, xs, 'f16').param('x');
      const w = Tensor.from(wv, [c.Cout, c.Cin, 1, 1]).param('w');
      const b = Tensor.from(bv, [c.Cout]).param('b');
      const { value, contexts } = await watching('conv2d.wgsl', async () => {
        const y = tidy(() => {
          const out = F.conv2d(x, w, b, { residual: Tensor.from(rv, [c.B, c.Cout, c.H, c.W], 'f16') });
          backward(out, Tensor.from(gv, out.shape, 'f16'));
          return out;
        });
        const outs = [y, x.grad!, w.grad!, b.grad!];
        const dtypes = outs.map((u) => u.dtype);
        const values = (await Tensor.readAll(outs)) as Float32Array[];
        for (const u of [...outs, x, w, b]) u.release();
        return { dtypes, values };
      });
      return { ...value, contexts };
    };
    const matrix = await run('emulate');
    const register = await run('off');
    expect(matrix.contexts.length).toBeGreaterThanOrEqual(3);
    for (const ctx of matrix.contexts) expect(ctx).toMatch(/emulated matrix tiles/);
    for (const ctx of register.contexts) expect(ctx).not.toMatch(/matrix tiles/);
    const ref = conv2dRef(c, r16(xv), r16(wv), bv, r16(gv));
    const scale = conv2dRef(c, abs(r16(xv)), abs(r16(wv)), abs(bv), abs(r16(gv)));
    const want: [DType, ArrayLike<number>, ArrayLike<number>][] = [
      ['f16', plus(ref.y, r16(rv)), plus(scale.y, abs(r16(rv)))],
      ['f16', ref.dx, scale.dx],
      ['f32', ref.dw, scale.dw],
      ['f32', ref.db, scale.db],
    ];
    expect(matrix.dtypes).toEqual(want.map((v) => v[0]));
    want.forEach(([dtype, r, sc], k) => expectValues(matrix.values[k], dtype, r, sc, ['y', 'dx', 'dw', 'db'][k]));
    for (let k = 0; k < 4; k++) expect(matrix.values[k]).toEqual(register.values[k]);
  });

  it('matmul f16 · f32ᵀ: the reference, and bit-identical to register tiles', async () => {
    const [M, N, K] = [80, 72, 40];
    const av = rand(M * K, 41), bv = rand(N * K, 42);
    const results: Float32Array[] = [];
    for (const mode of ['emulate', 'off'] as const) {
      setMatrixTilesMode(mode);
      const { value, contexts } = await watching('matmul.wgsl', async () => {
        const y = tidy(() => F.matmul(Tensor.from(av, [M, K], 'f16'), Tensor.from(bv, [N, K]), { transB: true }));
        expect(y.dtype).toBe('f16');
        const v = await y.toArray();
        y.release();
        return v;
      });
      expect(contexts).toHaveLength(1);
      if (mode === 'emulate') expect(contexts[0]).toMatch(/emulated matrix tiles/);
      else expect(contexts[0]).not.toMatch(/matrix tiles/);
      results.push(value);
    }
    const ref = matmulRef(r16(av), r16(bv), M, N, K, 1, 1, false, true);
    const scale = matmulRef(abs(r16(av)), abs(r16(bv)), M, N, K, 1, 1, false, true);
    expectValues(results[0], 'f16', ref, scale, 'y');
    expect(results[0]).toEqual(results[1]);
  });
});

describe('f16 storage with the real subgroup-matrix builtins', () => {
  it('compiles into pipelines on the null backend (f16 and f32 operands)', async () => {
    const nullDev = await Device.create({ backend: 'null', toggles: ['allow_unsafe_apis'] });
    const storage: GemmStorage = { A: 'f16', B: 'f16', bias: 'f32', C: 'f16', addend: 'f16' };
    try {
      for (const [M, N, K, subgroupSize, type] of [[16, 16, 16, 32, 'f16'], [8, 8, 8, 32, 'f32']] as const) {
        setOperandPrecision(type);
        const m: MatrixTiles = { M, N, K, subgroupSize, emulated: false };
        const tile = matrixTileVariants()[0];
        for (const [file, constants] of [['conv2d.wgsl', { KH: 3, KW: 3 }], ['matmul.wgsl', { TRANS_A: 1, BIAS: 2 }]] as const) {
          nullDev.pipeline(file, 'main', constants, matrixSource(file, tile, m, storage), tiledSource(file, tile, storage));
          await expect(nullDev.sync(), `${file}: ${M}×${N}×${K} ${type}`).resolves.toBeUndefined();
        }
      }
    } finally {
      setOperandPrecision('f16');
      nullDev.destroy();
    }
  });
});
