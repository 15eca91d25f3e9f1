// Autotuning of pointwise.wgsl's register blocks and of conv2d.wgsl's and matmul.wgsl's tiles: what
// is timed, what the per-adapter cache file holds, that a cached choice is what runs (with the same
// numbers), and that a corrupt file is ignored with a warning.
// (Each block's numerics against a float64 reference: conv2d.test.ts.)
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Tensor, F, tidy, device, noGrad, backward } from '../kernels/index.js';
import { setOperandPrecision } from '../engine/context.js';
import { adapterKey, autotune, resetTuning, tuneEntries, tunePending } from '../kernels/autotune.js';
import { tuneCacheDir, tuneCachePath, useTuneCache } from '../train/tune-cache.js';

beforeAll(async () => {
  await init();
});

afterEach(() => {
  resetTuning();
});

/** The TM template value of each pointwise gemm launched while `fn` runs. */
function gemmRows(fn: () => void): number[] {
  const dev = device();
  const rows: number[] = [];
  const orig = dev.dispatch;
  dev.dispatch = function (p, ...rest) {
    if (p.label.startsWith('pointwise.wgsl:gemm')) rows.push(Number(/const TM: u32 = (\d+)u;/.exec(p.info.code)![1]));
    return orig.call(this, p, ...rest);
  };
  try {
    fn();
  } finally {
    dev.dispatch = orig;
  }
  return rows;
}

/** A tile's shape as "BM BN TM TN", from its template values or from a kernel's source. */
function tileName(v: Record<string, number>): string {
  return ['BM', 'BN', 'TM', 'TN'].map((k) => v[k]).join(' ');
}

function tileInCode(code: string): string {
  return tileName(Object.fromEntries(['BM', 'BN', 'TM', 'TN'].map((k) => [k, Number(new RegExp(`const ${k}: u32 = (\\d+)u;`).exec(code)![1])])));
}

/** fn's value, and the tile of each dispatch it made of kernel `file`. */
async function tilesOf<T>(file: string, fn: () => Promise<T>): Promise<{ tiles: string[]; value: T }> {
  const dev = device();
  const tiles: string[] = [];
  const orig = dev.dispatch;
  dev.dispatch = function (p, ...rest) {
    if (p.label.startsWith(file)) tiles.push(tileInCode(p.info.code));
    return orig.call(this, p, ...rest);
  };
  try {
    return { tiles, value: await fn() };
  } finally {
    dev.dispatch = orig;
  }
}

/** fn under the gpu kernel profile. */
async function onGpuProfile<T>(fn: () => Promise<T>): Promise<T> {
  const dev = device();
  const saved = dev.kernelProfile;
  dev.kernelProfile = 'gpu';
  try {
    return await fn();
  } finally {
    dev.kernelProfile = saved;
  }
}

/** A fresh process's tuning, as read from a cache file that holds `entries`. */
async function cacheNaming(entries: Record<string, unknown>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'webvig-tune-'));
  await writeFile(tuneCachePath(adapterKey(), dir), JSON.stringify({ version: 1, adapter: adapterKey(), entries }));
  resetTuning();
  await useTuneCache(() => {}, dir);
}

function conv(): void {
  tidy(() => noGrad(() => F.conv2d(Tensor.randn([2, 6, 5, 4], 1), Tensor.randn([10, 6, 1, 1], 2), null, { impl: 'pointwise' })));
}

describe('autotune cache', () => {
  it('times a new shape once, saves the choice per adapter, and a later process runs the cached choice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webvig-tune-'));
    const warnings: string[] = [];
    await useTuneCache((m) => warnings.push(m), dir);
    expect(gemmRows(conv)).toEqual([F.POINTWISE_BLOCKS.gemm[0].TM]); // untimed: the default
    expect(tunePending()).toBe(1);
    expect(await autotune({ iters: 1 })).toBe(1);
    expect(tunePending()).toBe(0);
    gemmRows(conv);
    expect(tunePending(), 'timed once').toBe(0);

    const path = tuneCachePath(adapterKey(), dir);
    expect(await readdir(dir)).toEqual([path.slice(dir.length + 1)]); // no temporary file left
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(doc.adapter).toBe(adapterKey());
    const [[key, choice]] = Object.entries(doc.entries) as [string, { TM: number }][];
    expect(key).toMatch(/^pointwise\.wgsl:gemm\|fwd B2 M10 K6 S20 g1 f32\|/);
    expect(F.POINTWISE_BLOCKS.gemm).toContainEqual(choice);

    // A new process (reset) reading a file that names another block: that block runs, nothing is timed.
    const other = F.POINTWISE_BLOCKS.gemm.find((b) => b.TM !== choice.TM)!;
    await writeFile(path, JSON.stringify({ ...doc, entries: { [key]: other } }));
    resetTuning();
    await useTuneCache((m) => warnings.push(m), dir);
    expect(gemmRows(conv)).toEqual([other.TM]);
    expect(tunePending()).toBe(0);
    expect(tuneEntries()).toEqual({ [key]: other });
    expect(warnings).toEqual([]);
  });

  it('ignores a corrupt or foreign cache file with a warning, then rewrites it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webvig-tune-'));
    const path = tuneCachePath(adapterKey(), dir);
    for (const bad of ['{"version":1,"adapter":', '[1,2]', JSON.stringify({ version: 1, adapter: 'another gpu', entries: {} })]) {
      resetTuning();
      await writeFile(path, bad);
      const warnings: string[] = [];
      await useTuneCache((m) => warnings.push(m), dir);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`ignoring the autotune cache ${path}`);
      expect(gemmRows(conv)).toEqual([F.POINTWISE_BLOCKS.gemm[0].TM]);
    }
    // A cached value that is not one of the blocks is never launched.
    resetTuning();
    const key = `pointwise.wgsl:gemm|fwd B2 M10 K6 S20 g1 f32|${JSON.stringify(F.POINTWISE_BLOCKS.gemm)}`;
    await writeFile(path, JSON.stringify({ version: 1, adapter: adapterKey(), entries: { [key]: { TM: 3, TN: 1 } } }));
    await useTuneCache(() => {}, dir);
    expect(gemmRows(conv)).toEqual([F.POINTWISE_BLOCKS.gemm[0].TM]);
    expect(await autotune({ iters: 1 })).toBe(1);
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(F.POINTWISE_BLOCKS.gemm).toContainEqual(doc.entries[key]);
  });

  it('tunes f16 operands (--precision mixed) apart from f32: their kernels differ, so may their best blocks', async () => {
    gemmRows(conv);
    expect(await autotune({ iters: 1 })).toBe(1);
    gemmRows(conv);
    expect(tunePending()).toBe(0);
    setOperandPrecision('f16');
    try {
      gemmRows(conv);
      expect(tunePending()).toBe(1);
      expect(await autotune({ iters: 1 })).toBe(1);
    } finally {
      setOperandPrecision('f32');
    }
    expect(Object.keys(tuneEntries()).map((k) => k.split('|')[1])).toEqual(['fwd B2 M10 K6 S20 g1 f32', 'fwd B2 M10 K6 S20 g1 f16']);
  });

  it("GPU profile: conv2d.wgsl's register tile is timed per GEMM and the choice gives the default tile's numbers bit for bit", async () => {
    // A 3×3 conv with bias: forward, input gradient and weight gradient (+ db, K split in chunks).
    const run = () => onGpuProfile(() => tilesOf('conv2d.wgsl', async () => {
      const x = Tensor.randn([2, 24, 9, 9], 1).param('x');
      const w = Tensor.randn([40, 24, 3, 3], 2).param('w');
      const b = Tensor.randn([40], 3).param('b');
      const y = tidy(() => {
        const out = F.conv2d(x, w, b, { padding: 1 });
        backward(out, Tensor.randn(out.shape, 4));
        return out;
      });
      const values = (await Tensor.readAll([y, x.grad!, w.grad!, b.grad!])) as Float32Array[];
      for (const t of [y, x, w, b, x.grad, w.grad, b.grad]) t?.release();
      return values;
    }));
    const before = await run();
    expect(before.tiles).toHaveLength(3);
    expect(tunePending(), 'forward, input gradient, weight gradient').toBe(3);
    expect(await autotune({ iters: 1 })).toBe(3);
    const keys = Object.keys(tuneEntries());
    expect(keys.map((k) => k.split('|')[1])).toEqual(['fwd B2 Cin24 9x9 Cout40 k3x3 s1x1 p1x1 g1 bias f32', 'dx B2 Cin24 9x9 Cout40 k3x3 s1x1 p1x1 g1 f32', 'dw B2 Cin24 9x9 Cout40 k3x3 s1x1 p1x1 g1 db f32']);
    for (const k of keys) expect(k.startsWith('conv2d.wgsl|')).toBe(true);
    const after = await run();
    expect(tunePending()).toBe(0);
    expect(after.tiles).toEqual(Object.values(tuneEntries()).map((v) => tileName(v as Record<string, number>)));
    expect(after.value).toEqual(before.value);
    // Whatever tile a cache names (here the second and the last of each list), the numbers stay.
    for (const pick of [1, -1]) {
      const entries = Object.fromEntries(keys.map((k) => [k, JSON.parse(k.split('|')[2]).at(pick)]));
      await cacheNaming(entries);
      const cached = await run();
      expect(cached.tiles).toEqual(keys.map((k) => tileName(entries[k])));
      expect(cached.tiles).not.toEqual(before.tiles);
      expect(cached.value).toEqual(before.value);
    }
  });

  it("GPU profile: matmul.wgsl's register tile is timed per shape, and every tile gives the same numbers", async () => {
    const run = () => onGpuProfile(() => tilesOf('matmul.wgsl', async () => {
      const y = noGrad(() => F.matmul(Tensor.randn([2, 70, 33], 1), Tensor.randn([2, 90, 33], 2), { transB: true, bias: Tensor.randn([90], 3) }));
      const value = await y.toArray();
      y.release();
      return value;
    }));
    const before = await run();
    expect(before.tiles).toHaveLength(1);
    expect(tunePending()).toBe(1);
    expect(await autotune({ iters: 1 })).toBe(1);
    const [key] = Object.keys(tuneEntries());
    expect(key).toMatch(/^matmul\.wgsl\|ABᵀ M70 N90 K33 b2\/2\/2 bias2 none f32\|/);
    const list = JSON.parse(key.split('|')[2]) as Record<string, number>[];
    expect(list).toHaveLength(3);
    // Each tile of the list, named by a cache: the same numbers bit for bit.
    for (const pick of list) {
      await cacheNaming({ [key]: pick });
      const cached = await run();
      expect(cached.tiles).toEqual([tileName(pick)]);
      expect(cached.value).toEqual(before.value);
    }
  });

  it('lives in $WEBVIG_CACHE_DIR, else $XDG_CACHE_HOME/webvig, else ~/.cache/webvig', () => {
    expect(tuneCacheDir({ WEBVIG_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c');
    expect(tuneCacheDir({ XDG_CACHE_HOME: '/x' })).toBe(join('/x', 'webvig'));
    expect(tuneCacheDir({ HOME: '/h' })).toMatch(/\.cache\/webvig$/);
  });
});
