// Float64 CPU references and comparison helpers for the tests. The references never call the
// engine; only the harness (runGrad, expectClose, watching, forEachKernelProfile) does, to run an
// op and compare.
import { expect, describe, beforeAll, afterAll } from 'vitest';
import { Tensor, F, backward, tidy, keep, device, type DType } from '../kernels/index.js';

type KernelProfile = 'cpu' | 'gpu';
import { relErr } from '../train/parity/rel-err.js';

export type Arr = Float64Array;

/** Deterministic pseudo-random numbers (mulberry32), independent of the engine's generator. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** n random values in [lo, hi), as float32. */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** Random float32-representable values in [lo, hi). */
export function randArr(shape: readonly number[], seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) s.forEach((d, i) => {
    const k = rank - s.length + i;
    if (d !== 1) out[k] = d;
  });
  return out;
}

/** Read `data` (shape `shape`) at the coordinates of output index `i` of `out` (broadcasting). */
export function bcastIndex(i: number, out: readonly number[], shape: readonly number[]): number {
  const os = strides(out);
  const is = strides(shape);
  let off = 0;
  for (let d = 0; d < out.length; d++) {
    const c = Math.floor(i / os[d]) % out[d];
    const k = d - (out.length - shape.length);
    if (k >= 0 && shape[k] !== 1) off += c * is[k];
  }
  return off;
}

/** Elementwise map with broadcasting, in float64. */
export function mapRef(shapes: (readonly number[])[], data: ArrayLike<number>[], f: (...v: number[]) => number): { shape: number[]; data: Arr } {
  const shape = broadcastShape(...shapes);
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = f(...data.map((d, k) => d[bcastIndex(i, shape, shapes[k])]));
  return { shape, data: out };
}

/** The largest Σ|term| of sumToRef(terms, from, to): the scale of a gradient summed over broadcast axes. */
export function absSumScale(terms: ArrayLike<number>, from: readonly number[], to: readonly number[]): number {
  return Math.max(...sumToRef(Float64Array.from(terms, Math.abs), from, to));
}

/** Sum `g` (shape `from`) down to broadcast-source shape `to`. */
export function sumToRef(g: ArrayLike<number>, from: readonly number[], to: readonly number[]): Arr {
  const out = new Float64Array(numel(to));
  for (let i = 0; i < g.length; i++) out[bcastIndex(i, from, to)] += g[i];
  return out;
}

/** The fixture README's metric, max |a − b| / max(max |b|, floor) (one definition, shared with parity). */
export { relErr };

export function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for float64 references; use a series / continued fraction.
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc continued fraction (Lentz)
    let f = z;
    let c = z;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      d = z + an * d;
      d = 1 / d;
      c = z + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -r : r;
}

export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluGrad = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface BnRef {
  y: Float64Array;
  /** The gradient reaching the residual (with o.residual): gy itself. */
  dres: Float64Array;
  dx: Float64Array;
  dw: Float64Array;
  db: Float64Array;
  runMean: Float64Array;
  runVar: Float64Array;
}

/**
 * Float64 BatchNorm over axis 1 of [B, C, S], its analytic gradients and the running-stat update;
 * with o.act, the branch is gelu(bn(x)); with o.residual, y = residual + scale[b]·branch (scale:
 * o.scale per image, else 1). Shared by the f32 and the f16 batchNorm2d tests.
 */
export function batchNormRef(
  shape: number[], x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, rm: ArrayLike<number>, rv: ArrayLike<number>,
  gy: ArrayLike<number>, o: { training: boolean; act: boolean; momentum?: number; eps?: number; residual?: ArrayLike<number>; scale?: ArrayLike<number> },
): BnRef {
  const [B, C] = shape;
  const S = shape.slice(2).reduce((a, v) => a * v, 1);
  const n = B * S;
  const eps = o.eps ?? 1e-5;
  const m = o.momentum ?? 0.1;
  const at = (c: number, j: number) => (Math.floor(j / S) * C + c) * S + (j % S);
  const image = (i: number) => Math.floor(i / (C * S));
  const scale = (i: number) => (o.scale ? o.scale[image(i)] : 1);
  const out: BnRef = {
    y: new Float64Array(x.length), dres: Float64Array.from(gy), dx: new Float64Array(x.length), dw: new Float64Array(C), db: new Float64Array(C),
    runMean: Float64Array.from(rm), runVar: Float64Array.from(rv),
  };
  for (let c = 0; c < C; c++) {
    let mean = rm[c];
    let v = rv[c];
    if (o.training) {
      mean = 0;
      for (let j = 0; j < n; j++) mean += x[at(c, j)];
      mean /= n;
      let ss = 0;
      for (let j = 0; j < n; j++) ss += (x[at(c, j)] - mean) ** 2;
      v = ss / n;
      out.runMean[c] = (1 - m) * rm[c] + m * mean;
      out.runVar[c] = (1 - m) * rv[c] + m * (ss / (n - 1));
    }
    const inv = 1 / Math.sqrt(v + eps);
    const xhat = new Float64Array(n);
    const gz = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const i = at(c, j);
      xhat[j] = (x[i] - mean) * inv;
      const z = xhat[j] * w[c] + b[c];
      const branch = o.act ? gelu(z) : z;
      out.y[i] = o.residual ? o.residual[i] + scale(i) * branch : branch;
      const g = gy[i] * scale(i);
      gz[j] = o.act ? g * geluGrad(z) : g;
      out.db[c] += gz[j];
      out.dw[c] += gz[j] * xhat[j];
    }
    for (let j = 0; j < n; j++) {
      out.dx[at(c, j)] = o.training
        ? ((w[c] * inv) / n) * (n * gz[j] - out.db[c] - xhat[j] * out.dw[c])
        : w[c] * inv * gz[j];
    }
  }
  return out;
}

/** Batched matmul reference: a [batch?, M, K] · b [batch?, K, N] with transposes. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number, batchA: number, batchB: number, transA = false, transB = false): Arr {
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    const ao = batchA === 1 ? 0 : z * M * K;
    const bo = batchB === 1 ? 0 : z * K * N;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[ao + k * M + m] : a[ao + m * K + k];
          const bv = transB ? b[bo + n * K + k] : b[bo + k * N + n];
          s += av * bv;
        }
        out[z * M * N + m * N + n] = s;
      }
  }
  return out;
}

export const toF64 = (a: ArrayLike<number>): Arr => Float64Array.from(a as ArrayLike<number>);

/** Shapes for reductions: the output without the reduced axes, and with them kept as 1. */
function reducedShapes(shape: readonly number[], axes: readonly number[]) {
  return {
    kept: shape.filter((_, i) => !axes.includes(i)),
    keepdim: shape.map((d, i) => (axes.includes(i) ? 1 : d)),
  };
}

/** Output index (in the keepdim shape) of every input element of a reduction over `axes`. */
export function reduceMap(shape: readonly number[], axes: readonly number[]): Int32Array {
  const { keepdim } = reducedShapes(shape, axes);
  const is = strides(shape);
  const os = strides(keepdim);
  const out = new Int32Array(numel(shape));
  for (let i = 0; i < out.length; i++) {
    let o = 0;
    for (let d = 0; d < shape.length; d++) if (!axes.includes(d)) o += (Math.floor(i / is[d]) % shape[d]) * os[d];
    out[i] = o;
  }
  return out;
}

export type ReduceKind = 'sum' | 'mean' | 'var' | 'varUnbiased';

/**
 * A reduction of `x` (shape `shape`) over `axes` in float64, with the input gradient for an output
 * gradient `w` (one value per output element).
 */
export function reduceRef(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], kind: ReduceKind, w?: ArrayLike<number>) {
  const { kept, keepdim } = reducedShapes(shape, axes);
  const map = reduceMap(shape, axes);
  const nOut = numel(keepdim);
  const n = axes.reduce((a, i) => a * shape[i], 1);
  const s = new Float64Array(nOut);
  for (let i = 0; i < x.length; i++) s[map[i]] += x[i];
  const mean = s.map((v) => v / n);
  let out: Arr = s;
  const grad = new Float64Array(x.length);
  if (kind === 'sum' || kind === 'mean') {
    out = kind === 'sum' ? s : mean;
    const k = kind === 'sum' ? 1 : 1 / n;
    if (w) for (let i = 0; i < x.length; i++) grad[i] = w[map[i]] * k;
  } else {
    const div = kind === 'var' ? n : n - 1;
    out = new Float64Array(nOut);
    for (let i = 0; i < x.length; i++) out[map[i]] += (x[i] - mean[map[i]]) ** 2 / div;
    // d var / d x_i = 2 (x_i − mean) / div (the mean's own dependence sums to zero).
    if (w) for (let i = 0; i < x.length; i++) grad[i] = (w[map[i]] * 2 * (x[i] - mean[map[i]])) / div;
  }
  return { data: out, kept, keepdim, grad };
}

/** Max over one axis: values, index of the first maximum, and the gradient routed to it. */
export function maxRef(x: ArrayLike<number>, shape: readonly number[], axis: number, w?: ArrayLike<number>) {
  const map = reduceMap(shape, [axis]);
  const nOut = numel(shape) / shape[axis];
  const values = new Float64Array(nOut).fill(-Infinity);
  const indices = new Int32Array(nOut).fill(-1);
  const where = new Int32Array(nOut);
  const st = strides(shape)[axis];
  for (let i = 0; i < x.length; i++) {
    const o = map[i];
    if (indices[o] < 0 || x[i] > values[o]) {
      values[o] = x[i];
      indices[o] = Math.floor(i / st) % shape[axis];
      where[o] = i;
    }
  }
  const grad = new Float64Array(x.length);
  if (w) for (let o = 0; o < nOut; o++) grad[where[o]] += w[o];
  return { values, indices, grad };
}

/** Softmax or log-softmax along `axis`, with the input gradient for output gradient `w`. */
export function softmaxRef(x: ArrayLike<number>, shape: readonly number[], axis: number, log: boolean, w?: ArrayLike<number>) {
  const ax = axis < 0 ? axis + shape.length : axis;
  const n = shape[ax];
  const st = strides(shape)[ax];
  const out = new Float64Array(x.length);
  const grad = new Float64Array(x.length);
  for (let base = 0; base < x.length; base++) {
    if (Math.floor(base / st) % n !== 0) continue; // visit each row once, from its first element
    const idx = Array.from({ length: n }, (_, k) => base + k * st);
    const m = Math.max(...idx.map((i) => x[i]));
    const z = idx.reduce((a, i) => a + Math.exp(x[i] - m), 0);
    const p = idx.map((i) => Math.exp(x[i] - m) / z);
    idx.forEach((i, k) => (out[i] = log ? x[i] - m - Math.log(z) : p[k]));
    if (!w) continue;
    if (log) {
      const sw = idx.reduce((a, i) => a + w[i], 0);
      idx.forEach((i, k) => (grad[i] = w[i] - p[k] * sw));
    } else {
      const swp = idx.reduce((a, i, k) => a + w[i] * p[k], 0);
      idx.forEach((i, k) => (grad[i] = p[k] * (w[i] - swp)));
    }
  }
  return { data: out, grad };
}

// ------------------------------------------------------------------ gathers
// Shape and index ops are gathers: out[i] = x[src[i]]. The same map gives the forward (gather) and
// the backward (scatter-add of the output gradient), so one small function per op defines both.

export function gatherRef(x: ArrayLike<number>, src: Int32Array): Arr {
  return Float64Array.from(src, (s) => x[s]);
}

export function scatterRef(g: ArrayLike<number>, src: Int32Array, n: number): Arr {
  const out = new Float64Array(n);
  src.forEach((s, i) => (out[s] += g[i]));
  return out;
}

/** Source index of every output element of an op whose output coordinate c maps to input coordinate f(c). */
function coordMap(outShape: readonly number[], inShape: readonly number[], f: (c: number[]) => number[]): Int32Array {
  const os = strides(outShape);
  const is = strides(inShape);
  const out = new Int32Array(numel(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = outShape.map((d, k) => Math.floor(i / os[k]) % d);
    out[i] = f(c).reduce((a, v, k) => a + v * is[k], 0);
  }
  return out;
}

export function permuteMap(shape: readonly number[], perm: readonly number[]): { shape: number[]; src: Int32Array } {
  const out = perm.map((p) => shape[p]);
  return {
    shape: out,
    src: coordMap(out, shape, (c) => {
      const inC = new Array<number>(shape.length);
      perm.forEach((p, k) => (inC[p] = c[k]));
      return inC;
    }),
  };
}

export function sliceMap(shape: readonly number[], axis: number, start: number, end: number): { shape: number[]; src: Int32Array } {
  const out = [...shape];
  out[axis] = end - start;
  return { shape: out, src: coordMap(out, shape, (c) => c.map((v, k) => (k === axis ? v + start : v))) };
}

/** index_select along `axis`: out coordinate j on the axis reads index[j]. */
export function indexSelectMap(shape: readonly number[], axis: number, index: ArrayLike<number>): { shape: number[]; src: Int32Array } {
  const out = [...shape];
  out[axis] = index.length;
  return { shape: out, src: coordMap(out, shape, (c) => c.map((v, k) => (k === axis ? index[v] : v))) };
}

/** Expand (broadcast) `shape` to `out`. */
export function expandMap(shape: readonly number[], out: readonly number[]): Int32Array {
  return Int32Array.from({ length: numel(out) }, (_, i) => bcastIndex(i, out, shape));
}

/** Concatenation along `axis`: values and, per input, the output positions it fills. */
export function concatRef(parts: { data: ArrayLike<number>; shape: readonly number[] }[], axis: number) {
  const shape = [...parts[0].shape];
  shape[axis] = parts.reduce((a, p) => a + p.shape[axis], 0);
  const os = strides(shape);
  const out = new Float64Array(numel(shape));
  const positions: Int32Array[] = [];
  let off = 0;
  for (const p of parts) {
    const ps = strides(p.shape);
    const pos = new Int32Array(p.data.length);
    for (let i = 0; i < p.data.length; i++) {
      let o = 0;
      p.shape.forEach((d, k) => (o += ((Math.floor(i / ps[k]) % d) + (k === axis ? off : 0)) * os[k]));
      pos[i] = o;
      out[o] = p.data[i];
    }
    positions.push(pos);
    off += p.shape[axis];
  }
  return { shape, data: out, positions };
}

// ------------------------------------------------------------------ matmul

export interface MatmulCase {
  M: number;
  N: number;
  K: number;
  batchA: number;
  batchB: number;
  transA?: boolean;
  transB?: boolean;
  bias?: ArrayLike<number>;
  biasMode?: 'row' | 'col';
  /** Whether the bias has one row per batch. */
  biasPerBatch?: boolean;
  activation?: 'none' | 'relu' | 'gelu';
}

/** act(op(A)·op(B) + bias) in float64, and with `w` the gradients of Σ out ⊙ w for A, B and bias. */
export function matmulFullRef(a: ArrayLike<number>, b: ArrayLike<number>, c: MatmulCase, w?: ArrayLike<number>) {
  const { M, N, K, batchA, batchB } = c;
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * N);
  const ga = new Float64Array(a.length);
  const gb = new Float64Array(b.length);
  const gbias = new Float64Array(c.bias?.length ?? 0);
  const ai = (z: number, m: number, k: number) => (batchA === 1 ? 0 : z * M * K) + (c.transA ? k * M + m : m * K + k);
  const bi = (z: number, k: number, n: number) => (batchB === 1 ? 0 : z * K * N) + (c.transB ? n * K + k : k * N + n);
  const biasI = (z: number, m: number, n: number) => {
    const len = c.biasMode === 'row' ? M : N;
    return (c.biasPerBatch ? z * len : 0) + (c.biasMode === 'row' ? m : n);
  };
  for (let z = 0; z < batch; z++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ai(z, m, k)] * b[bi(z, k, n)];
        if (c.bias) s += c.bias[biasI(z, m, n)];
        const o = z * M * N + m * N + n;
        const act = c.activation ?? 'none';
        out[o] = act === 'relu' ? Math.max(s, 0) : act === 'gelu' ? gelu(s) : s;
        if (!w) continue;
        const g = w[o] * (act === 'relu' ? (s > 0 ? 1 : 0) : act === 'gelu' ? geluGrad(s) : 1);
        for (let k = 0; k < K; k++) {
          ga[ai(z, m, k)] += g * b[bi(z, k, n)];
          gb[bi(z, k, n)] += g * a[ai(z, m, k)];
        }
        if (c.bias) gbias[biasI(z, m, n)] += g;
      }
  return { data: out, ga, gb, gbias };
}

// ------------------------------------------------------------------ finite differences

/**
 * Central finite differences of a float64 scalar function of several inputs (h relative to each
 * value's magnitude). With h ≈ 1e-6 in float64 the truncation and rounding errors are ~1e-9.
 */
export function finiteDiff(f: (xs: Arr[]) => number, inputs: ArrayLike<number>[], h = 1e-6): Arr[] {
  const xs = inputs.map(toF64);
  return xs.map((x) => {
    const g = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      const step = h * Math.max(1, Math.abs(v));
      x[i] = v + step;
      const fp = f(xs);
      x[i] = v - step;
      const fm = f(xs);
      x[i] = v;
      g[i] = (fp - fm) / (2 * step);
    }
    return g;
  });
}

// ------------------------------------------------------------------ engine harness

export interface Input {
  data: ArrayLike<number>;
  shape: readonly number[];
  /** The tensor's dtype (default f32; f16 rounds the data to half). */
  dtype?: DType;
  /** Leave out of autograd (no gradient returned). */
  noGrad?: boolean;
}

export interface GradRun {
  out: Float32Array;
  /** The output's dtype. */
  dtype: DType;
  shape: number[];
  /** The random output weights: d loss / d out (in the output's dtype: half-rounded for f16). */
  w: Float32Array;
  grads: (Float32Array | null)[];
  /** Each input's gradient's dtype (null without one). */
  gradTypes: (DType | null)[];
}

/**
 * Run `f` on the engine, then backward of loss = Σ f(inputs) ⊙ W for a random W in [lo, hi) (in
 * the output's dtype), so that d loss / d out = W; returns the output, W and each input's gradient.
 * Releases everything.
 */
export async function runGrad(inputs: Input[], f: (...xs: Tensor[]) => Tensor, seed = 7, lo = -1, hi = 1): Promise<GradRun> {
  const ts = inputs.map((x) => {
    const t = Tensor.from(Float32Array.from(x.data), x.shape, x.dtype ?? 'f32');
    return x.noGrad ? keep(t) : t.param();
  });
  try {
    const { y, w } = tidy(() => {
      const y = f(...ts);
      const w = Tensor.from(randArr(y.shape, seed, lo, hi), y.shape, y.dtype);
      backward(F.sum(F.mul(y, w)));
      return { y, w };
    });
    const run: GradRun = {
      out: await y.toArray(),
      dtype: y.dtype,
      shape: [...y.shape],
      w: await w.toArray(),
      grads: await Promise.all(ts.map((t) => (t.grad ? t.grad.toArray() : null))),
      gradTypes: ts.map((t) => t.grad?.dtype ?? null),
    };
    y.release();
    w.release();
    return run;
  } finally {
    for (const t of ts) {
      t.grad?.release();
      t.release();
    }
  }
}

/**
 * Assert max|got − want| / max(max|want|, scale) ≤ tol, naming the case on failure. `scale` is for
 * results that are sums with cancellation: pass the largest Σ|term|, the magnitude the float32 sum
 * really handles (see absSumScale).
 */
export function expectClose(got: ArrayLike<number> | null, want: ArrayLike<number>, tol: number, what: string, scale = 1e-30): void {
  expect(got, `${what}: missing`).not.toBeNull();
  const e = relErr(got!, want, Math.max(scale, 1e-30));
  expect(e, `${what}: relative error ${e.toExponential(2)} > ${tol}`).toBeLessThanOrEqual(tol);
}

/** Non-overlapping r×r average pool of [B, C, H, W] (float64 sums, rounded to float32). */
export function avgPoolRef(x: ArrayLike<number>, B: number, C: number, H: number, W: number, r: number): Float32Array {
  const h = H / r;
  const w = W / r;
  const out = new Float32Array(B * C * h * w);
  for (let bc = 0; bc < B * C; bc++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let acc = 0;
        for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) acc += x[(bc * H + i * r + a) * W + j * r + b];
        out[(bc * h + i) * w + j] = acc / (r * r);
      }
  return out;
}

/** A kh×kw average pool in float64: the mean over kh×kw windows of [P, H, W] planes, and dx for output gradient g. */
export function avgPoolWindowsRef(P: number, H: number, W: number, kh: number, kw: number, x: ArrayLike<number>, g: ArrayLike<number>) {
  const Ho = H / kh;
  const Wo = W / kw;
  const y = new Float64Array(P * Ho * Wo);
  const dx = new Float64Array(P * H * W);
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const o = (p * Ho + Math.floor(i / kh)) * Wo + Math.floor(j / kw);
        y[o] += x[(p * H + i) * W + j] / (kh * kw);
        dx[(p * H + i) * W + j] = g[o] / (kh * kw);
      }
    }
  }
  return { y, dx };
}

/**
 * The sizes of a graph-op case (KNN, max-relative): B images of C channels in G groups, N centres
 * (queries), M sources (candidates), k neighbours of each centre.
 */
export interface GraphDims {
  B: number;
  C: number;
  N: number;
  M: number;
  G: number;
  k: number;
}

/**
 * x [B, C, L] with each (image, group, position) L2-normalised over the group's C/G channels (the
 * norm floored at 1e-12, as the KNN kernel does), each quotient passed through `round` (roundHalf
 * for features the kernel stores as f16).
 */
export function normaliseGroups(x: ArrayLike<number>, B: number, C: number, L: number, G: number, round = (v: number) => v): Float64Array {
  const out = new Float64Array(x.length);
  const cg = C / G;
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++)
      for (let l = 0; l < L; l++) {
        let ss = 0;
        for (let c = 0; c < cg; c++) ss += x[(b * C + g * cg + c) * L + l] ** 2;
        const den = Math.max(Math.sqrt(ss), 1e-12);
        for (let c = 0; c < cg; c++) {
          const i = (b * C + g * cg + c) * L + l;
          out[i] = round(x[i] / den);
        }
      }
  return out;
}

/**
 * Into dist (length M): the squared distances, as uu − 2·uv + vv (the KNN kernel's expansion), from
 * query n of q [B, C, N] to every source m of s [B, C, M] over image b's group-g channels, plus
 * pos[n·M + m] (relative positions [N, M]) when given.
 */
export function groupDistances(q: ArrayLike<number>, s: ArrayLike<number>, dims: Pick<GraphDims, 'C' | 'N' | 'M' | 'G'>, b: number, g: number, n: number, pos: ArrayLike<number> | undefined, dist: Float64Array): void {
  const { C, N, M, G } = dims;
  const cg = C / G;
  for (let m = 0; m < M; m++) {
    let uu = 0, uv = 0, vv = 0;
    for (let c = 0; c < cg; c++) {
      const u = q[(b * C + g * cg + c) * N + n];
      const v = s[(b * C + g * cg + c) * M + m];
      uu += u * u;
      uv += u * v;
      vv += v * v;
    }
    dist[m] = uu - 2 * uv + vv + (pos ? pos[n * M + m] : 0);
  }
}

/**
 * Max-relative's choice for every centre i = (b·C + ch)·N + n of x [B, C, N], in that order: the
 * largest y[src] − x[i] over its k neighbours idx[(b·G + ch / (C/G))·N + n, ·] in y [B, C, M] (the
 * first on ties), reported as visit(i, bc = b·C + ch, n, best, src).
 */
export function forEachMaxRelative(x: ArrayLike<number>, y: ArrayLike<number>, idx: Int32Array, dims: GraphDims, visit: (i: number, bc: number, n: number, best: number, src: number) => void): void {
  const { B, C, N, M, G, k } = dims;
  const cg = C / G;
  for (let b = 0; b < B; b++)
    for (let ch = 0; ch < C; ch++) {
      const bc = b * C + ch;
      const row = b * G + Math.floor(ch / cg);
      for (let n = 0; n < N; n++) {
        const i = bc * N + n;
        let best = -Infinity, arg = 0;
        for (let t = 0; t < k; t++) {
          const d = y[bc * M + idx[(row * N + n) * k + t]] - x[i];
          if (d > best) [best, arg] = [d, t];
        }
        visit(i, bc, n, best, bc * M + idx[(row * N + n) * k + arg]);
      }
    }
}

/** max |a − b| / max |b| (1 when the reference is all zeros): the fixtures' metric. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}

/**
 * fn's result, and the launch contexts of the dispatches of kernel `file` it made (the device's
 * dispatch is wrapped while fn runs, then restored). Harness, like runGrad: it runs the engine.
 */
export async function watching<T>(file: string, fn: () => Promise<T>): Promise<{ value: T; contexts: string[] }> {
  const dev = device();
  const contexts: string[] = [];
  const dispatch = dev.dispatch.bind(dev);
  dev.dispatch = (p, args, params, wg, context) => {
    if (p.label.startsWith(file)) contexts.push(context);
    dispatch(p, args, params, wg, context);
  };
  try {
    return { value: await fn(), contexts };
  } finally {
    dev.dispatch = dispatch;
  }
}

/**
 * Declare `suite` once per kernel profile ('gpu', then 'cpu'), with the device switched to that
 * profile while its tests run, so one machine tests both the GPU and the CPU-adapter kernels.
 * `withoutSubgroups`: a third time on 'cpu' with the subgroups feature hidden from the engine, for
 * CPU kernels that share values by subgroup shuffles where they can and load them otherwise.
 */
export function forEachKernelProfile(title: (profile: string) => string, suite: () => void, o: { withoutSubgroups?: boolean } = {}): void {
  const rounds: [string, KernelProfile, boolean][] = [['gpu', 'gpu', false], ['cpu', 'cpu', false]];
  if (o.withoutSubgroups) rounds.push(['cpu, subgroups hidden', 'cpu', true]);
  for (const [name, profile, hide] of rounds) {
    describe(title(name), () => {
      let saved: KernelProfile;
      let hidden = false;
      beforeAll(() => {
        saved = device().kernelProfile;
        device().kernelProfile = profile;
        if (hide) hidden = device().features.delete('subgroups');
      });
      afterAll(() => {
        device().kernelProfile = saved;
        if (hidden) device().features.add('subgroups');
      });
      suite();
    });
  }
}

export interface ConvCase {
  B: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  groups: number;
}

export function convOutSize(c: ConvCase): [number, number] {
  return [Math.floor((c.H + 2 * c.pad - c.kh) / c.stride) + 1, Math.floor((c.W + 2 * c.pad - c.kw) / c.stride) + 1];
}

/** A convolution case's random inputs in [-1, 1): x, weight, bias (or null) and an output gradient, with their shapes. */
export function convCaseData(c: ConvCase, withBias: boolean, seed: number) {
  const [Ho, Wo] = convOutSize(c);
  const xs = [c.B, c.Cin, c.H, c.W];
  const ws = [c.Cout, c.Cin / c.groups, c.kh, c.kw];
  const gv = rand(c.B * c.Cout * Ho * Wo, seed + 3);
  return { Ho, Wo, xs, ws, xv: rand(numel(xs), seed), wv: rand(numel(ws), seed + 1), bv: withBias ? rand(c.Cout, seed + 2) : null, gv };
}

/** Direct float64 convolution, and its analytic gradients for an output gradient `gy`. */
export function conv2dRef(c: ConvCase, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, gy: ArrayLike<number>) {
  const [Ho, Wo] = convOutSize(c);
  const cig = c.Cin / c.groups;
  const cog = c.Cout / c.groups;
  const y = new Float64Array(c.B * c.Cout * Ho * Wo);
  const dx = new Float64Array(c.B * c.Cin * c.H * c.W);
  const dw = new Float64Array(c.Cout * cig * c.kh * c.kw);
  const db = new Float64Array(c.Cout);
  for (let n = 0; n < c.B; n++) {
    for (let co = 0; co < c.Cout; co++) {
      const g = Math.floor(co / cog);
      for (let oy = 0; oy < Ho; oy++) {
        for (let ox = 0; ox < Wo; ox++) {
          const yi = ((n * c.Cout + co) * Ho + oy) * Wo + ox;
          let acc = b ? b[co] : 0;
          const gv = gy[yi];
          db[co] += gv;
          for (let ci = 0; ci < cig; ci++) {
            const cx = g * cig + ci;
            for (let ky = 0; ky < c.kh; ky++) {
              const iy = oy * c.stride - c.pad + ky;
              if (iy < 0 || iy >= c.H) continue;
              for (let kx = 0; kx < c.kw; kx++) {
                const ix = ox * c.stride - c.pad + kx;
                if (ix < 0 || ix >= c.W) continue;
                const xi = ((n * c.Cin + cx) * c.H + iy) * c.W + ix;
                const wi = ((co * cig + ci) * c.kh + ky) * c.kw + kx;
                acc += w[wi] * x[xi];
                dx[xi] += w[wi] * gv;
                dw[wi] += x[xi] * gv;
              }
            }
          }
          y[yi] = acc;
        }
      }
    }
  }
  return { y, dx, dw, db };
}

/** x rounded to the nearest IEEE binary16 value (ties to even; ±Inf past 65504), in float64. */
export function f16round(x: number): number {
  const a = Math.abs(x);
  if (!Number.isFinite(a) || a === 0) return x;
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (e > -14 && 2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (e - 10);
  const q = a / ulp;
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  return Math.sign(x) * r * ulp;
}

/** max over i of |got − want| / scale[i] (scale: the Σ|term| each result was summed from). */
export function maxScaledErr(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>): number {
  if (got.length !== want.length || got.length !== scale.length) throw new Error(`length ${got.length} vs ${want.length} vs ${scale.length}`);
  let e = 0;
  for (let i = 0; i < got.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]) / Math.max(scale[i], 1e-30));
  return e;
}

/**
 * `x` rounded to the nearest IEEE half (f16), ties to even, in float64 arithmetic: ±Infinity past
 * 65504 (from 65520 on), subnormals below 2^-14. The reference for f16 tensors.
 */
export function roundHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  let r = Math.floor(q);
  if (q - r > 0.5 || (q - r === 0.5 && r % 2 === 1)) r++;
  const v = r * ulp;
  return Math.sign(x) * (v > 65504 ? Infinity : v);
}

/** `got` equal to `want` value by value (Object.is: -0 and NaN too). */
export function expectExact(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) expect(`${what}[${i}] = ${got[i]}`).toBe(`${what}[${i}] = ${want[i]}`);
  }
}

/**
 * `got` (a GPU's f32 → f16 conversions) against float64 values `exact`: each one of the two halves
 * next to it (WGSL lets an implementation round either way; lavapipe rounds to nearest, ties to
 * even), ±Infinity past 65504, the value itself when representable, and zero for a subnormal
 * half (which an implementation may flush).
 */
export function expectNeighbourHalf(got: ArrayLike<number>, exact: ArrayLike<number>, what: string): void {
  expect(got.length, what).toBe(exact.length);
  for (let i = 0; i < exact.length; i++) {
    const x = exact[i];
    const r = roundHalf(x);
    let ok = Object.is(got[i], r) || (Math.abs(x) < 2 ** -14 && got[i] === 0);
    if (!ok && r !== x && Number.isFinite(x)) {
      // The other neighbour: the next half from r towards x (r's ulp, or half of it just below a power
      // of two); from zero, the smallest subnormal.
      const a = Math.abs(r);
      const e = a === 0 ? -14 : Math.max(Math.floor(Math.log2(a)), -14);
      const towardsZero = Math.abs(x) < a;
      const ulp = 2 ** ((towardsZero && a === 2 ** e && e > -14 ? e - 1 : e) - 10);
      const other = Math.abs(r) === Infinity ? Math.sign(x) * 65504 : r + Math.sign(x - r) * ulp;
      ok = got[i] === (Math.abs(other) > 65504 ? Math.sign(other) * Infinity : other);
    }
    if (!ok) expect(`${what}[${i}] = ${got[i]}`).toBe(`${what}[${i}] = ${r} (or the other half next to ${x})`);
  }
}
