import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, tidy, device } from '../kernels/index.js';
import { fixedSubgroupSize } from '../kernels/subgroups.js';
import { readSafetensors } from '../train/safetensors-file.js';
import { dilatedKnn } from '../kernels/knn.js';
import { rand, avgPoolRef, forEachKernelProfile, normaliseGroups, groupDistances, type GraphDims } from './ref.js';

beforeAll(async () => {
  await init();
});

// ------------------------------------------------------------------ float64 CPU reference

interface RefOptions {
  k: number;
  d: number;
  G: number;
  pos?: ArrayLike<number>; // [N, M]
  normalize?: boolean;
}

interface RefResult {
  /** [B·G, N, k] kept indices. */
  idx: Int32Array;
  /** Per (row, query): the kept set is decided by a distance gap < 1e-5 (exact ties are decided). */
  fragileSet: Uint8Array;
  /** Per (row, query): some adjacent pair in the sorted window has a gap < 1e-5. */
  fragileOrder: Uint8Array;
}

const GAP = 1e-5;

function normalised(x: Float32Array, B: number, C: number, L: number, G: number, normalize: boolean): Float64Array {
  return normalize ? normaliseGroups(x, B, C, L, G) : Float64Array.from(x);
}

function knnRef(q: Float32Array, s: Float32Array, B: number, C: number, N: number, M: number, o: RefOptions): RefResult {
  const { k, d, G } = o;
  const qn = normalised(q, B, C, N, G, o.normalize ?? true);
  const sn = normalised(s, B, C, M, G, o.normalize ?? true);
  const rows = B * G;
  const idx = new Int32Array(rows * N * k);
  const fragileSet = new Uint8Array(rows * N);
  const fragileOrder = new Uint8Array(rows * N);
  const window = (k - 1) * d + 1;
  const dist = new Float64Array(M);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++) {
      const row = b * G + g;
      for (let n = 0; n < N; n++) {
        groupDistances(qn, sn, { C, N, M, G }, b, g, n, o.pos, dist);
        const order = Array.from({ length: M }, (_, m) => m).sort((a, c) => dist[a] - dist[c] || a - c);
        for (let t = 0; t < k; t++) idx[(row * N + n) * k + t] = order[t * d];
        // Gaps that decide the result; an exact tie is decided by the index rule, not fragile.
        const close = (i: number) => {
          const gap = dist[order[i + 1]] - dist[order[i]];
          return gap > 0 && gap < GAP;
        };
        let set = false, ord = false;
        for (let i = 0; i + 1 < M && i < window; i++) {
          if (!close(i)) continue;
          ord = true;
          if (d === 1 ? i === k - 1 : i % d === 0 || (i + 1) % d === 0) set = true;
        }
        fragileSet[row * N + n] = set ? 1 : 0;
        fragileOrder[row * N + n] = ord ? 1 : 0;
      }
    }
  return { idx, fragileSet, fragileOrder };
}

/** Rows (as "row,query") whose neighbour sets differ, skipping the ones flagged in `skip`. */
function setMismatches(got: Int32Array, want: Int32Array, k: number, skip?: Uint8Array): string[] {
  const bad: string[] = [];
  for (let r = 0; r < want.length / k; r++) {
    if (skip?.[r]) continue;
    const a = Array.from(got.subarray(r * k, r * k + k)).sort((x, y) => x - y);
    const b = Array.from(want.subarray(r * k, r * k + k)).sort((x, y) => x - y);
    if (a.join() !== b.join()) bad.push(`${r}: got [${got.subarray(r * k, r * k + k).join(',')}] want [${want.subarray(r * k, r * k + k).join(',')}]`);
  }
  return bad;
}

function orderMismatches(got: Int32Array, want: Int32Array, k: number, skip: Uint8Array): number {
  let bad = 0;
  for (let r = 0; r < want.length / k; r++) {
    if (skip[r]) continue;
    for (let t = 0; t < k; t++) if (got[r * k + t] !== want[r * k + t]) { bad++; break; }
  }
  return bad;
}

interface Case extends GraphDims {
  name: string;
  d: number;
  pos?: 'none' | '2d' | '3d';
  self?: boolean;
  normalize?: boolean;
  /** Make every source column a copy of column ⌊m / dup⌋·dup (exact distance ties). */
  dup?: number;
  impl?: 'fused' | 'products';
}

async function runCase(c: Case, seed: number) {
  const q = rand(c.B * c.C * c.N, seed);
  let s = c.self ? q : rand(c.B * c.C * c.M, seed + 1);
  if (c.dup) {
    s = s.slice();
    for (let bc = 0; bc < c.B * c.C; bc++)
      for (let m = 0; m < c.M; m++) s[bc * c.M + m] = s[bc * c.M + Math.floor(m / c.dup) * c.dup];
  }
  let pos: Float32Array | undefined;
  if (c.pos && c.pos !== 'none') {
    pos = rand(c.N * c.M, seed + 2, -1, 1);
    if (c.self) for (let n = 0; n < c.N; n++) pos[n * c.M + n] = -1; // as ViG: self is always #0
  }
  const ref = knnRef(q, s, c.B, c.C, c.N, c.M, { k: c.k, d: c.d, G: c.G, pos, normalize: c.normalize });
  const got = tidy(() => {
    const qt = Tensor.from(q, [c.B, c.C, c.N]);
    const st = c.self ? qt : Tensor.from(s, [c.B, c.C, c.M]);
    const pt = pos ? Tensor.from(pos, c.pos === '3d' ? [1, c.N, c.M] : [c.N, c.M]) : undefined;
    return dilatedKnn(qt, st, { k: c.k, dilation: c.d, groups: c.G, relativePos: pt, normalize: c.normalize, impl: c.impl });
  });
  expect(got.shape).toEqual([c.B * c.G, c.N, c.k]);
  expect(got.dtype).toBe('i32');
  const idx = await got.toInt32Array();
  got.release();
  return { ref, idx };
}

const cases: Case[] = [
  { name: 'G=1, pos [1,N,M], N and M off the tiles, C < chunk', B: 2, C: 5, N: 70, M: 45, k: 4, d: 3, G: 1, pos: '3d' },
  { name: 'G=2, pos [N,M], two channel chunks (C/G = 37)', B: 1, C: 74, N: 130, M: 33, k: 5, d: 2, G: 2, pos: '2d' },
  { name: 'k·d = M exactly', B: 2, C: 6, N: 9, M: 12, k: 4, d: 3, G: 2, pos: '2d' },
  { name: 'self graph (query = source), k·d = 27', B: 2, C: 8, N: 50, M: 50, k: 9, d: 3, G: 2, pos: '2d', self: true },
  { name: 'pooled sources, no position term', B: 3, C: 12, N: 64, M: 16, k: 9, d: 1, G: 1 },
  { name: 'labels → patches (S = 20, k = 9)', B: 3, C: 32, N: 20, M: 144, k: 9, d: 1, G: 2 },
  { name: 'k·d = 32, size-1 batch and group', B: 1, C: 3, N: 1, M: 40, k: 8, d: 4, G: 1, pos: '2d' },
  { name: 'normalize = false', B: 2, C: 4, N: 33, M: 20, k: 3, d: 2, G: 2, normalize: false },
];

async function expectCase(c: Case, i: number) {
  const { ref, idx } = await runCase(c, 100 + 7 * i);
  const rows = c.B * c.G * c.N;
  const skipped = ref.fragileSet.reduce((a, b) => a + b, 0);
  expect(skipped, 'too many fragile rows for a meaningful test').toBeLessThanOrEqual(rows / 10);
  expect(setMismatches(idx, ref.idx, c.k, ref.fragileSet)).toEqual([]);
  expect(orderMismatches(idx, ref.idx, c.k, ref.fragileOrder)).toBe(0);
  if (c.self) {
    for (let r = 0; r < rows; r++) expect(idx[r * c.k], `row ${r}: self is neighbour 0`).toBe(r % c.N);
  }
}

forEachKernelProfile((profile) => `dilatedKnn vs float64 reference (${profile} kernels)`, () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_, c, i) => {
    await expectCase(c, i);
  });

  // On CPU adapters with subgroups of 8 the default reads a product matrix (select_lanes); the
  // fused kernel (knn_lanes) runs past its size bound and when forced. Both, forced, where they exist.
  it('each implementation forced: the fused kernel, and the product matrix where the adapter has one', async () => {
    const productsHere = device().kernelProfile === 'cpu' && fixedSubgroupSize() === 8;
    for (const [i, c] of cases.entries()) {
      await expectCase({ ...c, impl: 'fused' }, i);
      if (productsHere) await expectCase({ ...c, impl: 'products' }, i);
      else expect(() => tidy(() => dilatedKnn(Tensor.empty([1, 2, 3]), Tensor.empty([1, 2, 3]), { k: 1, impl: 'products' }))).toThrow(/impl 'products' needs CPU-shaped kernels/);
    }
  });

  it('runs the product matrix by default where it can', async () => {
    const profiler = device().enableProfiler();
    try {
      await runCase(cases[1], 1);
      const kernels = (await profiler.report()).map((r) => r.kernel);
      const productsHere = device().kernelProfile === 'cpu' && fixedSubgroupSize() === 8;
      expect(kernels.some((k) => k.startsWith('knn.wgsl:select_lanes')), kernels.join('\n')).toBe(productsHere);
      expect(kernels.some((k) => k.startsWith('pointwise-subgroup.wgsl:gemm'))).toBe(productsHere);
    } finally {
      device().disableProfiler();
    }
  });

  it('breaks exact ties by the smaller source index (duplicated source columns)', async () => {
    for (const [G, d, pos] of [[1, 1, 'none'], [2, 2, 'none'], [2, 3, 'none']] as const) {
      const c: Case = { name: 'ties', B: 2, C: 6, N: 37, M: 30, k: 5, d, G, pos, dup: 3 };
      const { ref, idx } = await runCase(c, 7 + d);
      expect(ref.fragileSet.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(3);
      expect(setMismatches(idx, ref.idx, c.k, ref.fragileSet)).toEqual([]);
      expect(orderMismatches(idx, ref.idx, c.k, ref.fragileOrder)).toBe(0);
    }
  });

  it('ties on every source (all columns equal): indices 0, d, 2d, …', async () => {
    const B = 1, C = 4, N = 5, M = 20, k = 4, d = 2;
    const q = rand(B * C * N, 3);
    const s = new Float32Array(B * C * M).fill(0.5);
    const out = tidy(() => dilatedKnn(Tensor.from(q, [B, C, N]), Tensor.from(s, [B, C, M]), { k, dilation: d }));
    const idx = await out.toInt32Array();
    out.release();
    for (let n = 0; n < N; n++) expect(Array.from(idx.subarray(n * k, n * k + k))).toEqual([0, 2, 4, 6]);
  });

  it('folds a grid of more than 65 535 workgroups', async () => {
    // 1100 rows × 60 query blocks of 64 = 66 000 workgroups; one channel, three sources, k = 1.
    const B = 1100, N = 60 * 64, M = 3;
    const q = rand(B * N, 41);
    const s = rand(B * M, 42);
    const out = tidy(() => dilatedKnn(Tensor.from(q, [B, 1, N]), Tensor.from(s, [B, 1, M]), { k: 1, normalize: false }));
    const idx = await out.toInt32Array();
    out.release();
    let bad = 0;
    for (let b = 0; b < B; b++)
      for (let n = 0; n < N; n++) {
        const u = q[b * N + n];
        let best = 0;
        for (let m = 1; m < M; m++) if (Math.abs(u - s[b * M + m]) < Math.abs(u - s[b * M + best])) best = m;
        if (idx[b * N + n] !== best) bad++;
      }
    expect(bad).toBeLessThanOrEqual(B * N * 1e-4); // float32 near-ties
  });

  it('validates its arguments', () => {
    tidy(() => {
      const q = Tensor.empty([2, 8, 10]);
      const s = Tensor.empty([2, 8, 12]);
      expect(() => dilatedKnn(q, s, { k: 5, dilation: 3 })).toThrow(/k·dilation = 15 exceeds the 12 sources/);
      expect(() => dilatedKnn(q, Tensor.empty([2, 8, 40]), { k: 9, dilation: 4 })).toThrow(/exceeds the supported 32/);
      expect(() => dilatedKnn(q, s, { k: 3, groups: 3 })).toThrow(/groups must be a positive divisor of the 8 channels/);
      expect(() => dilatedKnn(q, Tensor.empty([2, 6, 12]), { k: 3 })).toThrow(/source must have the query's batch and channels/);
      expect(() => dilatedKnn(q, s, { k: 3, relativePos: Tensor.empty([10, 11]) })).toThrow(/relativePos must be f32 \[10, 12\]/);
      expect(() => dilatedKnn(q.view([2, 8, 10, 1]), s, { k: 3 })).toThrow(/query must be f32 \[B, C, nodes\]/);
      expect(() => dilatedKnn(q, s, { k: 0 })).toThrow(/k and dilation must be positive integers/);
    });
  });
}, { withoutSubgroups: true });

// ------------------------------------------------------------------ PyTorch fixtures

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));

interface KnnReport {
  k: number;
  dilation: number;
  rows: number;
  sources: number;
  rows_differ_from_fp64: number;
  fragile_rows_gap_lt_1e5: number;
}

describe('dilatedKnn vs PyTorch fixtures', () => {
  it.each(['gkg_block_xy', 'gkg_block_self', 'vig_block', 'gkg_cross'])('%s', async (file) => {
    const { metadata, tensors } = await readSafetensors(fixture(file));
    const config = JSON.parse(metadata.config!) as Record<string, number>;
    const report = JSON.parse(metadata.knn_report!) as Record<string, Record<string, KnnReport>>;
    const cross = file === 'gkg_cross';
    const G = config.groups ?? 1;
    const { B, C, H, W } = config;
    for (const mode of ['eval', 'train']) {
      const module = cross ? 'm.graph_conv.dilated_knn_graph' : 'block.0.graph_conv.dilated_knn_graph';
      const rep = report[mode]![module]!;
      const stored = tensors.get(`${mode}.knn.${module}`)!;
      const q = tensors.get(`${mode}.inter.${cross ? 'm' : 'block.0'}.fc1`)!.data as Float32Array;
      const N = cross ? config.S! : H * W;
      let s: Float32Array;
      let M: number;
      if (cross) {
        s = tensors.get('input.features')!.data as Float32Array;
        M = H * W;
      } else {
        s = config.r === 1 ? q : avgPoolRef(q, B, C, H, W, config.r!);
        M = (H * W) / config.r! ** 2;
      }
      expect(stored.shape).toEqual([B * G, N, rep.k]);
      expect(rep.sources).toBe(M);
      const pos = cross ? undefined : tensors.get('param.block.0.relative_pos')!;
      const got = tidy(() => {
        const qt = Tensor.from(q, [B, C, N]);
        const st = s === q ? qt : Tensor.from(s, [B, C, M]);
        const pt = pos ? Tensor.from(pos.data, pos.shape) : undefined;
        return dilatedKnn(qt, st, { k: rep.k, dilation: rep.dilation, groups: G, relativePos: pt });
      });
      const idx = await got.toInt32Array();
      got.release();
      const bad = setMismatches(idx, stored.data as Int32Array, rep.k);
      const allowance = rep.rows_differ_from_fp64 + rep.fragile_rows_gap_lt_1e5;
      expect(bad.length, `${file} ${mode}: ${bad.slice(0, 3).join('; ')}`).toBeLessThanOrEqual(allowance);
    }
  });
});
