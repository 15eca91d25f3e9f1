// conv2d forward and gradients against the float64 CPU reference in test/ref.ts, plus a fixture check.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { init, Tensor, F, backward, tidy, device, keep } from '../kernels/index.js';
import { readSafetensors } from '../train/safetensors-file.js';
import { rng, maxRelErr, forEachKernelProfile, conv2dRef as reference, convOutSize as outSize, convCaseData, type ConvCase as Case } from './ref.js';

beforeAll(async () => {
  await init();
});

function rand(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

async function check(c: Case, withBias: boolean, seed: number, tile?: F.TileConfig, impl?: F.Conv2dOptions['impl'], pointwise?: F.Conv2dOptions['pointwise']) {
  const { Ho, Wo, xs, ws, xv, wv, bv, gv } = convCaseData(c, withBias, seed);
  const ref = reference(c, xv, wv, bv, gv);

  const x = Tensor.from(xv, xs).param('x');
  const w = Tensor.from(wv, ws).param('w');
  const b = bv ? Tensor.from(bv, [c.Cout]).param('b') : null;
  if (impl === 'subgroup' && !F.fixedSubgroupSize()) {
    // An adapter without fixed-size subgroups refuses the kernel by name instead of running it.
    expect(() => F.conv2d(x, w, b, { groups: c.groups, impl })).toThrow(/impl 'subgroup' needs an adapter with the subgroups feature/);
    for (const t of [x, w, b]) t?.release();
    return null;
  }
  const y = tidy(() => {
    const out = F.conv2d(x, w, b, { stride: c.stride, padding: c.pad, groups: c.groups, tile, impl, pointwise });
    backward(out, Tensor.from(gv, out.shape));
    return out;
  });
  expect(y.shape).toEqual([c.B, c.Cout, Ho, Wo]);
  const got = { y: await y.toArray(), dx: await x.grad!.toArray(), dw: await w.grad!.toArray(), db: b ? await b.grad!.toArray() : null };
  expect(maxRelErr(got.y, ref.y)).toBeLessThan(1e-5);
  expect(maxRelErr(got.dx, ref.dx)).toBeLessThan(1e-4);
  expect(maxRelErr(got.dw, ref.dw)).toBeLessThan(1e-4);
  if (got.db) expect(maxRelErr(got.db, ref.db)).toBeLessThan(1e-4);
  for (const t of [x, w, b, y]) t?.release();
  for (const t of [x, w, b]) t?.grad?.release();
  return got;
}

const base = { kh: 3, kw: 3, stride: 1, pad: 1, groups: 1 };

// Under the cpu profile the k×k cases below run direct.wgsl, under the gpu profile the implicit GEMM.
forEachKernelProfile((profile) => `${profile} kernel profile: conv2d vs float64 reference (forward, dx, dw, db)`, () => {
  it('3×3 stride 2 pad 1 with bias, odd sizes (stem / downsample)', async () => {
    await check({ ...base, B: 2, Cin: 3, H: 9, W: 9, Cout: 5, stride: 2 }, true, 1);
  });
  it('3×3 stride 1 pad 1 with bias (weight gradient split over several K chunks)', async () => {
    await check({ ...base, B: 2, Cin: 4, H: 11, W: 10, Cout: 6 }, true, 2);
  });
  it('grouped 3×3: Cin 6, Cout 10, groups 2 (split-K weight gradient per group)', async () => {
    await check({ ...base, B: 2, Cin: 6, H: 9, W: 8, Cout: 10, groups: 2 }, true, 3);
  });
  // Each 1×1 case runs every kernel: the implicit GEMM (GPUs), pointwise.wgsl and, where the adapter
  // has fixed-size subgroups, pointwise-subgroup.wgsl (CPU adapters).
  for (const impl of ['gemm', 'pointwise', 'subgroup'] as const) {
    it(`${impl}: grouped 1×1: Cin = Cout = 8, groups 4 (graph_conv)`, async () => {
      await check({ ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 8, H: 8, W: 9, Cout: 8, groups: 4 }, true, 4, undefined, impl);
    });
    it(`${impl}: dense 1×1, Cin 33, N not a multiple of the tiles, 70 output channels (two M tiles)`, async () => {
      await check({ ...base, kh: 1, kw: 1, pad: 0, B: 3, Cin: 33, H: 7, W: 5, Cout: 70 }, true, 5, undefined, impl);
    });
    it(`${impl}: 1×1 label tensor B×C×S×1 without bias`, async () => {
      await check({ ...base, kh: 1, kw: 1, pad: 0, B: 3, Cin: 12, H: 20, W: 1, Cout: 24 }, false, 6, undefined, impl);
    });
    it(`${impl}: wide 1×1, Cin 140 (subgroup: four dw columns per lane from 128, the last block partly empty)`, async () => {
      await check({ ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 140, H: 4, W: 3, Cout: 13 }, true, 9, undefined, impl);
    });
  }
  it('rectangular kernel, stride 3, pad 2, input rows the kernel never reaches', async () => {
    await check({ B: 1, Cin: 2, H: 10, W: 8, Cout: 3, kh: 2, kw: 3, stride: 3, pad: 2, groups: 1 }, true, 7);
  });
  it('the large 128×128 tile (8×8 per thread), chosen only for big layers, forced on a small one', async () => {
    // The 16-, 32- and 64-row tiles are picked by the cases above (M = 5, 24, 70).
    await check({ ...base, B: 2, Cin: 5, H: 6, W: 7, Cout: 9, stride: 2 }, true, 8, F.TILES.large);
  });
});

describe('conv2d pointwise kernels (1×1 on CPU adapters) vs float64 reference', () => {
  const pw = { kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 };
  for (const impl of ['pointwise', 'subgroup'] as const) {
    it(`${impl}: plane of 35 positions (a 3-wide tail after the 4-wide lanes; one position per lane in subgroup), 13 rows (8-row blocks + 5), bias`, async () => {
      await check({ ...pw, B: 2, Cin: 9, H: 7, W: 5, Cout: 13 }, true, 11, undefined, impl);
    });
    it(`${impl}: planes smaller than one lane (S = 3, S = 1), forced`, async () => {
      await check({ ...pw, B: 3, Cin: 5, H: 3, W: 1, Cout: 6 }, true, 12, undefined, impl);
      await check({ ...pw, B: 2, Cin: 4, H: 1, W: 1, Cout: 3 }, false, 13, undefined, impl);
    });
    it(`${impl}: dw over 7 images split into uneven chunks, 70 input channels (two 64-lane blocks), groups 2`, async () => {
      await check({ ...pw, B: 7, Cin: 140, H: 6, W: 6, Cout: 10, groups: 2 }, true, 14, undefined, impl);
    });
    it(`${impl}: planes of 4 positions (one vector per image: lanes span images), grouped, 20 rows and 36 columns of dw`, async () => {
      await check({ ...pw, B: 5, Cin: 36, H: 2, W: 2, Cout: 60, groups: 3 }, true, 16, undefined, impl);
    });
  }
  // Every register block autotuning may pick (autotune.ts): correct on its own, and the same bits as the default.
  it.each([
    ['rows and columns past every block size', { ...pw, B: 5, Cin: 19, H: 5, W: 7, Cout: 21 }, true],
    ['grouped, planes of 4 positions, images split into chunks', { ...pw, B: 7, Cin: 12, H: 2, W: 2, Cout: 18, groups: 3 }, false],
  ] as const)('each tunable block: %s', async (_, c, withBias) => {
    const blocks = [
      ...F.POINTWISE_BLOCKS.gemm.map((gemm) => ({ gemm, dw: F.POINTWISE_BLOCKS.dw[0] })),
      ...F.POINTWISE_BLOCKS.dw.map((dw) => ({ gemm: F.POINTWISE_BLOCKS.gemm[0], dw })),
    ];
    const results = [];
    for (const blk of blocks) results.push(await check(c, withBias, 15, undefined, 'pointwise', blk));
    for (const r of results.slice(1)) expect(r).toEqual(results[0]);
  });
  it('is what the cpu kernel profile picks for 1×1 stride-1 unpadded convs, even on tiny planes (subgroup where it can run, direct.wgsl for k×k); never the gpu one', () => {
    const dev = device();
    const saved = dev.kernelProfile;
    const labels: string[] = [];
    const orig = dev.dispatch;
    dev.dispatch = function (p, ...rest) {
      labels.push(p.label);
      return orig.call(this, p, ...rest);
    };
    try {
      tidy(() => {
        const w = Tensor.from(new Float32Array(6), [3, 2, 1, 1]);
        const w3 = Tensor.from(new Float32Array(54), [3, 2, 3, 3]);
        for (const profile of ['cpu', 'gpu'] as const) {
          dev.kernelProfile = profile;
          F.conv2d(Tensor.from(new Float32Array(64), [1, 2, 8, 4]), w); // 32 positions
          F.conv2d(Tensor.from(new Float32Array(8), [1, 2, 2, 2]), w); // 4
          F.conv2d(Tensor.from(new Float32Array(64), [1, 2, 8, 4]), w3, null, { padding: 1 });
        }
      });
    } finally {
      dev.dispatch = orig;
      dev.kernelProfile = saved;
    }
    const pointwise = F.fixedSubgroupSize() ? 'pointwise-subgroup.wgsl' : 'pointwise.wgsl';
    expect(labels.map((l) => l.split(':')[0])).toEqual([pointwise, pointwise, 'direct.wgsl', 'conv2d.wgsl', 'conv2d.wgsl', 'conv2d.wgsl']);
  });
  it('refuses non-1×1 convs when forced', () => {
    const x = Tensor.from(new Float32Array(50), [1, 2, 5, 5]);
    const w = Tensor.from(new Float32Array(54), [3, 2, 3, 3]);
    expect(() => F.conv2d(x, w, null, { padding: 1, impl: 'pointwise' })).toThrow(/impl 'pointwise' needs a 1×1 kernel/);
    expect(() => F.conv2d(x, w, null, { padding: 1, impl: 'subgroup' })).toThrow(/impl 'subgroup' needs a 1×1 kernel/);
    for (const t of [x, w]) t.release();
  });
});

describe('conv2d dx with a pending gradient of x', () => {
  const cases: [string, Case][] = [
    ['gemm 3×3 stride 1 pad 1', { ...base, B: 2, Cin: 4, H: 5, W: 5, Cout: 4 }],
    ['gemm 1×1 grouped', { ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 6, H: 3, W: 3, Cout: 6, groups: 2 }],
    ['pointwise 1×1 grouped', { ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 6, H: 7, W: 5, Cout: 6, groups: 2 }],
    ['subgroup 1×1 grouped, planes of 4-position vectors', { ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 6, H: 4, W: 5, Cout: 6, groups: 2 }],
    ['direct 3×3 stride 1 pad 1', { ...base, B: 2, Cin: 4, H: 6, W: 7, Cout: 4 }],
    ['direct 5×5 grouped, pad 2', { ...base, kh: 5, kw: 5, pad: 2, B: 3, Cin: 6, H: 5, W: 9, Cout: 6, groups: 3 }],
  ];
  it.each(cases)('%s: x + conv(x) adds the residual\'s gradient in the dx pass (no add dispatch)', async (name, c) => {
    const impl = name.split(' ')[0] as 'gemm' | 'pointwise' | 'subgroup' | 'direct';
    const xs = [c.B, c.Cin, c.H, c.W];
    const ws = [c.Cout, c.Cin / c.groups, c.kh, c.kw];
    const xv = rand(xs.reduce((a, b) => a * b), 61);
    const wv = rand(ws.reduce((a, b) => a * b), 62);
    const gv = rand(xv.length, 63);
    const ref = reference(c, xv, wv, null, gv);
    const x = Tensor.from(xv, xs).param('x');
    const w = Tensor.from(wv, ws).param('w');
    const dev = device();
    const labels: string[] = [];
    const orig = dev.dispatch;
    dev.dispatch = function (p, args, params, wg, ctx) {
      labels.push(ctx);
      return orig.call(this, p, args, params, wg, ctx);
    };
    try {
      tidy(() => backward(F.add(x, F.conv2d(x, w, null, { padding: c.pad, groups: c.groups, impl })), Tensor.from(gv, xs)));
    } finally {
      dev.dispatch = orig;
    }
    expect(labels.filter((l) => l.startsWith('add ')), 'only the forward add').toHaveLength(1);
    expect(maxRelErr(await x.grad!.toArray(), ref.dx.map((v, i) => v + gv[i]))).toBeLessThan(1e-5);
    expect(maxRelErr(await w.grad!.toArray(), ref.dw)).toBeLessThan(1e-4);
    for (const t of [x, w]) {
      t.grad?.release();
      t.release();
    }
  });
});

describe('conv2d with a residual added in its store', () => {
  const cases: [string, Case][] = [
    ['gemm 3×3 stride 2 pad 1', { ...base, stride: 2, B: 2, Cin: 4, H: 7, W: 6, Cout: 5 }],
    ['pointwise 1×1 grouped', { ...base, kh: 1, kw: 1, pad: 0, B: 2, Cin: 6, H: 7, W: 5, Cout: 6, groups: 2 }],
    ['subgroup 1×1, planes of 4-position vectors', { ...base, kh: 1, kw: 1, pad: 0, B: 3, Cin: 5, H: 4, W: 5, Cout: 7 }],
    ['direct 3×3 stride 2 pad 1', { ...base, stride: 2, B: 2, Cin: 4, H: 7, W: 6, Cout: 5 }],
  ];
  it.each(cases)('%s: y = conv(x) + b + r in one pass, r\'s gradient the output\'s', async (name, c) => {
    const impl = name.split(' ')[0] as 'gemm' | 'pointwise' | 'subgroup' | 'direct';
    const Ho = Math.floor((c.H + 2 * c.pad - c.kh) / c.stride) + 1;
    const Wo = Math.floor((c.W + 2 * c.pad - c.kw) / c.stride) + 1;
    const xs = [c.B, c.Cin, c.H, c.W];
    const ws = [c.Cout, c.Cin / c.groups, c.kh, c.kw];
    const ys = [c.B, c.Cout, Ho, Wo];
    const xv = rand(xs.reduce((a, b) => a * b), 71);
    const wv = rand(ws.reduce((a, b) => a * b), 72);
    const bv = rand(c.Cout, 73);
    const rv = rand(ys.reduce((a, b) => a * b), 74);
    const gv = rand(rv.length, 75);
    const ref = reference(c, xv, wv, bv, gv);
    const [x, w, b, r] = [Tensor.from(xv, xs).param('x'), Tensor.from(wv, ws).param('w'), Tensor.from(bv, [c.Cout]).param('b'), Tensor.from(rv, ys).param('r')];
    const dev = device();
    const labels: string[] = [];
    const orig = dev.dispatch;
    dev.dispatch = function (p, args, params, wg, ctx) {
      labels.push(p.label);
      return orig.call(this, p, args, params, wg, ctx);
    };
    let y: Float32Array;
    try {
      y = await tidy(() => {
        const out = F.conv2d(x, w, b, { stride: c.stride, padding: c.pad, groups: c.groups, impl, residual: r });
        backward(out, Tensor.from(gv, ys));
        return keep(out);
      }).toArray();
    } finally {
      dev.dispatch = orig;
    }
    expect(labels.filter((l) => l.startsWith('elementwise'))).toEqual([]);
    expect(maxRelErr(y, ref.y.map((v, i) => v + rv[i]))).toBeLessThan(1e-5);
    expect(maxRelErr(await r.grad!.toArray(), Float64Array.from(gv))).toBe(0);
    expect(maxRelErr(await x.grad!.toArray(), ref.dx)).toBeLessThan(1e-5);
    expect(maxRelErr(await w.grad!.toArray(), ref.dw)).toBeLessThan(1e-4);
    expect(maxRelErr(await b.grad!.toArray(), ref.db)).toBeLessThan(1e-4);
    for (const t of [x, w, b, r]) {
      t.grad?.release();
      t.release();
    }
  });
  it('names a residual of the wrong shape', () => {
    const x = Tensor.from(new Float32Array(50), [1, 2, 5, 5]);
    const w = Tensor.from(new Float32Array(54), [3, 2, 3, 3]);
    const r = Tensor.from(new Float32Array(75), [1, 3, 5, 5]);
    expect(() => F.conv2d(x, w, null, { stride: 2, padding: 1, residual: r })).toThrow('residual [1,3,5,5] f32 must be f32 [1,3,3,3] (the output\'s shape)');
    for (const t of [x, w, r]) t.release();
  });
});

// direct.wgsl reads weights by shuffles where the adapter has fixed-size subgroups, else one load
// per weight: both ways run, the second with the feature hidden from the engine.
for (const subgroups of [true, false]) describe(`conv2d direct kernel (k×k on CPU adapters) vs float64 reference, ${subgroups ? 'as the adapter is' : 'subgroups hidden'}`, () => {
  const d = { kh: 3, kw: 3, stride: 1, pad: 1, groups: 1 };
  let hidden = false;
  beforeAll(() => {
    if (!subgroups) hidden = device().features.delete('subgroups');
  });
  afterAll(() => {
    if (hidden) device().features.add('subgroups');
  });
  it('picks the weight reads accordingly', () => {
    expect(F.fixedSubgroupSize() !== null).toBe(subgroups && device().features.has('subgroups'));
  });
  it('3×3 stride 2 pad 1, odd sizes, 6 output channels (an 8-channel block, 2 of it idle), bias', async () => {
    await check({ ...d, B: 2, Cin: 3, H: 9, W: 11, Cout: 6, stride: 2 }, true, 31, undefined, 'direct');
  });
  it('3×3 stride 1, width 5 (a 1-column tail), lanes past the last image, dw over 7 images in uneven chunks', async () => {
    await check({ ...d, B: 7, Cin: 2, H: 6, W: 5, Cout: 3 }, false, 32, undefined, 'direct');
  });
  it('18 → 20 channels (16-channel blocks + tails for forward and dx), stride 2', async () => {
    await check({ ...d, B: 2, Cin: 18, H: 7, W: 6, Cout: 20, stride: 2 }, true, 39, undefined, 'direct');
  });
  it('grouped 3×3 stride 2: Cin 6, Cout 10, groups 2', async () => {
    await check({ ...d, B: 2, Cin: 6, H: 8, W: 9, Cout: 10, groups: 2, stride: 2 }, true, 33, undefined, 'direct');
  });
  it('5×5 stride 2 pad 2 (3 kernel columns per dx phase), and a plane wider than 64 lanes of quads', async () => {
    await check({ ...d, kh: 5, kw: 5, pad: 2, stride: 2, B: 2, Cin: 3, H: 13, W: 10, Cout: 5 }, true, 34, undefined, 'direct');
    await check({ ...d, B: 1, Cin: 2, H: 33, W: 35, Cout: 3 }, true, 35, undefined, 'direct');
  });
  it('2×3 kernel, stride 3, pad 2: dx phases that no kernel row reaches', async () => {
    await check({ B: 2, Cin: 2, H: 10, W: 8, Cout: 3, kh: 2, kw: 3, stride: 3, pad: 2, groups: 1 }, true, 36, undefined, 'direct');
  });
  it('1×1 stride 2 without padding, and 1×1 stride 1 with padding', async () => {
    await check({ ...d, kh: 1, kw: 1, pad: 0, stride: 2, B: 2, Cin: 4, H: 7, W: 6, Cout: 5 }, true, 37, undefined, 'direct');
    await check({ ...d, kh: 1, kw: 1, pad: 1, B: 2, Cin: 4, H: 5, W: 6, Cout: 5 }, true, 38, undefined, 'direct');
  });
});

forEachKernelProfile((profile) => `${profile} kernel profile: conv2d finite-difference gradcheck`, () => {
  it('matches central differences of a float64 loss Σ y·r', async () => {
    const c: Case = { B: 1, Cin: 2, H: 5, W: 4, Cout: 3, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1 };
    const [Ho, Wo] = outSize(c);
    const xv = rand(c.B * c.Cin * c.H * c.W, 11);
    const wv = rand(c.Cout * c.Cin * 9, 12);
    const bv = rand(c.Cout, 13);
    const r = rand(c.B * c.Cout * Ho * Wo, 14);
    const loss = (xx: ArrayLike<number>, ww: ArrayLike<number>, bb: ArrayLike<number>) =>
      reference(c, xx, ww, bb, r).y.reduce((a, v, i) => a + v * r[i], 0);
    const numeric = (v: Float32Array, f: (p: Float64Array) => number) =>
      Array.from(v, (_, i) => {
        const p = Float64Array.from(v);
        const h = 1e-6;
        p[i] += h;
        const up = f(p);
        p[i] -= 2 * h;
        return (up - f(p)) / (2 * h);
      });
    const ndx = numeric(xv, (p) => loss(p, wv, bv));
    const ndw = numeric(wv, (p) => loss(xv, p, bv));
    const ndb = numeric(bv, (p) => loss(xv, wv, p));

    const x = Tensor.from(xv, [c.B, c.Cin, c.H, c.W]).param();
    const w = Tensor.from(wv, [c.Cout, c.Cin, 3, 3]).param();
    const b = Tensor.from(bv, [c.Cout]).param();
    tidy(() => backward(F.sum(F.mul(F.conv2d(x, w, b, { stride: 2, padding: 1 }), Tensor.from(r, [c.B, c.Cout, Ho, Wo])))));
    expect(maxRelErr(await x.grad!.toArray(), ndx)).toBeLessThan(1e-4);
    expect(maxRelErr(await w.grad!.toArray(), ndw)).toBeLessThan(1e-4);
    expect(maxRelErr(await b.grad!.toArray(), ndb)).toBeLessThan(1e-4);
  });
});

forEachKernelProfile((profile) => `${profile} kernel profile: conv2d properties`, () => {
  it('is bitwise deterministic (split-K weight gradient included)', async () => {
    const run = async () => {
      const x = Tensor.from(rand(2 * 4 * 12 * 12, 21), [2, 4, 12, 12]).param();
      const w = Tensor.from(rand(6 * 4 * 9, 22), [6, 4, 3, 3]).param();
      tidy(() => {
        const y = F.conv2d(x, w, null, { padding: 1 });
        backward(y, Tensor.from(rand(y.size, 23), y.shape));
      });
      return Array.from(await w.grad!.toArray());
    };
    expect(await run()).toEqual(await run());
  });

  it('rejects bad shapes with the op, the shapes and the argument', () => {
    const x = Tensor.empty([2, 6, 5, 5]);
    expect(() => F.conv2d(x, Tensor.empty([4, 6, 3, 3]), null, { groups: 4 })).toThrow(/conv2d x \[2,6,5,5\] weight \[4,6,3,3\]: groups=4 must divide Cin=6/);
    expect(() => F.conv2d(x, Tensor.empty([4, 6, 3, 3]), null, { groups: 2 })).toThrow(/weight dimension 1 is 6, expected Cin\/groups/);
    expect(() => F.conv2d(x, Tensor.empty([4, 6, 3, 3]), Tensor.empty([5]))).toThrow(/bias \[5\] must be \[4\]/);
    expect(() => F.conv2d(x, Tensor.empty([4, 6, 7, 7]))).toThrow(/does not fit the padded input 5×5/);
    expect(() => F.conv2d(x, Tensor.empty([4, 6, 3, 3]), null, { stride: 0 })).toThrow(/stride must be an integer ≥ 1/);
    expect(() => F.conv2d(Tensor.empty([6, 5, 5]), Tensor.empty([4, 6, 3, 3]))).toThrow(/x must be \[B, Cin, H, W\]/);
  });
});

describe('conv2d on the gkg_block_xy fixture', () => {
  it('fc1.0 (dense 1×1, 32→32) agrees with BN-free recomputation of the stored pre-BN path', async () => {
    // The fixture stores BN(conv(x)); here only the conv is checked, through BN's eval affine map
    // inverted in float64: conv = (inter − β)·√(rv + ε)/γ + rm.
    const f = await readSafetensors(new URL('./fixtures/gkg_block_xy.safetensors', import.meta.url).pathname, {
      filter: (n) => n === 'input.x' || n.includes('block.0.fc1.') || n === 'eval.inter.block.0.fc1',
    });
    const get = (n: string) => {
      const t = f.tensors.get(n);
      if (!t) throw new Error(`fixture lacks ${n}`);
      return t;
    };
    const xr = get('input.x');
    const x = Tensor.from(xr.data as Float32Array, xr.shape);
    const w = Tensor.from(get('param.block.0.fc1.0.weight').data as Float32Array, get('param.block.0.fc1.0.weight').shape);
    const b = Tensor.from(get('param.block.0.fc1.0.bias').data as Float32Array, [32]);
    const y = await F.conv2d(x, w, b).toArray();
    const inter = get('eval.inter.block.0.fc1').data;
    const gamma = get('param.block.0.fc1.1.weight').data;
    const beta = get('param.block.0.fc1.1.bias').data;
    const rm = get('buffer.block.0.fc1.1.running_mean').data;
    const rv = get('buffer.block.0.fc1.1.running_var').data;
    const S = 16 * 16;
    const want = Float64Array.from(inter, (v, i) => {
      const c = Math.floor(i / S) % 32;
      return ((v - beta[c]) * Math.sqrt(rv[c] + 1e-5)) / gamma[c] + rm[c];
    });
    expect(maxRelErr(y, want)).toBeLessThan(1e-4);
    await device().sync();
  });
});
