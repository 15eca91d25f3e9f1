// f16 activations through the graph ops of vision GNNs, under both kernel profiles: dilated KNN on
// f16 features, max-relative aggregation (plain and interleaved) forward and backward, indexSelect /
// indexAdd, and the region models' ROIAlign and fixed-graph ops. Every reference is float64, computed
// from the half-rounded inputs; outputs and gradients must come back in their inputs' dtypes, within
// the output's rounding to f16.
import { it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy, type DType } from '../kernels/index.js';
import { dilatedKnn } from '../kernels/knn.js';
import { maxRelative, maxRelativeInterleaved } from '../kernels/max-relative.js';
import { FixedGraph, edgeGather, scatterMean } from '../kernels/graph.js';
import { roiAlign } from '../kernels/roi-align.js';
import { rand, rng, roundHalf, indexSelectMap, gatherRef, scatterRef, forEachKernelProfile, normaliseGroups, groupDistances, forEachMaxRelative, type GraphDims } from './ref.js';

beforeAll(async () => {
  await init();
});

const half = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, roundHalf);

/**
 * |got − want| ≤ 2⁻¹⁰·|want| + (1e-6 + extra)·scale + 2⁻²⁴ elementwise: the output's rounding to
 * f16, f32 sums against Σ|terms| (`scale`), `extra` for intermediate f16 roundings along the way,
 * and half's subnormal spacing.
 */
function expectHalfClose(got: Float32Array, want: ArrayLike<number>, scale: ArrayLike<number>, what: string, extra = 0): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = 2 ** -10 * Math.abs(want[i]) + (1e-6 + extra) * scale[i] + 2 ** -24;
    if (!(Math.abs(got[i] - want[i]) <= bound)) expect(`${what}[${i}] = ${got[i]}`).toBe(`${what}[${i}] ≈ ${want[i]} (± ${bound})`);
  }
}

function randIdx(n: number, seed: number, M: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * M));
}

// ------------------------------------------------------------------ dilated KNN

interface KnnCase extends GraphDims {
  name: string;
  d: number;
  self?: boolean;
  pos?: boolean;
  normalize?: boolean;
  sourceType?: DType;
}

/**
 * Decisions closer than this are fragile: the kernel normalises in f32 before rounding to f16, and
 * an element whose f32 and float64 quotients round to different halves moves a distance by up to
 * 2·|u − v|·ulp (~2e-3 for unit vectors).
 */
const GAP = 4e-3;

/** float64 dilated KNN on the given (half-rounded) features; a query is fragile where a decisive gap < GAP. */
function knnRef(q: Float64Array, s: Float64Array, c: KnnCase, pos?: Float32Array) {
  const { B, C, N, M, k, d, G } = c;
  const qn = c.normalize === false ? q : normaliseGroups(q, B, C, N, G, roundHalf);
  const sn = c.normalize === false ? s : normaliseGroups(s, B, C, M, G, roundHalf);
  const idx = new Int32Array(B * G * N * k);
  const fragileSet = new Uint8Array(B * G * N);
  const fragileOrder = new Uint8Array(B * G * N);
  const dist = new Float64Array(M);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++)
      for (let n = 0; n < N; n++) {
        const r = (b * G + g) * N + n;
        groupDistances(qn, sn, c, b, g, n, pos, dist);
        const order = Array.from({ length: M }, (_, m) => m).sort((a, e) => dist[a] - dist[e] || a - e);
        for (let t = 0; t < k; t++) idx[r * k + t] = order[t * d];
        for (let i = 0; i + 1 < M && i < (k - 1) * d + 1; i++) {
          if (dist[order[i + 1]] - dist[order[i]] >= GAP) continue;
          fragileOrder[r] = 1;
          if (d === 1 ? i === k - 1 : i % d === 0 || (i + 1) % d === 0) fragileSet[r] = 1;
        }
      }
  return { idx, fragileSet, fragileOrder };
}

const KNN_CASES: KnnCase[] = [
  { name: 'self graph, G=2, k=4, d=2', B: 2, C: 16, N: 25, M: 25, k: 4, d: 2, G: 2, self: true },
  // 40 channels per group: where the CPU profile would read a product matrix for f32 features.
  { name: 'query ≠ source, 40 channels, relative positions', B: 1, C: 40, N: 20, M: 30, k: 5, d: 1, G: 1, pos: true },
  { name: 'normalize = false, f32 source', B: 2, C: 8, N: 17, M: 19, k: 3, d: 3, G: 1, normalize: false, sourceType: 'f32' },
];

async function expectKnn(c: KnnCase, seed: number): Promise<void> {
  const q = rand(c.B * c.C * c.N, seed);
  const s = c.self ? q : rand(c.B * c.C * c.M, seed + 1);
  const sType = c.sourceType ?? 'f16';
  const pos = c.pos ? rand(c.N * c.M, seed + 2, -0.5, 0.5) : undefined;
  const ref = knnRef(half(q), sType === 'f16' ? half(s) : Float64Array.from(s), c, pos);
  const got = tidy(() => {
    const qt = Tensor.from(q, [c.B, c.C, c.N], 'f16');
    const st = c.self ? qt : Tensor.from(s, [c.B, c.C, c.M], sType);
    const pt = pos ? Tensor.from(pos, [c.N, c.M]) : undefined;
    return dilatedKnn(qt, st, { k: c.k, dilation: c.d, groups: c.G, relativePos: pt, normalize: c.normalize });
  });
  expect(got.dtype).toBe('i32');
  expect(got.shape).toEqual([c.B * c.G, c.N, c.k]);
  const idx = await got.toInt32Array();
  got.release();
  const rows = c.B * c.G * c.N;
  expect(ref.fragileSet.reduce((a, b) => a + b, 0), 'too many fragile queries for a meaningful test').toBeLessThanOrEqual(rows / 4);
  const bad: string[] = [];
  for (let r = 0; r < rows; r++) {
    const a = idx.subarray(r * c.k, (r + 1) * c.k);
    const b = ref.idx.subarray(r * c.k, (r + 1) * c.k);
    const set = (v: Int32Array) => Array.from(v).sort((x, y) => x - y).join();
    if ((!ref.fragileSet[r] && set(a) !== set(b)) || (!ref.fragileOrder[r] && a.join() !== b.join())) bad.push(`${r}: got [${a.join()}] want [${b.join()}]`);
  }
  expect(bad).toEqual([]);
}

// ------------------------------------------------------------------ max-relative

interface MrCase extends GraphDims {
  name: string;
  interleave: boolean;
  xType: DType;
  yType: DType;
  /** y is x itself (N = M), and x has a second use x·V: gradients meet in the kernels' addends. */
  selfWithExtra?: boolean;
}

const MR_CASES: MrCase[] = [
  { name: 'plain, G=2', B: 2, C: 6, N: 10, M: 8, G: 2, k: 3, interleave: false, xType: 'f16', yType: 'f16' },
  { name: 'interleaved, G=3', B: 2, C: 6, N: 9, M: 11, G: 3, k: 4, interleave: true, xType: 'f16', yType: 'f16' },
  { name: 'plain, y = x with another use of x, G=2', B: 1, C: 4, N: 12, M: 12, G: 2, k: 3, interleave: false, xType: 'f16', yType: 'f16', selfWithExtra: true },
  { name: 'interleaved, f32 x and f16 y, G=2', B: 1, C: 4, N: 7, M: 5, G: 2, k: 2, interleave: true, xType: 'f32', yType: 'f16' },
];

/** float64 forward and gradients (with each gradient's Σ|terms|) for the output gradient w. */
function maxRelRef(c: MrCase, x: Float64Array, y: Float64Array, idx: Int32Array, w: Float64Array, v?: Float64Array) {
  const { B, C, N, M } = c;
  const out = new Float64Array(w.length);
  const dx = new Float64Array(B * C * N);
  const dxScale = new Float64Array(B * C * N);
  const dy = new Float64Array(B * C * M);
  const dyScale = new Float64Array(B * C * M);
  forEachMaxRelative(x, y, idx, c, (i, bc, n, best, m) => {
    const rAt = c.interleave ? (2 * bc + 1) * N + n : i;
    out[rAt] = best;
    const gr = w[rAt];
    dx[i] = -gr;
    dxScale[i] = Math.abs(gr);
    if (c.interleave) {
      out[2 * bc * N + n] = x[i];
      dx[i] += w[2 * bc * N + n];
      dxScale[i] += Math.abs(w[2 * bc * N + n]);
    }
    if (v) {
      const e = roundHalf(w[i] * v[i]); // x·V's gradient, stored as f16 by the elementwise kernel
      dx[i] += e;
      dxScale[i] += Math.abs(e);
    }
    dy[m] += gr;
    dyScale[m] += Math.abs(gr);
  });
  return { out, dx, dxScale, dy, dyScale };
}

async function expectMaxRel(c: MrCase, seed: number): Promise<void> {
  const { B, C, N, M, G, k } = c;
  const x = rand(B * C * N, seed);
  const y = c.selfWithExtra ? x : rand(B * C * M, seed + 1);
  const idx = randIdx(B * G * N * k, seed + 2, M);
  const outShape = [B, c.interleave ? 2 * C : C, N];
  const outType = c.xType;
  const w = rand(outShape.reduce((a, b) => a * b), seed + 3);
  const v = c.selfWithExtra ? rand(B * C * N, seed + 4) : undefined;
  const asStored = (a: Float32Array, dt: DType) => (dt === 'f16' ? half(a) : Float64Array.from(a));
  const xr = asStored(x, c.xType);
  const ref = maxRelRef(c, xr, c.selfWithExtra ? xr : asStored(y, c.yType), idx, asStored(w, outType), v && half(v));

  const xt = Tensor.from(x, [B, C, N], c.xType).param();
  const yt = c.selfWithExtra ? xt : Tensor.from(y, [B, C, M], c.yType).param();
  const it = Tensor.from(idx, [B * G, N, k], 'i32');
  const wt = Tensor.from(w, outShape, outType);
  const out = tidy(() => {
    const op = c.interleave ? maxRelativeInterleaved : maxRelative;
    const r = op(xt, yt, it, G);
    const vt = v && Tensor.from(v, [B, C, N], 'f16');
    backward(vt ? F.add(r, F.mul(xt, vt)) : r, wt);
    return r;
  });
  expect(out.dtype).toBe(c.xType);
  expect(out.shape).toEqual(outShape);
  expect(xt.grad?.dtype).toBe(c.xType);
  // Interleaved: the centre copies are x's values exactly, the rest within the output's rounding.
  expectHalfClose(await out.toArray(), ref.out, ref.out.map(Math.abs), `${c.name}: out`);
  if (c.selfWithExtra) {
    // x's gradient is the sum of all three uses; the kernels round partial sums to f16 on the way.
    const total = ref.dx.map((e, i) => e + ref.dy[i]);
    const scale = ref.dxScale.map((e, i) => e + ref.dyScale[i]);
    expectHalfClose(await xt.grad!.toArray(), total, scale, `${c.name}: dx (all uses)`, 2 ** -10);
  } else {
    expectHalfClose(await xt.grad!.toArray(), ref.dx, ref.dxScale, `${c.name}: dx`);
    expect(yt.grad?.dtype).toBe(c.yType);
    expectHalfClose(await yt.grad!.toArray(), ref.dy, ref.dyScale, `${c.name}: dy`);
  }
  for (const t of new Set([xt.grad!, yt.grad, xt, yt, it, wt, out])) t?.release();
}

// ------------------------------------------------------------------ index ops

async function expectIndexOps(seed: number): Promise<void> {
  // indexSelect: a copy (exact in f16); its gradient scatter-adds back.
  const shape = [2, 6, 4];
  const index = randIdx(9, seed, 6);
  const m = indexSelectMap(shape, 1, index);
  const x = rand(48, seed + 1);
  const w = rand(m.src.length, seed + 2);
  const xt = Tensor.from(x, shape, 'f16').param();
  const wt = Tensor.from(w, m.shape, 'f16');
  const sel = tidy(() => {
    const out = F.indexSelect(xt, 1, index);
    backward(out, wt);
    return out;
  });
  expect(sel.dtype).toBe('f16');
  expect(xt.grad?.dtype).toBe('f16');
  const want = gatherRef(half(x), m.src);
  expectHalfClose(await sel.toArray(), want, want.map(Math.abs), 'indexSelect');
  const dx = scatterRef(half(w), m.src, 48);
  const dxScale = scatterRef(half(w).map(Math.abs), m.src, 48);
  expectHalfClose(await xt.grad!.toArray(), dx, dxScale, 'indexSelect dx');

  // indexAdd: sums (in f32) rounded once; its gradient gathers.
  const st = Tensor.from(w, m.shape, 'f16').param();
  const wAdd = rand(48, seed + 3);
  const gAdd = Tensor.from(wAdd, shape, 'f16');
  const add = tidy(() => {
    const out = F.indexAdd(st, 1, Tensor.from(index, [index.length], 'i32'), 6);
    backward(out, gAdd);
    return out;
  });
  expect(add.dtype).toBe('f16');
  expect(st.grad?.dtype).toBe('f16');
  expectHalfClose(await add.toArray(), dx, dxScale, 'indexAdd');
  const ds = gatherRef(half(wAdd), m.src);
  expectHalfClose(await st.grad!.toArray(), ds, ds.map(Math.abs), 'indexAdd dsrc');

  // No indices: zeros, still f16.
  const empty = tidy(() => F.indexAdd(Tensor.empty([2, 0, 4], 'f16'), 1, [], 3));
  expect(empty.dtype).toBe('f16');
  expect(Array.from(await empty.toArray())).toEqual(new Array(24).fill(0));
  for (const t of [xt.grad!, xt, wt, sel, st.grad!, st, gAdd, add, empty]) t.release();
}

// ------------------------------------------------------------------ region ops (through f32)

/** torchvision's roi_align on one [B, C, H, W] map (aligned, sampling ratio 2), float64. */
function roiAlignRef(feat: ArrayLike<number>, [, C, H, W]: number[], boxes: number[][], P: number): Float64Array {
  const out = new Float64Array(boxes.length * C * P * P);
  const at = (b: number, c: number, yy: number, xx: number): number => {
    if (yy < -1 || yy > H || xx < -1 || xx > W) return 0;
    let y = Math.max(yy, 0), x = Math.max(xx, 0);
    let yl = Math.floor(y), xl = Math.floor(x), yh = yl + 1, xh = xl + 1;
    if (yl >= H - 1) { yh = yl = H - 1; y = yl; }
    if (xl >= W - 1) { xh = xl = W - 1; x = xl; }
    const ly = y - yl, lx = x - xl;
    const f = (i: number, j: number) => feat[((b * C + c) * H + i) * W + j];
    return (1 - ly) * (1 - lx) * f(yl, xl) + (1 - ly) * lx * f(yl, xh) + ly * (1 - lx) * f(yh, xl) + ly * lx * f(yh, xh);
  };
  boxes.forEach(([b, ...xy], r) => {
    const [x0, y0, x1, y1] = xy.map((v) => v - 0.5);
    const bh = (y1 - y0) / P, bw = (x1 - x0) / P;
    for (let c = 0; c < C; c++)
      for (let ph = 0; ph < P; ph++)
        for (let pw = 0; pw < P; pw++) {
          let s = 0;
          for (let iy = 0; iy < 2; iy++) for (let ix = 0; ix < 2; ix++) s += at(b, c, y0 + (ph + (iy + 0.5) / 2) * bh, x0 + (pw + (ix + 0.5) / 2) * bw);
          out[((r * C + c) * P + ph) * P + pw] = s / 4;
        }
  });
  return out;
}

async function expectRegionOps(seed: number): Promise<void> {
  // ROIAlign is linear in the map: its gradient is the transposed map applied to w.
  const shape = [1, 3, 5, 6];
  const size = 90;
  const boxes = [[0, 0.5, 1, 4.5, 3.7], [0, 2, 0, 5.5, 5]];
  const feat = rand(size, seed);
  const want = roiAlignRef(half(feat), shape, boxes, 2);
  const w = half(rand(want.length, seed + 1));
  const dfeat = new Float64Array(size);
  const dScale = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const col = roiAlignRef(Float64Array.from({ length: size }, (_, j) => +(i === j)), shape, boxes, 2);
    col.forEach((a, o) => {
      dfeat[i] += a * w[o];
      dScale[i] += Math.abs(a * w[o]);
    });
  }
  const ft = Tensor.from(feat, shape, 'f16').param();
  const wt = Tensor.from(w, [2, 3, 2, 2], 'f16');
  const roi = tidy(() => {
    const out = roiAlign(ft, boxes.flat(), { pooled: 2, spatialScale: 1, samplingRatio: 2 });
    backward(out, wt);
    return out;
  });
  expect(roi.dtype).toBe('f16');
  expect(ft.grad?.dtype).toBe('f16');
  const absFeat = half(feat).map(Math.abs);
  expectHalfClose(await roi.toArray(), want, roiAlignRef(absFeat, shape, boxes, 2), 'roiAlign');
  expectHalfClose(await ft.grad!.toArray(), dfeat, dScale, 'roiAlign dfeat');

  // Edge gather and scatter-mean over a small bipartite graph: B = 2, C = 3, 4 → 3 nodes, 5 edges.
  const src = [0, 1, 2, 0, 3];
  const dst = [1, 0, 2, 2, 1];
  const g = new FixedGraph(Uint32Array.from(src), Uint32Array.from(dst), 4, 3, 'f16 test');
  const [B, C, E] = [2, 3, 5];
  const xs = rand(B * 4 * C, seed + 2);
  const xd = rand(B * 3 * C, seed + 3);
  const xe = rand(B * E * C, seed + 4);
  const we = half(rand(B * 3 * C, seed + 5));
  const ts = [Tensor.from(xs, [B, 4, C], 'f16').param(), Tensor.from(xd, [B, 3, C], 'f16').param(), Tensor.from(xe, [B, E, C], 'f16').param()];
  const wn = Tensor.from(we, [B, 3, C], 'f16');
  const [edges, nodes] = tidy(() => {
    const e = edgeGather(g, ts[0], ts[1], ts[2]);
    const n = scatterMean(e, g, 'dst');
    backward(n, wn);
    return [e, n];
  });
  expect([edges.dtype, nodes.dtype, ...ts.map((t) => t.grad?.dtype)]).toEqual(['f16', 'f16', 'f16', 'f16', 'f16']);
  const [hs, hd, he] = [half(xs), half(xd), half(xe)];
  // Each value with its Σ|terms|: [value, scale] pairs, summed where the op sums.
  const deg = [0, 0, 0];
  for (const v of dst) deg[v]++;
  const [eRef, eScale, ge] = [0, 0, 0].map(() => new Float64Array(B * E * C));
  const [nRef, nScale, gd, gdScale] = [0, 0, 0, 0].map(() => new Float64Array(B * 3 * C));
  const [gs, gsScale] = [0, 0].map(() => new Float64Array(B * 4 * C));
  for (let b = 0; b < B; b++)
    for (let e = 0; e < E; e++)
      for (let c = 0; c < C; c++) {
        const i = (b * E + e) * C + c;
        const [s, d] = [(b * 4 + src[e]) * C + c, (b * 3 + dst[e]) * C + c];
        eRef[i] = hs[s] + hd[d] + he[i];
        eScale[i] = Math.abs(hs[s]) + Math.abs(hd[d]) + Math.abs(he[i]);
        nRef[d] += eRef[i] / deg[dst[e]];
        nScale[d] += eScale[i] / deg[dst[e]];
        ge[i] = roundHalf(we[d] / deg[dst[e]]); // the mean's gradient, stored as f16 (the edges' dtype)
        gs[s] += ge[i];
        gsScale[s] += Math.abs(ge[i]);
        gd[d] += ge[i];
        gdScale[d] += Math.abs(ge[i]);
      }
  expectHalfClose(await edges.toArray(), eRef, eScale, 'edgeGather');
  // The mean of the f16-rounded edge features: their rounding comes on top.
  expectHalfClose(await nodes.toArray(), nRef, nScale, 'scatterMean', 2 ** -10);
  expectHalfClose(await ts[2].grad!.toArray(), ge, ge.map(Math.abs), 'edge features grad');
  expectHalfClose(await ts[0].grad!.toArray(), gs, gsScale, 'source features grad');
  expectHalfClose(await ts[1].grad!.toArray(), gd, gdScale, 'destination features grad');
  for (const t of [ft.grad!, ft, wt, roi, ...ts.map((t) => t.grad!), ...ts, wn, edges, nodes]) t.release();
  g.release();
}

forEachKernelProfile((profile) => `f16 graph ops vs float64 references (${profile} kernels)`, () => {
  it.each(KNN_CASES.map((c, i) => [c.name, c, i] as const))('dilatedKnn on f16 features: %s', async (_, c, i) => {
    await expectKnn(c, 300 + 11 * i);
  });

  it.each(MR_CASES.map((c, i) => [c.name, c, i] as const))('max-relative %s: values, gradients and dtypes', async (_, c, i) => {
    await expectMaxRel(c, 500 + 13 * i);
  });

  it('indexSelect and indexAdd keep f16, sum in f32', async () => {
    await expectIndexOps(700);
  });

  it('roiAlign, edgeGather and scatterMean take f16 and return f16', async () => {
    await expectRegionOps(800);
  });
});
