// Batched matmul with transpose flags and a bias/activation epilogue (kernel: matmul.wgsl).
// Shapes: op(A) [..., M, K] · op(B) [..., K, N] → [..., M, N]; a batch of 1 is shared (broadcast).
import { isFloat, Tensor, type DType } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { isGradEnabled, operandPrecision, activationDtype } from '../engine/context.js';
import { kernelSource, composedSource, withStorageTypes } from '../engine/kernel.js';
import { operandSource, F32_STORAGE, storageName, type GemmStorage } from './operand.js';
import { launch, shapeStr, unusedOperand } from '../engine/launch.js';
import { sum } from './reduce.js';
import { relu, gelu, asF32, cast } from './elementwise.js';
import { device } from '../engine/context.js';
import { fixedSubgroupSize } from './subgroups.js';
import { shuffleGemmLaunch, shuffleDotLaunch } from './pointwise-subgroup.js';
import { matrixFor, gemmKernel, matrixName, matrixTile, matrixTileChoices, type MatrixTiles } from './matrix-tiles.js';
import { tuned, choicesByDefault } from './autotune.js';
import { zeros } from './fill.js';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Added per row of C (length M) or per column (length N); may carry a batch dimension. */
  bias?: Tensor;
  biasMode?: 'row' | 'col';
  activation?: 'none' | 'relu' | 'gelu';
  /** Force a tile configuration (benchmarks). */
  tile?: TileConfig;
}

export interface TileConfig {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

export const TILES: Record<'small' | 'medium' | 'large', TileConfig> = {
  small: { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 },
  medium: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
  large: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
};

function pickTile(M: number, N: number): TileConfig {
  if (M >= 1024 && N >= 1024) return TILES.large;
  if (M >= 64 && N >= 64) return TILES.medium;
  return TILES.small;
}

/**
 * A GEMM kernel file written against tile.wgsl's interface (matmul.wgsl, conv2d.wgsl) on register
 * tiles of `t`, with its {{BM}}… tile constants filled in, at the current operand precision
 * (kernels/operand.ts), its arrays of the types `storage` names.
 */
export function tiledSource(file: string, t: TileConfig, storage: GemmStorage = F32_STORAGE): string {
  return composedSource(`${file} registers ${t.BM} ${t.BN} ${t.BK} ${t.TM} ${t.TN} ${operandPrecision()}${storageName(storage)}`, () =>
    withStorageTypes(operandSource(kernelSource('tile.wgsl') + kernelSource(file, { ...t })), storage));
}

function dims(a: Tensor, b: Tensor, o: MatmulOptions) {
  const op = 'matmul';
  if (a.rank < 2 || b.rank < 2) throw new Error(`${op}: operands need rank ≥ 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const [M, Ka] = o.transA ? [a.shape[a.rank - 1], a.shape[a.rank - 2]] : [a.shape[a.rank - 2], a.shape[a.rank - 1]];
  const [Kb, N] = o.transB ? [b.shape[b.rank - 1], b.shape[b.rank - 2]] : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (Ka !== Kb) {
    throw new Error(`${op}: inner dimensions differ: ${shapeStr(a.shape)}${o.transA ? 'ᵀ' : ''} · ${shapeStr(b.shape)}${o.transB ? 'ᵀ' : ''} (${Ka} vs ${Kb})`);
  }
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const na = ba.reduce((x, y) => x * y, 1);
  const nb = bb.reduce((x, y) => x * y, 1);
  if (na !== nb && na !== 1 && nb !== 1) {
    throw new Error(`${op}: batch dimensions ${shapeStr(ba)} and ${shapeStr(bb)} differ (one may be 1)`);
  }
  const batchShape = na >= nb ? ba : bb;
  return { M, N, K: Ka, na, nb, batch: Math.max(na, nb), batchShape };
}

/**
 * On CPU adapters with fixed-size subgroups, the matmul as pointwise-subgroup.wgsl's kernels, which
 * lavapipe runs 4–8× faster than the tiled kernel (bench/RESULTS.md): A·B and Aᵀ·B as its gemm (A the
 * weight, B's rows the planes), A·Bᵀ as its dot form (both operands' rows as planes). A batch is its
 * groups, or its images where A is shared, or folds into A's rows where B is shared (A not
 * transposed). Returns false, launching nothing, where the matmul has no such form (Aᵀ·Bᵀ, a bias
 * per batch, a column bias of A·B, an activation, a forced tile) or an array is not f32 (the
 * kernels read and write f32 only).
 */
function shuffleMatmul(a: Tensor, b: Tensor, o: MatmulOptions, d: ReturnType<typeof dims>, biasBatch: number, out: Tensor): boolean {
  const sg = fixedSubgroupSize();
  if (!sg || device().kernelProfile !== 'cpu' || o.tile || (o.activation ?? 'none') !== 'none' || biasBatch !== 0) return false;
  if ([a, b, out, o.bias].some((t) => t && t.dtype !== 'f32')) return false;
  const { M, N, K, na, nb, batch } = d;
  const bias = o.bias ?? null;
  const biasMode = bias ? (o.biasMode ?? 'col') : 'none';
  const context = `matmul ${shapeStr(a.shape)}${o.transA ? 'ᵀ' : ''} · ${shapeStr(b.shape)}${o.transB ? 'ᵀ' : ''} (pointwise subgroup)`;
  const maxWg = device().limits.maxComputeWorkgroupsPerDimension;
  if (!o.transB) {
    // gemm: its bias is per row, and per group.
    if (biasMode === 'col') return false;
    const shared = na === 1 && nb > 1;
    const folded = nb === 1 && na > 1;
    if ((folded && (o.transA || bias)) || (bias && !shared && batch > 1)) return false;
    const rows = folded ? batch * M : M;
    const [images, groups] = shared ? [batch, 1] : folded ? [1, 1] : [1, batch];
    if (Math.ceil((images * N) / sg) > maxWg || Math.ceil(rows / sg) > maxWg || groups > maxWg) return false;
    shuffleGemmLaunch({ images, groups, M: rows, K, S: N, transA: !!o.transA, context }, sg, a, b, bias, out, null);
    return true;
  }
  if (o.transA || (na === 1 && nb > 1)) return false;
  const folded = nb === 1 && na > 1;
  if (folded && biasMode === 'row') return false;
  const [rows, groups] = folded ? [batch * M, 1] : [M, batch];
  if (Math.ceil(rows / sg) > maxWg || groups > maxWg) return false;
  shuffleDotLaunch({ images: 1, perChunk: 1, splits: 1, groups, M: rows, N, S: K, biasGrad: false, biasAdd: biasMode, context }, sg, a, b, bias, out, null);
  return true;
}

/** The forward launch alone (no autograd), its output in `dtype`. */
export function matmulRaw(a: Tensor, b: Tensor, o: MatmulOptions = {}, dtype: DType = 'f32'): Tensor {
  for (const t of o.bias ? [a, b, o.bias] : [a, b]) {
    t.assertAlive('matmul');
    if (!isFloat(t.dtype)) throw new Error(`matmul: expects f32 or f16, got ${t.describe()}`);
  }
  const d = dims(a, b, o);
  const { M, N, K, na, nb, batch, batchShape } = d;
  const out = Tensor.empty([...batchShape, M, N], dtype, 'matmul');
  const mode = o.bias ? (o.biasMode === 'row' ? 1 : 2) : 0;
  let biasBatch = 0;
  if (o.bias) {
    const len = mode === 1 ? M : N;
    if (o.bias.size !== len && o.bias.size !== len * batch) {
      throw new Error(`matmul: bias ${o.bias.describe()} must have ${len} (or ${batch}×${len}) elements for a ${o.biasMode ?? 'col'} bias`);
    }
    biasBatch = o.bias.size === len ? 0 : len;
  }
  if (out.size === 0) return out;
  if (shuffleMatmul(a, b, o, d, biasBatch, out)) return out;
  // Subgroup-matrix tiles (tensor cores) where the adapter has them (kernels/matrix-tiles.ts).
  const matrix = matrixFor(M, N, o.tile);
  let t = o.tile ?? (matrix ? matrixTile() : pickTile(M, N));
  // A tile the caller did not force is autotuned: every tile adds each output's products in k order.
  const variants = o.tile ? [] : matrix ? matrixTileChoices(matrix) : (TILE_VARIANTS.get(t) ?? []);
  if (variants.length > 1) {
    const shape = `${o.transA ? 'Aᵀ' : 'A'}${o.transB ? 'Bᵀ' : 'B'} M${M} N${N} K${K} b${batch}/${na}/${nb} bias${mode}${biasBatch ? 'b' : ''} ${o.activation ?? 'none'} ${operandPrecision()}${matrix ? ` ${matrixName(matrix)}` : ''}${storageName(storageOf(a, b, o, out))}`;
    t = tuned('matmul.wgsl', shape, variants, (v) =>
      launchTiled(zeros(a.shape, a.dtype), zeros(b.shape, b.dtype), o.bias ? { ...o, bias: zeros(o.bias.shape, o.bias.dtype) } : o, d, zeros(out.shape, out.dtype), biasBatch, v, matrix));
  }
  launchTiled(a, b, o, d, out, biasBatch, t, matrix);
  return out;
}

/** matmul.wgsl's register tiles, per default tile: the default first (autotuning's choices). */
const TILE_VARIANTS = choicesByDefault(Object.values(TILES));

function storageOf(a: Tensor, b: Tensor, o: MatmulOptions, out: Tensor): GemmStorage {
  return { A: a.dtype, B: b.dtype, bias: o.bias?.dtype ?? 'f32', C: out.dtype, addend: 'f32' };
}

/** One launch of matmul.wgsl on `t`: register tiles, or matrix tiles `matrix` (which must fit t). */
function launchTiled(a: Tensor, b: Tensor, o: MatmulOptions, d: ReturnType<typeof dims>, out: Tensor, biasBatch: number, t: TileConfig, matrix: MatrixTiles | null): void {
  const { M, N, K, na, nb, batch } = d;
  const mode = o.bias ? (o.biasMode === 'row' ? 1 : 2) : 0;
  launch({
    file: 'matmul.wgsl',
    ...gemmKernel('matmul.wgsl', t, matrix, storageOf(a, b, o, out)),
    constants: { TRANS_A: o.transA ? 1 : 0, TRANS_B: o.transB ? 1 : 0, BIAS: mode, ACT: { none: 0, relu: 1, gelu: 2 }[o.activation ?? 'none'] },
    args: [a, b, o.bias ?? unusedOperand(), out],
    params: [M, N, K, na === 1 ? 0 : M * K, nb === 1 ? 0 : K * N, M * N, biasBatch, 0],
    workgroups: [Math.ceil(N / t.BN), Math.ceil(M / t.BM), batch],
    context: `matmul ${shapeStr(a.shape)}${o.transA ? 'ᵀ' : ''} · ${shapeStr(b.shape)}${o.transB ? 'ᵀ' : ''}${matrix ? `, ${matrixName(matrix)}` : ''}`,
  });
}

/**
 * op(A) · op(B) (+ bias) (→ activation), in activationDtype() (f16 activations under --precision
 * mixed); A, B and the bias may be f32 or f16. With autograd recording, the activation runs as its
 * own op so that its backward sees the pre-activation values. Each input's gradient comes in its
 * dtype (an f32 weight's f32).
 */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  for (const t of [a, b, o.bias]) if (t && !isFloat(t.dtype)) throw new Error(`matmul: expects f32 or f16, got ${t.describe()}`);
  const dtype = activationDtype();
  if (device().kernelProfile !== 'cpu') return product(a, b, o, dtype);
  // The cpu profile's kernels (pointwise-subgroup.wgsl) read and write f32: f16 arrays go through casts.
  const y = product(asF32(a), asF32(b), o.bias ? { ...o, bias: asF32(o.bias) } : o, 'f32');
  return cast(y, dtype);
}

/** matmul() with its output in `dtype`. */
function product(a: Tensor, b: Tensor, o: MatmulOptions, dtype: DType): Tensor {
  const recording = isGradEnabled() && (a.requiresGrad || b.requiresGrad || !!o.bias?.requiresGrad);
  if (recording && o.activation && o.activation !== 'none') {
    const z = product(a, b, { ...o, activation: 'none' }, dtype);
    return o.activation === 'relu' ? relu(z) : gelu(z);
  }
  const y = matmulRaw(a, b, o, dtype);
  const { na, nb, batch } = dims(a, b, o);
  const bias = o.bias;
  const inputs = bias ? [a, b, bias] : [a, b];
  return record(y, 'matmul', inputs, (g) => {
    const ta = !!o.transA;
    const tb = !!o.transB;
    // Each gradient in its input's dtype; one summed over a broadcast batch in f32 first (the sum's is f32).
    const gradOf = (x: Tensor, n: number, product: (dt: DType) => Tensor): Tensor => {
      const shared = n === 1 && batch > 1;
      const gx = product(shared ? 'f32' : x.dtype);
      return shared ? sumBatch(gx) : gx;
    };
    const ga = a.requiresGrad ? gradOf(a, na, (dt) => (ta ? matmulRaw(b, g, { transA: tb, transB: true }, dt) : matmulRaw(g, b, { transB: !tb }, dt))) : null;
    const gb = b.requiresGrad ? gradOf(b, nb, (dt) => (tb ? matmulRaw(g, a, { transA: true, transB: ta }, dt) : matmulRaw(a, g, { transA: !ta }, dt))) : null;
    const grads: (Tensor | null)[] = [ga, gb];
    if (bias) {
      if (!bias.requiresGrad) grads.push(null);
      else {
        const g3 = g.view([batch, g.shape[g.rank - 2], g.shape[g.rank - 1]]);
        const perBatch = bias.size !== (o.biasMode === 'row' ? g3.shape[1] : g3.shape[2]);
        const axes = o.biasMode === 'row' ? (perBatch ? [2] : [0, 2]) : perBatch ? [1] : [0, 1];
        grads.push(sum(g3, axes));
      }
    }
    return grads;
  });
}

function sumBatch(t: Tensor): Tensor {
  const flat = t.view([-1, t.shape[t.rank - 2], t.shape[t.rank - 1]]);
  const s = sum(flat, 0);
  t.release();
  flat.release();
  return s;
}
