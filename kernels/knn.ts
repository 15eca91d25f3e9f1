// Fused, tiled dilated KNN for ViG / GKGNet graphs (kernel: knn.wgsl). Indices only: no gradient.
// On CPU adapters with subgroups of 8, wide channel groups compute their inner products as one
// matrix product first (pointwise-subgroup.wgsl) and select from it.
import { Tensor, isFloat } from '../engine/tensor.js';
import { device } from '../engine/context.js';
import { kernelSource, composedSource } from '../engine/kernel.js';
import { fixedSubgroupSize } from './subgroups.js';
import { launch, grid1d, shapeStr, unusedOperand } from '../engine/launch.js';
import { shuffleGemmLaunch } from './pointwise-subgroup.js';

export interface DilatedKnnOptions {
  /** Neighbours kept per query. */
  k: number;
  /** Keep every d-th of the k·d nearest (default 1). */
  dilation?: number;
  /** Channel groups: each group of C/G channels runs its own KNN (default 1). */
  groups?: number;
  /** Added to the distance: [N, M] or [1, N, M] (ViG's relative_pos). */
  relativePos?: Tensor;
  /** L2-normalise query and source vectors per group first (default true: cosine distance). */
  normalize?: boolean;
  /**
   * Force an implementation (benchmarks, tests): 'fused' computes distances and selects in one kernel;
   * 'products' computes every inner product as one matrix product first (CPU adapters with
   * subgroups of 8). Default: 'products' where available, from 32 channels per group, for a
   * product matrix of at most 64 MiB.
   */
  impl?: 'fused' | 'products';
}

/** Largest k·d supported: each thread keeps (k−1)·d + 1 candidates in private memory. */
export const KNN_MAX_CANDIDATES = 32;
// Queries per workgroup of knn.wgsl's entries: `knn` (tiled, GPUs) and `knn_lanes` (CPU adapters).
const QUERIES_PER_WORKGROUP = { knn: 64, knn_lanes: 8 } as const;
/** knn_lanes' sources per step (TC): subgroups of this size share them by shuffles. */
const LANES_SOURCES = 8;
/**
 * Where select_lanes reads a product matrix instead of knn_lanes computing each distance: from this
 * many channels per group, up to this many (row, query, source) products (64 MiB). knn_lanes loads
 * a query value for every TC products, the matrix product one value for every 32; below about 32
 * channels the short reduction makes a poor gemm and the matrix's extra pass does not pay.
 * Lavapipe, 9 nearest of 196 or 49 (bench/RESULTS.md): 1.3–2.5× from 48 channels per group on,
 * even at 24; 4 to 16 channels slower.
 */
const PRODUCTS_MIN_CHANNELS = 32;
const MAX_PRODUCTS = 1 << 24;

// How knn_lanes reads the sources every query of a workgroup needs (knn.wgsl): a load per source,
// or with subgroups of TC lanes one load per lane handed to the others by shuffles.
const SOURCE_READS = {
  load:
    'fn own_lane() -> u32 { return 0u; }\n' +
    'fn own_s(at: u32) -> f32 { return 0.0; }\n' +
    'fn share_s(own: f32, at: u32, j: u32) -> f32 { return f32(s[at]); }\n' +
    'fn own_ssq(at: u32) -> f32 { return 0.0; }\n' +
    'fn share_ssq(own: f32, at: u32, j: u32) -> f32 { return ssq[at]; }\n',
  shuffle:
    'fn own_lane() -> u32 { return subgroupExclusiveAdd(1u); }\n' +
    'fn own_s(at: u32) -> f32 { return f32(s[at]); }\n' +
    'fn share_s(own: f32, at: u32, j: u32) -> f32 { return subgroupShuffle(own, j); }\n' +
    'fn own_ssq(at: u32) -> f32 { return ssq[at]; }\n' +
    'fn share_ssq(own: f32, at: u32, j: u32) -> f32 { return subgroupShuffle(own, j); }\n',
} as const;

/** knn.wgsl with its window KD and source reads. */
function knnSource(KD: number, shuffle: boolean): string {
  return composedSource(`knn ${KD} ${shuffle}`, () =>
    (shuffle ? 'enable subgroups;\n' : '') + SOURCE_READS[shuffle ? 'shuffle' : 'load'] + kernelSource('knn.wgsl', { KD }));
}


/**
 * For each query node, the indices of its k nearest source nodes after dilation:
 * query [B, C, N], source [B, C, M] → i32 [B·G, N, k], row b·G + g = sample b, channel group g.
 * Distance ‖u‖² − 2·u·v + ‖v‖² (+ relativePos[n, m]) between the (normalised) group sub-vectors;
 * the k·d smallest are sorted ascending (ties: smaller source index first) and positions
 * 0, d, …, (k−1)·d are kept. Query and source may be f16 (the normalised copies are then f16 too,
 * as autocast's f16 product of them would round them); distances are f32.
 */
export function dilatedKnn(query: Tensor, source: Tensor, opts: DilatedKnnOptions): Tensor {
  const { k, dilation = 1, groups = 1, relativePos, normalize = true, impl } = opts;
  const ctx = `dilatedKnn query ${shapeStr(query.shape)} source ${shapeStr(source.shape)} k ${k} dilation ${dilation} groups ${groups}`;
  for (const [name, t] of [['query', query], ['source', source]] as const) {
    t.assertAlive(ctx);
    if (t.rank !== 3 || !isFloat(t.dtype)) throw new Error(`${ctx}: ${name} must be f32 [B, C, nodes] (or f16), got ${t.describe()}`);
  }
  const [B, C, N] = query.shape;
  const M = source.shape[2];
  if (source.shape[0] !== B || source.shape[1] !== C) {
    throw new Error(`${ctx}: source must have the query's batch and channels [${B}, ${C}, M]`);
  }
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new Error(`${ctx}: groups must be a positive divisor of the ${C} channels`);
  }
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(dilation) || dilation < 1) {
    throw new Error(`${ctx}: k and dilation must be positive integers`);
  }
  if (k * dilation > M) throw new Error(`${ctx}: k·dilation = ${k * dilation} exceeds the ${M} sources`);
  if (k * dilation > KNN_MAX_CANDIDATES) {
    throw new Error(`${ctx}: k·dilation = ${k * dilation} exceeds the supported ${KNN_MAX_CANDIDATES}`);
  }
  if (relativePos) {
    relativePos.assertAlive(ctx);
    const s = relativePos.shape;
    const ok = (s.length === 2 || (s.length === 3 && s[0] === 1)) && s[s.length - 2] === N && s[s.length - 1] === M;
    if (!ok || relativePos.dtype !== 'f32') {
      throw new Error(`${ctx}: relativePos must be f32 [${N}, ${M}] or [1, ${N}, ${M}], got ${relativePos.describe()}`);
    }
  }

  const rows = B * groups;
  const cg = C / groups;
  const out = Tensor.empty([rows, N, k], 'i32', 'knn');
  if (out.size === 0) return out;
  const entry = device().kernelProfile === 'cpu' ? 'knn_lanes' : 'knn';
  const perGroup = QUERIES_PER_WORKGROUP[entry];
  const blocks = Math.ceil(N / perGroup);
  const params = (nodes: number) => [rows, cg, nodes, M, k, dilation, blocks, 0];

  // Pre-pass: normalised copies (if asked) and squared norms per (row, node).
  const prepare = (t: Tensor, nodes: number): { v: Tensor; sq: Tensor } => {
    const sq = Tensor.empty([rows, nodes], 'f32', 'knn sq');
    const v = normalize ? Tensor.empty(t.shape, t.dtype, 'knn normalised') : t;
    launch({
      file: 'knn.wgsl',
      code: knnSource(1, false),
      entry: normalize ? 'normalize' : 'square_norms',
      storage: { x: t.dtype, xn: v.dtype },
      args: normalize ? [t, v, sq] : [t, sq],
      params: params(nodes),
      workgroups: grid1d(rows * nodes),
      context: `${ctx} (pre-pass)`,
    });
    return { v, sq };
  };
  const selfGraph = query.pooled === source.pooled && query.byteOffset === source.byteOffset && N === M;
  const qp = prepare(query, N);
  const sp = selfGraph ? qp : prepare(source, M);

  // One vec4 (a binding of vec4s needs 16 bytes) when there is no pos.
  const pos = relativePos ?? unusedOperand();
  const [gx, gy] = grid1d(rows * blocks * perGroup, perGroup);
  const lanes = entry === 'knn_lanes';
  const shuffle = lanes && fixedSubgroupSize() === LANES_SOURCES;
  const code = knnSource((k - 1) * dilation + 1, shuffle);
  const constants = { HAS_POS: relativePos ? 1 : 0, ...(lanes ? { POS4: +(M % 4 === 0) } : {}) };
  const maxWg = device().limits.maxComputeWorkgroupsPerDimension;
  // The matrix product (pointwise-subgroup.wgsl) reads f32 features only; f16 ones take knn_lanes.
  const f32Features = qp.v.dtype === 'f32' && sp.v.dtype === 'f32';
  const products = shuffle && f32Features && Math.ceil(N / LANES_SOURCES) <= maxWg && rows <= maxWg;
  if (impl === 'products' && !products) {
    throw new Error(`${ctx}: impl 'products' needs CPU-shaped kernels on an adapter with subgroups of ${LANES_SOURCES} (${device().describe()}), f32 features and at most ${maxWg} rows and query blocks`);
  }
  if (impl === 'products' || (impl !== 'fused' && products && cg >= PRODUCTS_MIN_CHANNELS && rows * N * M <= MAX_PRODUCTS)) {
    // dots[r, n, m] = Σ_c q[r, c, n] · s[r, c, m]: the queries as a transposed weight, one group per row.
    const dots = Tensor.empty([rows, N, M], 'f32', 'knn products');
    shuffleGemmLaunch({ images: 1, groups: rows, M: N, K: cg, S: M, transA: true, context: `${ctx} (products)` }, LANES_SOURCES, qp.v, sp.v, null, dots, null);
    launch({ file: 'knn.wgsl', code, entry: 'select_lanes', constants, storage: {}, args: [qp.sq, sp.sq, pos, out, pos, dots, dots], params: params(N), workgroups: [gx, gy], context: ctx });
    dots.release();
  } else {
    launch({
      file: 'knn.wgsl',
      code,
      entry,
      constants,
      storage: { q: qp.v.dtype, s: sp.v.dtype },
      args: lanes ? [qp.v, qp.sq, sp.v, sp.sq, pos, out, pos] : [qp.v, qp.sq, sp.v, sp.sq, pos, out],
      params: params(N),
      workgroups: [gx, gy],
      context: ctx,
    });
  }
  for (const t of new Set([qp.v, qp.sq, sp.v, sp.sq])) if (t !== query && t !== source) t.release();
  return out;
}
