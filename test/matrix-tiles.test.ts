// Subgroup-matrix tiles for the convolution GEMMs (kernels/matrix-tiles.ts, tile-matrix.wgsl).
// - Emulated matrix operations (every adapter): conv2d's forward, dx and dw against the float64
//   reference, and bit-identical to the register tiles (both add each output's products in k
//   order into one f32 sum, so any tiling or indexing slip shows).
// - The real builtins compile, with every shape the tiling accepts, on Dawn's null backend (which
//   validates WGSL and pipelines for every feature but runs nothing).
// - verifyMatrixTiles(): the adapter's tiles against the register tiles where it offers them;
//   elsewhere, the reason it gives.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { init, Tensor, F, backward, tidy, device, setOperandPrecision, setActivationDtype } from '../kernels/index.js';
import { Device } from '../engine/device.js';
import { setMatrixTilesMode, matrixSource, verifyMatrixTiles, compareMatrixTiles, offeredMatrixTiles, fitsTile, matrixTileVariants, type MatrixTiles } from '../kernels/matrix-tiles.js';
import { tiledSource } from '../kernels/matmul.js';
import { rand, maxRelErr, conv2dRef, convCaseData, f16round, matmulRef, watching, type ConvCase } from './ref.js';

beforeAll(async () => {
  await init();
});

afterAll(() => {
  setMatrixTilesMode('auto');
  setOperandPrecision('f32');
});

/** conv2d.wgsl's output, dx, dw (and db) for case c, and the contexts of the conv GEMM dispatches. */
async function run(c: ConvCase, withBias: boolean, seed: number, residual: boolean, tile?: F.TileConfig) {
  const { Ho, Wo, xs, ws, xv, wv, bv, gv } = convCaseData(c, withBias, seed);
  const rv = residual ? rand(c.B * c.Cout * Ho * Wo, seed + 4) : null;
  const x = Tensor.from(xv, xs).param('x');
  const w = Tensor.from(wv, ws).param('w');
  const b = bv ? Tensor.from(bv, [c.Cout]).param('b') : null;
  const { value: got, contexts } = await watching('conv2d.wgsl', async () => {
    const y = tidy(() => {
      const r = rv ? Tensor.from(rv, [c.B, c.Cout, Ho, Wo]) : undefined;
      const out = F.conv2d(x, w, b, { stride: c.stride, padding: c.pad, groups: c.groups, impl: 'gemm', residual: r, tile });
      backward(out, Tensor.from(gv, out.shape));
      return out;
    });
    const values = { y: await y.toArray(), dx: await x.grad!.toArray(), dw: await w.grad!.toArray(), db: b ? await b.grad!.toArray() : null };
    for (const t of [x, w, b, y]) t?.release();
    for (const t of [x, w, b]) t?.grad?.release();
    return values;
  });
  return { got, contexts, inputs: { xv, wv, bv, gv, rv } };
}

const CASES: [string, ConvCase, boolean, boolean][] = [
  ['1×1 with bias and a residual, odd plane (edges in N)', { B: 2, Cin: 72, Cout: 80, H: 7, W: 9, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, true, true],
  ['3×3 stride 2 pad 1, 2 groups (edges in M, split weight gradient)', { B: 2, Cin: 96, Cout: 112, H: 11, W: 11, kh: 3, kw: 3, stride: 2, pad: 1, groups: 2 }, false, false],
];

describe('conv2d on emulated subgroup-matrix tiles', () => {
  for (const [name, c, withBias, residual] of CASES) {
    it(`${name}: float64 reference, and bit-identical to register tiles`, async () => {
      setMatrixTilesMode('emulate');
      const matrix = await run(c, withBias, 11, residual);
      setMatrixTilesMode('off');
      const register = await run(c, withBias, 11, residual);
      setMatrixTilesMode('auto');

      // Every GEMM of this case is large enough for matrix tiles, and said so.
      expect(matrix.contexts.length).toBeGreaterThanOrEqual(3);
      for (const ctx of matrix.contexts) expect(ctx).toMatch(/16×16×16 emulated matrix tiles/);
      for (const ctx of register.contexts) expect(ctx).not.toMatch(/matrix tiles/);

      const { xv, wv, bv, gv, rv } = matrix.inputs;
      const ref = conv2dRef(c, xv, wv, bv, gv);
      const y = rv ? ref.y.map((v, i) => v + rv[i]) : ref.y;
      expect(maxRelErr(matrix.got.y, y)).toBeLessThan(1e-5);
      expect(maxRelErr(matrix.got.dx, ref.dx)).toBeLessThan(1e-4);
      expect(maxRelErr(matrix.got.dw, ref.dw)).toBeLessThan(1e-4);
      if (bv) expect(maxRelErr(matrix.got.db!, ref.db)).toBeLessThan(1e-4);
      for (const k of ['y', 'dx', 'dw', 'db'] as const) expect(matrix.got[k]).toEqual(register.got[k]);
    });
  }

  it('f16 operands (--precision mixed): the reference on f16-rounded operands, bit-identical to register tiles', async () => {
    const c: ConvCase = { B: 1, Cin: 64, Cout: 64, H: 8, W: 9, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 };
    setOperandPrecision('f16');
    try {
      setMatrixTilesMode('emulate');
      const matrix = await run(c, false, 5, false);
      setMatrixTilesMode('off');
      const register = await run(c, false, 5, false);
      setMatrixTilesMode('auto');
      const { xv, wv, gv } = matrix.inputs;
      const r16 = (a: ArrayLike<number>) => Float64Array.from(a, f16round);
      // Forward rounds x and w; dx rounds w and dy; dw rounds dy and x.
      expect(maxRelErr(matrix.got.y, conv2dRef(c, r16(xv), r16(wv), null, gv).y)).toBeLessThan(1e-5);
      expect(maxRelErr(matrix.got.dx, conv2dRef(c, xv, r16(wv), null, r16(gv)).dx)).toBeLessThan(1e-5);
      expect(maxRelErr(matrix.got.dw, conv2dRef(c, r16(xv), wv, null, r16(gv)).dw)).toBeLessThan(1e-5);
      for (const k of ['y', 'dx', 'dw'] as const) expect(matrix.got[k]).toEqual(register.got[k]);
    } finally {
      setMatrixTilesMode('auto');
      setOperandPrecision('f32');
    }
  });

  it('the 128×128 tile (autotuning\'s other choice with f16 operands): bit-identical to register tiles of that size', async () => {
    const c = CASES[0][1];
    setOperandPrecision('f16');
    try {
      const large = matrixTileVariants()[1];
      expect(large).toEqual(F.TILES.large);
      setMatrixTilesMode('emulate');
      const matrix = await run(c, true, 13, false, large);
      setMatrixTilesMode('off');
      const register = await run(c, true, 13, false, large);
      expect(matrix.contexts.length).toBeGreaterThanOrEqual(3);
      for (const ctx of matrix.contexts) expect(ctx).toMatch(/emulated matrix tiles/);
      for (const ctx of register.contexts) expect(ctx).not.toMatch(/matrix tiles/);
      const { xv, wv, bv, gv } = matrix.inputs;
      const r16 = (a: ArrayLike<number>) => Float64Array.from(a, f16round);
      expect(maxRelErr(matrix.got.y, conv2dRef(c, r16(xv), r16(wv), bv, gv).y)).toBeLessThan(1e-5);
      for (const k of ['y', 'dx', 'dw', 'db'] as const) expect(matrix.got[k]).toEqual(register.got[k]);
    } finally {
      setMatrixTilesMode('auto');
      setOperandPrecision('f32');
    }
  });

  // Non-square shapes: a swapped M and N (or a wrong lane split) would show here, not with 16×16×16.
  for (const shape of [{ M: 8, N: 16, K: 16, subgroupSize: 16 }, { M: 16, N: 8, K: 16, subgroupSize: 32 }]) {
    it(`${shape.M}×${shape.N}×${shape.K} matrices, ${shape.subgroupSize} lanes: bit-identical to register tiles`, async () => {
      const c = CASES[1][1];
      setMatrixTilesMode('emulate', shape);
      const matrix = await run(c, false, 17, false);
      setMatrixTilesMode('off');
      const register = await run(c, false, 17, false);
      setMatrixTilesMode('auto');
      expect(matrix.contexts.length).toBeGreaterThanOrEqual(3);
      for (const ctx of matrix.contexts) expect(ctx).toContain(`${shape.M}×${shape.N}×${shape.K} emulated matrix tiles`);
      for (const k of ['y', 'dx', 'dw'] as const) expect(matrix.got[k]).toEqual(register.got[k]);
    });
  }

  it('matmul (the GPU profile\'s tiled kernel): float64 reference and register tiles, transposed operands, a bias, a batch', async () => {
    const dev = device();
    const saved = dev.kernelProfile;
    dev.kernelProfile = 'gpu';
    try {
      for (const [M, K, N, batch, transA, transB] of [[80, 40, 72, 1, false, true], [64, 24, 130, 2, true, false]] as const) {
        const av = rand(batch * M * K, M), bv = rand(batch * K * N, N), biasv = rand(N, 3);
        const shapeA = transA ? [batch, K, M] : [batch, M, K];
        const shapeB = transB ? [batch, N, K] : [batch, K, N];
        const results: Float32Array[] = [];
        for (const m of ['emulate', 'off'] as const) {
          setMatrixTilesMode(m);
          const { value, contexts } = await watching('matmul.wgsl', async () => {
            const y = tidy(() => F.matmul(Tensor.from(av, shapeA), Tensor.from(bv, shapeB), { transA, transB, bias: Tensor.from(biasv, [N]) }));
            const v = await y.toArray();
            y.release();
            return v;
          });
          results.push(value);
          expect(contexts).toHaveLength(1);
          if (m === 'emulate') expect(contexts[0]).toMatch(/emulated matrix tiles/);
          else expect(contexts[0]).not.toMatch(/matrix tiles/);
        }
        const ref = matmulRef(av, bv, M, N, K, batch, batch, transA, transB).map((v, i) => v + biasv[i % N]);
        expect(maxRelErr(results[0], ref)).toBeLessThan(1e-5);
        expect(results[0]).toEqual(results[1]);
      }
    } finally {
      setMatrixTilesMode('auto');
      dev.kernelProfile = saved;
    }
  });

  it('GEMMs under 48 rows stay on register tiles', async () => {
    setMatrixTilesMode('emulate');
    try {
      const small = await run({ B: 2, Cin: 16, Cout: 32, H: 8, W: 8, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, false, 3, false);
      expect(small.contexts.length).toBeGreaterThanOrEqual(3);
      for (const ctx of small.contexts) expect(ctx).not.toMatch(/matrix tiles/);
    } finally {
      setMatrixTilesMode('auto');
    }
  });
});

describe('real subgroup-matrix builtins', () => {
  // Shapes adapters offer: NVIDIA 16×16×16 (32 lanes), Apple 8×8×8 (32), Intel 8×16×16 (16).
  const SHAPES: [number, number, number, number, 'f16' | 'f32'][] = [
    [16, 16, 16, 32, 'f16'],
    [8, 8, 8, 32, 'f16'],
    [8, 16, 16, 16, 'f16'],
    [8, 8, 8, 32, 'f32'],
  ];

  // conv2d.wgsl with 1×1 and 3×3 kernels; matmul.wgsl plain and with both operands transposed.
  const KERNELS: [string, Record<string, number>[]][] = [
    ['conv2d.wgsl', [{ KH: 1, KW: 1 }, { KH: 3, KW: 3 }]],
    ['matmul.wgsl', [{}, { TRANS_A: 1, TRANS_B: 1, BIAS: 2, ACT: 2 }]],
  ];

  it('compile into pipelines on the null backend for every offered shape: conv2d and matmul', async () => {
    const nullDev = await Device.create({ backend: 'null', toggles: ['allow_unsafe_apis'] });
    let compiled = 0;
    expect(nullDev.features.has('chromium-experimental-subgroup-matrix')).toBe(true);
    try {
      for (const [M, N, K, subgroupSize, type] of SHAPES) {
        setOperandPrecision(type);
        const m: MatrixTiles = { M, N, K, subgroupSize, emulated: false };
        const tiles = matrixTileVariants().filter((t) => fitsTile(m, t, nullDev));
        expect(tiles[0], 'the default tile fits').toBe(matrixTileVariants()[0]);
        for (const tile of tiles) {
          for (const [file, variants] of KERNELS) {
            const code = matrixSource(file, tile, m);
            const bindings = tiledSource(file, tile);
            for (const constants of variants) nullDev.pipeline(file, 'main', constants, code, bindings);
            await expect(nullDev.sync(), `${file}: ${M}×${N}×${K} ${type}, ${subgroupSize} lanes, ${tile.BM}×${tile.BN} tile`).resolves.toBeUndefined();
            compiled++;
          }
        }
      }
      // Both tiles for NVIDIA's and Intel's shapes, the 64×64 one for Apple's; both kernels.
      expect(compiled).toBe(12);
    } finally {
      setOperandPrecision('f32');
      nullDev.destroy();
    }
  });

  it('verifyMatrixTiles: agree with register tiles where offered, else say why not', async () => {
    setOperandPrecision('f16');
    try {
      const offered = offeredMatrixTiles(device(), 'f16');
      const verdict = await verifyMatrixTiles();
      if (offered) {
        expect(verdict).toBeNull();
        const c = CASES[0][1];
        const { got, contexts, inputs } = await run(c, true, 21, false);
        expect(contexts.every((ctx) => /matrix tiles/.test(ctx))).toBe(true);
        const r16 = (a: ArrayLike<number>) => Float64Array.from(a, f16round);
        expect(maxRelErr(got.y, conv2dRef(c, r16(inputs.xv), r16(inputs.wv), inputs.bv, inputs.gv).y)).toBeLessThan(1e-5);
      } else {
        expect(verdict).toMatch(/offers no f16 subgroup-matrix shape with f32 results/);
      }
      setMatrixTilesMode('off');
      expect(await verifyMatrixTiles()).toBe('WEBVIG_MATRIX_TILES=off');
    } finally {
      setMatrixTilesMode('auto');
      setOperandPrecision('f32');
    }
  });
});

describe('the self-check of matrix tiles', () => {
  it('compareMatrixTiles: emulated tiles agree with register tiles, with f32 and then f16 activations (the f16 kernels a run uses)', async () => {
    setOperandPrecision('f16');
    setActivationDtype('f16');
    const seen = new Set<string>();
    const dev = device();
    const profile = dev.kernelProfile;
    dev.kernelProfile = 'gpu';
    const shape = { M: 16, N: 16, K: 16, subgroupSize: 32, emulated: true };
    const dispatch = dev.dispatch.bind(dev);
    let live = 0;
    dev.dispatch = (p, args, params, wg, ctx) => {
      if (/matrix tiles/.test(ctx)) seen.add(`${ctx} | ${args.map((a) => a.dtype).join(' ')}`);
      return dispatch(p, args, params, wg, ctx);
    };
    try {
      expect(await compareMatrixTiles(shape)).toBeNull();
      dev.dispatch = dispatch;
      // Once more, after the first made its pipelines and kept placeholders: nothing stays behind.
      live = dev.pool.liveBytes;
      expect(await compareMatrixTiles(shape)).toBeNull();
    } finally {
      dev.dispatch = dispatch;
      dev.kernelProfile = profile;
      setActivationDtype('f32');
      setOperandPrecision('f32');
    }
    expect(dev.pool.liveBytes).toBe(live);
    // Both kernels ran on matrix tiles in both rounds; in the f16 one the convolution's residual
    // and its input gradient's addend (x's other use) were f16 (arrays: A B bias C addend).
    const runs = [...seen];
    const ran = (re: RegExp) => expect(runs.some((r) => re.test(r)), String(re)).toBe(true);
    ran(/^conv2d .*\(forward, .*matrix tiles\) \| f32 f32 f32 f32 f32$/);
    ran(/^conv2d .*\(forward, .*matrix tiles\) \| f32 f16 f32 f16 f16$/);
    ran(/^conv2d .*\(input gradient, .*matrix tiles\) \| f32 f16 f32 f16 f16$/);
    ran(/^conv2d .*\(weight gradient, .*matrix tiles\) \| f16 f16 f32 f32 f32$/);
    ran(/^matmul .*matrix tiles \| f32 f32 f32 f32$/);
    ran(/^matmul .*matrix tiles \| f16 f32 f32 f16$/);
  }, 300_000);
});
