// Float64 CPU references and comparison helpers for the tests. Nothing here calls the engine.

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

/** Sum `g` (shape `from`) down to broadcast-source shape `to`. */
export function sumToRef(g: ArrayLike<number>, from: readonly number[], to: readonly number[]): Arr {
  const out = new Float64Array(numel(to));
  for (let i = 0; i < g.length; i++) out[bcastIndex(i, from, to)] += g[i];
  return out;
}

/** max |a − b| / max(max |b|, floor): the fixture README's metric. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = floor;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

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
