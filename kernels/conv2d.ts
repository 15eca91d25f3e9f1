// 2-D convolution, NCHW, with groups (kernel: conv2d.wgsl, one implicit-GEMM kernel for the forward
// pass, the input gradient and the weight gradient). Dense and grouped 1×1 convolutions take the
// same kernel; with kh = kw = 1, stride 1 and no padding its gather folds into strided reads. The
// 'cpu' kernel profile runs 1×1 convs on pointwise.wgsl and the others on direct.wgsl instead.
// x, the residual and the gradients of the activations may be f16 (conv2d.wgsl reads and writes
// them so; the CPU kernels go through casts); weight, bias and their gradients are f32.
import { Tensor, isFloat, type DType } from '../engine/tensor.js';
import { record, type PendingGrads } from '../engine/autograd.js';
import { device, operandPrecision, activationDtype } from '../engine/context.js';
import { kernelSource, composedSource } from '../engine/kernel.js';
import { launch, grid1d, shapeStr, unusedOperand, unusedOutput } from '../engine/launch.js';
import { TILES, type TileConfig } from './matmul.js';
import { asF32, cast } from './elementwise.js';
import { matrixFor, gemmKernel, matrixName, matrixTile, matrixTileChoices, type MatrixTiles } from './matrix-tiles.js';
import { operandSource, storageName, type GemmStorage } from './operand.js';
import { sum } from './reduce.js';
import { zeros } from './fill.js';
import { tuned, choicesByDefault } from './autotune.js';
import { shuffleGemm, shuffleWeightGrad } from './pointwise-subgroup.js';
import { imageChunks, chunkedWeightGrad, sumChunks, sumIntoHome } from './chunked-grads.js';
import { fixedSubgroupSize } from './subgroups.js';

export interface Conv2dOptions {
  /** One value for both axes, or [h, w]. Default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding on each side, one value or [h, w]. Default 0. */
  padding?: number | readonly [number, number];
  /** Channel groups; must divide Cin and Cout. Default 1. */
  groups?: number;
  /** Force a tile configuration for every GEMM of this conv, and so the gemm kernel (tests, benchmarks). */
  tile?: TileConfig;
  /**
   * Force the kernel: 'gemm' (conv2d.wgsl, any conv), 'pointwise' (pointwise.wgsl, 1×1 stride 1
   * without padding only), 'subgroup' (pointwise-subgroup.wgsl, the same convs, on adapters with a
   * fixed subgroup size) or 'direct' (direct.wgsl, any conv). Default under the 'cpu' kernel
   * profile: subgroup (else pointwise) for such convs, direct for every other conv; gemm otherwise.
   */
  impl?: 'gemm' | 'pointwise' | 'subgroup' | 'direct';
  /** Force pointwise.wgsl's register blocks instead of the tuned ones (tests, benchmarks). */
  pointwise?: { gemm?: PointwiseBlock; dw?: PointwiseBlock };
  /**
   * A tensor shaped as the output, added in the kernel's store (a block's residual):
   * y = conv2d(x) + bias + residual, without an add pass. Its gradient is the output's.
   */
  residual?: Tensor;
}

/** pointwise.wgsl's register block: rows of C per invocation and lanes (gemm), or the TM×TN block of dw per workgroup. */
export interface PointwiseBlock {
  TM: number;
  TN: number;
  WG?: number;
}

/** Inputs for an autotuning trial: zeros, since only the speed counts (and uninitialised memory may hold denormals). */
const scratch = zeros;
/** A trial's gradients go nowhere else. */
const NO_PENDING: PendingGrads = {
  take: () => null,
  home: () => null,
  sumLater: () => {
    throw new Error('an autotuning trial has no gradient homes');
  },
};

/** Everything the three GEMMs need to know about one convolution. */
interface Geometry {
  B: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  kh: number;
  kw: number;
  Ho: number;
  Wo: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  groups: number;
  context: string;
}

/** Small-M tiles first: a group of a grouped conv often has only 8–32 output channels. */
const CONV_TILES: TileConfig[] = [
  { BM: 16, BN: 64, BK: 16, TM: 4, TN: 4 },
  { BM: 32, BN: 64, BK: 16, TM: 4, TN: 4 },
  TILES.medium,
  TILES.large,
];

function pickTile(M: number, N: number): TileConfig {
  if (M >= 128 && N >= 4096) return TILES.large;
  return CONV_TILES.find((t) => t.BM >= M) ?? TILES.medium;
}

function pair(v: number | readonly [number, number] | undefined, dflt: number, what: string, min: number, context: string): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.some((x) => !Number.isInteger(x) || x < min)) {
    throw new Error(`${context}: ${what} must be an integer ≥ ${min} (or a pair of them), got ${JSON.stringify(v)}`);
  }
  return p;
}

function geometry(x: Tensor, weight: Tensor, bias: Tensor | null, o: Conv2dOptions): Geometry {
  const context = `conv2d x ${shapeStr(x.shape)} weight ${shapeStr(weight.shape)}`;
  for (const t of bias ? [x, weight, bias] : [x, weight]) t.assertAlive('conv2d');
  if (!isFloat(x.dtype)) throw new Error(`${context}: x must be f32 or f16, got ${x.describe()}`);
  for (const t of bias ? [weight, bias] : [weight]) {
    if (t.dtype !== 'f32') throw new Error(`${context}: expects f32 parameters, got ${t.describe()}`);
  }
  if (x.rank !== 4) throw new Error(`${context}: x must be [B, Cin, H, W]`);
  if (weight.rank !== 4) throw new Error(`${context}: weight must be [Cout, Cin/groups, kh, kw]`);
  const [B, Cin, H, W] = x.shape;
  const [Cout, CinG, kh, kw] = weight.shape;
  const groups = o.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${context}: groups must be a positive integer, got ${groups}`);
  if (Cin % groups !== 0 || Cout % groups !== 0) {
    throw new Error(`${context}: groups=${groups} must divide Cin=${Cin} and Cout=${Cout}`);
  }
  if (CinG !== Cin / groups) {
    throw new Error(`${context}: weight dimension 1 is ${CinG}, expected Cin/groups = ${Cin}/${groups} = ${Cin / groups}`);
  }
  if (kh < 1 || kw < 1 || Cout < 1) throw new Error(`${context}: weight has an empty dimension`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== Cout)) {
    throw new Error(`${context}: bias ${shapeStr(bias.shape)} must be [${Cout}] (one per output channel)`);
  }
  const [sh, sw] = pair(o.stride, 1, 'stride', 1, context);
  const [ph, pw] = pair(o.padding, 0, 'padding', 0, context);
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  if (Ho < 1 || Wo < 1) {
    throw new Error(`${context}: kernel ${kh}×${kw} does not fit the padded input ${H + 2 * ph}×${W + 2 * pw}`);
  }
  return { B, Cin, H, W, Cout, kh, kw, Ho, Wo, sh, sw, ph, pw, groups, context };
}

/** conv2d.wgsl's p.mode: which of the three GEMMs a launch computes. */
const Mode = { Forward: 0, InputGrad: 1, WeightGrad: 2 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** Split the K = B·Ho·Wo reduction of dW until about this many workgroups run, … */
const DW_TARGET_WORKGROUPS = 512;
/** … but never into chunks shorter than this. */
const DW_MIN_CHUNK = 64;

interface Plan {
  M: number;
  N: number;
  K: number;
  tile: TileConfig;
  /** Subgroup-matrix tiles (tile is then matrixTile()), or null for register tiles. */
  matrix: MatrixTiles | null;
  /** A tile the caller did not force: gemm() launches the autotuned one (`tile` until timed). */
  tunable: boolean;
  mTiles: number;
  nTiles: number;
  /** K per chunk (a multiple of BK) and the number of chunks (> 1 only for the weight gradient). */
  chunk: number;
  splits: number;
}

/** `withDb`: the weight gradient's GEMM with db's column of ones (conv2d.wgsl). */
function plan(mode: Mode, g: Geometry, tile?: TileConfig, withDb = false): Plan {
  const khw = g.kh * g.kw;
  const [M, N, K] =
    mode === Mode.Forward ? [g.Cout / g.groups, g.B * g.Ho * g.Wo, (g.Cin / g.groups) * khw]
    : mode === Mode.InputGrad ? [g.Cin / g.groups, g.B * g.H * g.W, (g.Cout / g.groups) * khw]
    : [g.Cout / g.groups, (g.Cin / g.groups) * khw + (withDb ? 1 : 0), g.B * g.Ho * g.Wo];
  const matrix = matrixFor(M, N, tile);
  const t = tile ?? (matrix ? matrixTile() : pickTile(M, N));
  const mTiles = Math.ceil(M / t.BM);
  const nTiles = Math.ceil(N / t.BN);
  let splits = 1;
  if (mode === Mode.WeightGrad) {
    // A few output tiles over a long K (B·Ho·Wo) would leave the GPU idle: split K.
    const want = Math.ceil(DW_TARGET_WORKGROUPS / (mTiles * nTiles * g.groups));
    splits = Math.max(1, Math.min(want, Math.floor(K / DW_MIN_CHUNK)));
  }
  const chunk = Math.max(1, Math.ceil(K / splits / t.BK)) * t.BK;
  return { M, N, K, tile: t, matrix, tunable: !tile, mTiles, nTiles, chunk, splits: Math.max(1, Math.ceil(K / chunk)) };
}

/** Where the weight gradient's chunks go in `out`: values per chunk, and where db starts in one (with db's column). */
interface DwLayout {
  stride: number;
  dbOffset: number;
}

/**
 * The register tiles autotuning chooses among: the default first. Every one adds each output's
 * products in k order and has BK = 16, so that the weight gradient's K chunks (a multiple of BK,
 * planned with the default tile) are the same whichever runs: the same sums in the same order. The
 * matrix tiles' variants (matrixTileVariants()) keep that too: their BK divide the default's.
 */
const TILE_VARIANTS = choicesByDefault(CONV_TILES);
/** The tiles `pl` may run on, the default first; one list object per content (autotune keys). */
function tileVariants(pl: Plan): readonly TileConfig[] {
  if (pl.matrix) return matrixTileChoices(pl.matrix);
  return TILE_VARIANTS.get(pl.tile) ?? [pl.tile];
}

/** `pl` on tile t instead. */
function retiled(pl: Plan, t: TileConfig): Plan {
  if (pl.chunk % t.BK !== 0) throw new Error(`conv2d: tile ${JSON.stringify(t)} does not divide the K chunk ${pl.chunk}`);
  return { ...pl, tile: t, tunable: false, mTiles: Math.ceil(pl.M / t.BM), nTiles: Math.ceil(pl.N / t.BN) };
}

/**
 * One launch of conv2d.wgsl: C = A·B (+ addend: forward and dx) for every group (and K chunk),
 * written into `out`; every array read and written in its tensor's dtype.
 */
function gemm(mode: Mode, g: Geometry, planned: Plan, a: Tensor, b: Tensor, bias: Tensor | null, out: Tensor, addend: Tensor | null = null, dw?: DwLayout): void {
  let pl = planned;
  const storage: GemmStorage = { A: a.dtype, B: b.dtype, bias: 'f32', C: out.dtype, addend: addend?.dtype ?? 'f32' };
  const variants = pl.tunable ? tileVariants(pl) : [];
  if (variants.length > 1) {
    const tiles = pl.matrix ? ` ${matrixName(pl.matrix)}` : '';
    const shape = `${['fwd', 'dx', 'dw'][mode]} B${g.B} Cin${g.Cin} ${g.H}x${g.W} Cout${g.Cout} k${g.kh}x${g.kw} s${g.sh}x${g.sw} p${g.ph}x${g.pw} g${g.groups}${bias ? ' bias' : ''}${dw ? ' db' : ''}${addend ? ' addend' : ''} ${operandPrecision()}${tiles}${storageName(storage)}`;
    const like = (t: Tensor) => scratch(t.shape, t.dtype);
    pl = retiled(pl, tuned('conv2d.wgsl', shape, variants, (t) =>
      gemm(mode, g, retiled(planned, t), like(a), like(b), bias && like(bias), like(out), addend && like(addend), dw)));
  }
  const nW = (g.Cin / g.groups) * g.kh * g.kw;
  launch({
    file: 'conv2d.wgsl',
    ...gemmKernel('conv2d.wgsl', pl.tile, pl.matrix, storage),
    constants: { KH: g.kh, KW: g.kw },
    args: [a, b, bias ?? unusedOperand(), out, addend ?? unusedOperand()],
    params: [g.Cin, g.H, g.W, g.Cout, g.Ho, g.Wo, g.groups, g.Cin / g.groups, g.Cout / g.groups, pl.M, pl.N, pl.K, pl.chunk, pl.mTiles, pl.nTiles,
      g.sh, g.sw, g.ph, g.pw, bias ? 1 : 0, mode, addend ? 1 : 0, nW, dw?.stride ?? g.Cout * nW, dw?.dbOffset ?? 0],
    workgroups: [...grid1d(pl.nTiles, 1), pl.mTiles * g.groups * pl.splits],
    context: `${g.context} (${['forward', 'input gradient', 'weight gradient'][mode]}${pl.matrix ? `, ${matrixName(pl.matrix)}` : ''})`,
  });
}

function forward(x: Tensor, weight: Tensor, bias: Tensor | null, g: Geometry, residual: Tensor | null, tile?: TileConfig): Tensor {
  const y = Tensor.empty([g.B, g.Cout, g.Ho, g.Wo], activationDtype(), 'conv2d');
  if (y.size > 0) gemm(Mode.Forward, g, plan(Mode.Forward, g, tile), weight, x, bias, y, residual);
  return y;
}

/** dx in x's dtype, plus x's gradient from its other uses when `pending` hands one over. */
function inputGrad(dy: Tensor, weight: Tensor, g: Geometry, dtype: DType, pending: PendingGrads, tile?: TileConfig): Tensor {
  const dx = Tensor.empty([g.B, g.Cin, g.H, g.W], dtype, 'conv2d dx');
  if (dx.size > 0) gemm(Mode.InputGrad, g, plan(Mode.InputGrad, g, tile), weight, dy, null, dx, pending.take(0));
  return dx;
}

/**
 * dW sums over B·Ho·Wo: K is split into chunks whose partial sums are then added in a fixed order
 * (into the gradient homes with the walk's other such sums, when the parameters have homes).
 * With `biasGrad`, db = Σ dy comes out of the same GEMM (a column of ones in B) and the same sum:
 * each chunk's dw, padded to an aligned offset, then its db.
 */
function weightGrad(dy: Tensor, x: Tensor, g: Geometry, pending: PendingGrads, biasGrad: boolean, tile?: TileConfig): [Tensor, Tensor | null] {
  const wshape = [g.Cout, g.Cin / g.groups, g.kh, g.kw];
  const wsize = wshape.reduce((a, b) => a * b, 1);
  if (biasGrad && wsize > 0 && dy.size > 0) {
    const pl = plan(Mode.WeightGrad, g, tile, true);
    const align = device().limits.minStorageBufferOffsetAlignment / 4;
    const dbOffset = Math.ceil(wsize / align) * align;
    const stride = dbOffset + g.Cout;
    const partial = Tensor.empty([pl.splits, stride], 'f32', 'conv2d dw and db');
    gemm(Mode.WeightGrad, g, pl, dy, x, null, partial, null, { stride, dbOffset });
    let both = pl.splits === 1 ? partial : null;
    // dw (input 1) at offset 0 of each chunk, db (input 2) at dbOffset.
    const part = (offset: number, shape: number[], i: number): Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (!both) {
        const src = partial.viewAt(offset * 4, [(pl.splits - 1) * stride + n]);
        const home = sumIntoHome(src, pl.splits, stride, n, pending, i);
        if (home) return home;
        src.release();
      }
      both ??= sum(partial, 0);
      return both.viewAt(offset * 4, shape);
    };
    const grads: [Tensor, Tensor] = [part(0, wshape, 1), part(dbOffset, [g.Cout], 2)];
    if (both && both !== partial) both.release();
    partial.release();
    return grads;
  }
  const pl = plan(Mode.WeightGrad, g, tile);
  const db = biasGrad ? sum(dy, [0, 2, 3]) : null;
  const partial = (pl.splits === 1 && pending.home(1)) || Tensor.empty(pl.splits === 1 ? wshape : [pl.splits, ...wshape], 'f32', 'conv2d dw');
  if (partial.size === 0) return [partial, db];
  gemm(Mode.WeightGrad, g, pl, dy, x, null, partial);
  if (pl.splits === 1) return [partial, db];
  return [sumChunks(partial, pl.splits, pending, 1), db];
}

// ---------------------------------------------------------------- 1×1 convs on CPU adapters

// Lavapipe measurements (bench/RESULTS.md): the implicit GEMM's staging divides indices per element
// and synchronises through workgroup memory, which a CPU adapter pays dearly for; pointwise.wgsl
// has neither. Even on planes of 4 or 16 positions, where most of its 4-wide lanes idle, it took
// a tenth of the GEMM's time in the gkgnet-tiny step (30 convs: 25 ms against 234 ms), and its
// weight gradient brings the bias gradient and rarely needs a split-K sum.

/**
 * The register blocks autotune.ts picks from, the default first: rows of C per invocation (forward /
 * dx; lanes from the plane, or 8: on a plane of 80 positions, 32 lanes leave 12 idle, 3 × 8 only 4),
 * and dw's TM×TN block per workgroup of PW_WG_DW lanes. Every variant
 * adds the same products in the same order (the lanes' share of positions and the image chunks do
 * not depend on the block), so the choice changes the speed only, never a bit of the result.
 * Lavapipe (bench/RESULTS.md): 8 rows were fastest on most of gkgnet-tiny's shapes, 4 on some.
 */
export const POINTWISE_BLOCKS: { readonly gemm: readonly PointwiseBlock[]; readonly dw: readonly PointwiseBlock[] } = {
  gemm: [{ TM: 8, TN: 1 }, { TM: 4, TN: 1 }, { TM: 16, TN: 1 }, { TM: 8, TN: 1, WG: 8 }],
  dw: [{ TM: 4, TN: 4 }, { TM: 2, TN: 4 }, { TM: 8, TN: 2 }],
};
/** dw: lanes per workgroup. On a CPU adapter more add no parallelism (a workgroup is one thread), only a longer final sum. */
const PW_WG_DW = 16;
/** dw: split the images until about this many workgroups run (one CPU thread each). */
const PW_DW_TARGET_WORKGROUPS = 8;

function isPointwise(g: Geometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

type Impl = NonNullable<Conv2dOptions['impl']>;

function pickImpl(g: Geometry, o: Conv2dOptions): Impl {
  if ((o.impl === 'pointwise' || o.impl === 'subgroup') && !isPointwise(g)) throw new Error(`${g.context}: impl '${o.impl}' needs a 1×1 kernel, stride 1 and no padding`);
  if (o.impl === 'subgroup' && !fixedSubgroupSize()) throw new Error(`${g.context}: impl 'subgroup' needs an adapter with the subgroups feature and a fixed subgroup size of 4 to 16 (${device().describe()})`);
  if (g.B * g.Cin * g.Cout * g.H * g.W === 0) return 'gemm';
  if (o.impl) return o.impl;
  if (o.tile) return 'gemm';
  if (device().kernelProfile !== 'cpu') return 'gemm';
  if (!isPointwise(g)) return 'direct';
  return o.pointwise || !fixedSubgroupSize() ? 'pointwise' : 'subgroup';
}

/** Lanes per workgroup: a power of two from 8 to 64 covering `n` lanes' worth of work. */
function lanes(n: number): number {
  return Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, n)))));
}

/** forward (a = weight, b = x) or dx (a = weight read transposed, b = dy; + addend when given); the block tuned unless forced. */
function pointwiseGemm(dx: boolean, g: Geometry, a: Tensor, b: Tensor, bias: Tensor | null, out: Tensor, addend: Tensor | null, forced?: PointwiseBlock): void {
  const S = g.H * g.W;
  const [M, K] = dx ? [g.Cin / g.groups, g.Cout / g.groups] : [g.Cout / g.groups, g.Cin / g.groups];
  const blk = forced ?? tuned('pointwise.wgsl:gemm', `${dx ? 'dx' : 'fwd'} B${g.B} M${M} K${K} S${S} g${g.groups}${bias ? ' bias' : ''} ${operandPrecision()}`, POINTWISE_BLOCKS.gemm, (v) =>
    pointwiseGemm(dx, g, scratch(a.shape), scratch(b.shape), bias && scratch(bias.shape), scratch(out.shape), null, v),
  );
  const WG = blk.WG ?? lanes(Math.ceil(S / 4));
  launch({
    file: 'pointwise.wgsl',
    entry: 'gemm',
    code: operandSource(kernelSource('pointwise.wgsl', { TM: blk.TM, TN: 1, WG })),
    constants: { TRANS_A: dx ? 1 : 0, ADDEND: addend ? 1 : 0 },
    args: [a, b, bias ?? unusedOperand(), out, addend ?? unusedOperand()],
    params: [M, K, S, g.groups, M * K, (dx ? g.Cout : g.Cin) * S, (dx ? g.Cin : g.Cout) * S, bias ? 1 : 0, 0, 0, 0, 0],
    workgroups: [Math.ceil(S / 4 / WG), Math.ceil(M / blk.TM), g.B * g.groups],
    context: `${g.context} (${dx ? 'input gradient' : 'forward'}, pointwise)`,
  });
}

/**
 * dw = Σ over images and positions of dy·xᵀ per group, and with `biasGrad` db = Σ dy per output
 * channel from the same reads; image chunks summed in a fixed order.
 */
function pointwiseWeightGrad(g: Geometry, dy: Tensor, x: Tensor, biasGrad: boolean, pending: PendingGrads, forced?: PointwiseBlock): [Tensor, Tensor | null] {
  const noDb = unusedOutput();
  const S = g.H * g.W;
  const [M, N] = [g.Cout / g.groups, g.Cin / g.groups];
  const blk = forced ?? tuned('pointwise.wgsl:weight_grad', `B${g.B} M${M} N${N} S${S} g${g.groups}${biasGrad ? ' bias' : ''} ${operandPrecision()}`, POINTWISE_BLOCKS.dw, (v) =>
    pointwiseWeightGrad(g, scratch(dy.shape), scratch(x.shape), biasGrad, NO_PENDING, v),
  );
  const { TM, TN } = blk;
  const WG = blk.WG ?? PW_WG_DW;
  if (WG < TM * TN) throw new Error(`${g.context}: dw block ${TM}×${TN} needs at least as many lanes`);
  // Chunks from the default block, so that every block sums the images in the same chunks.
  const tiles = Math.ceil(N / POINTWISE_BLOCKS.dw[0].TN) * Math.ceil(M / POINTWISE_BLOCKS.dw[0].TM) * g.groups;
  const { perChunk, splits } = imageChunks(g.B, tiles, PW_DW_TARGET_WORKGROUPS);
  // Invocations split a chunk's (image, 4 positions) steps and TM·TN of them then add the partials.
  return chunkedWeightGrad([g.Cout, N, 1, 1], biasGrad, splits, pending, (partial, dbPartial) =>
    launch({
      file: 'pointwise.wgsl',
      entry: 'weight_grad',
      code: operandSource(kernelSource('pointwise.wgsl', { TM, TN, WG })),
      constants: { BIAS_GRAD: +biasGrad },
      args: [dy, x, partial, dbPartial ?? noDb],
      params: [M, 0, S, g.groups, 0, g.Cin * S, 0, 0, perChunk, g.B, N, 0],
      workgroups: [Math.ceil(N / TN), Math.ceil(M / TM), splits * g.groups],
      context: `${g.context} (weight${biasGrad ? ' and bias' : ''} gradient, pointwise)`,
    }),
  );
}

// ---------------------------------------------------------------- k×k convs on CPU adapters

/**
 * direct.wgsl's TM for forward / dx: the smallest of 4, 8, 16 that covers the channels a workgroup
 * computes. Lavapipe measurements (bench/RESULTS.md): larger TM amortises the per-lane input loads
 * over more FMAs (the weight reads are uniform), up to 16; beyond the channel count it only idles.
 */
function directTM(channels: number): number {
  return channels <= 4 ? 4 : channels <= 8 ? 8 : 16;
}
/** dw: output channels per workgroup (TM), and the split of the images into about this many workgroups. */
const DIRECT_TM_DW = 4;
const DIRECT_DW_TARGET_WORKGROUPS = 8;

// How forward and dx read weights (direct.wgsl): a load per row and tap, or, with fixed-size
// subgroups of TM lanes, each lane's own row's taps handed to the others by shuffles.
const DIRECT_WEIGHTS = {
  load:
    'fn own_lane() -> u32 { return 0u; }\n' +
    'fn own_taps(first: u32) -> array<f32, KW> { return array<f32, KW>(); }\n' +
    'fn tap_weight(own: f32, at: u32, i: u32) -> f32 { return opnd(Wt[at]); }\n',
  shuffle:
    'fn own_lane() -> u32 { return subgroupExclusiveAdd(1u); }\n' +
    'fn own_taps(first: u32) -> array<f32, KW> {\n  var w: array<f32, KW>;\n  for (var kx = 0u; kx < KW; kx++) { w[kx] = opnd(Wt[first + kx]); }\n  return w;\n}\n' +
    'fn tap_weight(own: f32, at: u32, i: u32) -> f32 { return subgroupShuffle(own, i); }\n',
} as const;

/** direct.wgsl for this geometry and block; `shuffle` needs TM = the fixed subgroup size and WG a multiple of it. */
function directSource(g: Geometry, WG: number, TM: number, shuffle = false): string {
  return composedSource(`direct ${TM} ${WG} ${g.kh} ${g.kw} ${g.sh} ${g.sw} ${shuffle} ${operandPrecision()}`, () => {
    const template = { TM, WG, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw };
    // With shuffles (TM = WG = the subgroup size for the weight gradient), the shuffled weight gradient joins the file.
    const code = shuffle
      ? `${DIRECT_WEIGHTS.shuffle}${kernelSource('direct.wgsl', template)}\n${kernelSource('direct-dw-subgroup.wgsl', { SG: TM })}`
      : DIRECT_WEIGHTS.load + kernelSource('direct.wgsl', template);
    return (shuffle ? 'enable subgroups;\n' : '') + operandSource(code);
  });
}

/** Forward / dx block: TM rows and WG lanes, shuffled weights where the adapter has fixed-size subgroups. */
function directBlock(channels: number, quadCount: number): { TM: number; WG: number; shuffle: boolean } {
  const sg = fixedSubgroupSize();
  if (sg) return { TM: sg, WG: Math.max(sg, lanes(quadCount)), shuffle: true };
  return { TM: directTM(channels), WG: lanes(quadCount), shuffle: false };
}

function directParams(g: Geometry, hasBias: boolean, nImages = 0): number[] {
  return [g.Cin, g.H, g.W, g.Cout, g.Ho, g.Wo, g.groups, g.Cin / g.groups, g.Cout / g.groups, g.ph, g.pw, hasBias ? 1 : 0, nImages, g.B, 0, 0];
}

/** Lanes of direct.wgsl run over (image, row, 4 columns) quads of all images. */
function quads(B: number, rows: number, cols: number): number {
  return B * rows * Math.ceil(cols / 4);
}

function directForward(g: Geometry, x: Tensor, weight: Tensor, bias: Tensor | null, y: Tensor, residual: Tensor | null): void {
  const n = quads(g.B, g.Ho, g.Wo);
  const { TM, WG, shuffle } = directBlock(g.Cout / g.groups, n);
  launch({
    file: 'direct.wgsl',
    entry: 'forward',
    code: directSource(g, WG, TM, shuffle),
    constants: { ADDEND: residual ? 1 : 0 },
    args: [weight, x, bias ?? unusedOperand(), y, residual ?? unusedOperand()],
    params: directParams(g, bias !== null),
    workgroups: [...grid1d(n, WG), Math.ceil(g.Cout / g.groups / TM) * g.groups],
    context: `${g.context} (forward, direct)`,
  });
}

/**
 * dx per stride phase (see direct.wgsl): z runs over the phases, x over the quads of phase (0, 0),
 * the largest; + addend when given.
 */
function directInputGrad(g: Geometry, dy: Tensor, weight: Tensor, dx: Tensor, addend: Tensor | null): void {
  const n = quads(g.B, Math.ceil(g.H / g.sh), Math.ceil(g.W / g.sw));
  const { TM, WG, shuffle } = directBlock(g.Cin / g.groups, n);
  launch({
    file: 'direct.wgsl',
    entry: 'input_grad',
    code: directSource(g, WG, TM, shuffle),
    constants: { ADDEND: addend ? 1 : 0 },
    args: [weight, dy, dx, addend ?? unusedOperand()],
    params: directParams(g, false),
    workgroups: [...grid1d(n, WG), Math.ceil(g.Cin / g.groups / TM) * g.groups * g.sh * g.sw],
    context: `${g.context} (input gradient, direct)`,
  });
}

/** dw = Σ over images and positions; image chunks summed in a fixed order. */
function directWeightGrad(g: Geometry, dy: Tensor, x: Tensor, pending: PendingGrads): Tensor {
  const sg = fixedSubgroupSize();
  if (sg) return directWeightGradShuffled(g, sg, dy, x, pending);
  const cinG = g.Cin / g.groups;
  const mBlocks = Math.ceil(g.Cout / g.groups / DIRECT_TM_DW);
  const { perChunk, splits } = imageChunks(g.B, cinG * mBlocks * g.groups, DIRECT_DW_TARGET_WORKGROUPS);
  // Invocations split the chunk's quads; past 16 they only lengthen the final sum (one CPU thread).
  const WG = Math.min(16, lanes(quads(perChunk, g.Ho, g.Wo)));
  return chunkedWeightGrad([g.Cout, cinG, g.kh, g.kw], false, splits, pending, (partial) =>
    launch({
      file: 'direct.wgsl',
      entry: 'weight_grad',
      code: directSource(g, WG, DIRECT_TM_DW),
      args: [dy, x, partial],
      params: directParams(g, false, perChunk),
      workgroups: [cinG, mBlocks, splits * g.groups],
      context: `${g.context} (weight gradient, direct)`,
    }),
  )[0];
}

/** dw by direct-dw-subgroup.wgsl: SG×SG channel blocks per kernel row, image chunks summed in a fixed order. */
function directWeightGradShuffled(g: Geometry, sg: number, dy: Tensor, x: Tensor, pending: PendingGrads): Tensor {
  const cinG = g.Cin / g.groups;
  const [ciBlocks, coBlocks] = [Math.ceil(cinG / sg), Math.ceil(g.Cout / g.groups / sg)];
  const { perChunk, splits } = imageChunks(g.B, ciBlocks * coBlocks * g.kh * g.groups, DIRECT_DW_TARGET_WORKGROUPS);
  return chunkedWeightGrad([g.Cout, cinG, g.kh, g.kw], false, splits, pending, (partial) =>
    launch({
      file: 'direct.wgsl',
      entry: 'weight_grad_shuffled',
      code: directSource(g, sg, sg, true),
      args: [dy, x, partial],
      params: directParams(g, false, perChunk),
      workgroups: [ciBlocks, coBlocks, splits * g.groups * g.kh],
      context: `${g.context} (weight gradient, direct, shuffled)`,
    }),
  )[0];
}

/**
 * y = conv2d(x, weight) + bias, as torch.nn.functional.conv2d: x [B, Cin, H, W], weight
 * [Cout, Cin/groups, kh, kw], bias [Cout] → [B, Cout, Ho, Wo] with Ho = ⌊(H + 2·pad − kh)/stride⌋ + 1.
 * Backward: dx (transposed convolution), dw (split-K GEMM over B·Ho·Wo, or image chunks on the CPU
 * kernels, summed in a fixed order), db (sum over B, Ho, Wo). Bitwise deterministic. y is in
 * activationDtype(), dx in x's dtype (f32 or f16), dw and db f32.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  const b = bias ?? null;
  const g = geometry(x, weight, b, o);
  const residual = o.residual ?? null;
  if (residual) checkResidual(g, residual);
  const impl = pickImpl(g, o);
  if (impl !== 'gemm') {
    // The CPU kernels read and write f32: f16 activations and the output go through casts.
    return cast(cpuConv(impl, g, asF32(x), weight, b, residual && asF32(residual), o), activationDtype());
  }
  const y = forward(x, weight, b, g, residual, o.tile);
  return record(y, 'conv2d', inputsOf(x, weight, b, residual), (dy, pending) => {
    const dx = x.requiresGrad ? inputGrad(dy, weight, g, x.dtype, pending, o.tile) : null;
    const biasGrad = !!b?.requiresGrad;
    if (!weight.requiresGrad) return withResidual([dx, null, biasGrad ? sum(dy, [0, 2, 3]) : null], dy, b, residual);
    return withResidual([dx, ...weightGrad(dy, x, g, pending, biasGrad, o.tile)], dy, b, residual);
  });
}

/** What conv2d records as its inputs: x, weight, then the bias and the residual where given. */
function inputsOf(x: Tensor, weight: Tensor, b: Tensor | null, residual: Tensor | null): Tensor[] {
  return [x, weight, ...(b ? [b] : []), ...(residual ? [residual] : [])];
}

/** The rules give [dx, dw, db]; the residual's gradient is the output's (the walk owns each use as a view). */
function withResidual(grads: (Tensor | null)[], dy: Tensor, b: Tensor | null, residual: Tensor | null): (Tensor | null)[] {
  return residual ? [grads[0], grads[1], ...(b ? [grads[2]] : []), dy] : grads;
}

/** conv2d on pointwise.wgsl, pointwise-subgroup.wgsl or direct.wgsl (empty tensors take the gemm), all in f32. */
function cpuConv(impl: Exclude<Impl, 'gemm'>, g: Geometry, x: Tensor, weight: Tensor, b: Tensor | null, residual: Tensor | null, o: Conv2dOptions): Tensor {
  const y = Tensor.empty([g.B, g.Cout, g.Ho, g.Wo], 'f32', 'conv2d');
  const shape = { ...g, S: g.H * g.W };
  const sg = impl === 'subgroup' ? fixedSubgroupSize()! : 0;
  if (impl === 'pointwise') pointwiseGemm(false, g, weight, x, b, y, residual, o.pointwise?.gemm);
  else if (impl === 'subgroup') shuffleGemm(false, shape, sg, weight, x, b, y, residual);
  else directForward(g, x, weight, b, y, residual);
  return record(y, 'conv2d', inputsOf(x, weight, b, residual), (dy, pending) => withResidual(convBackward(dy, pending), dy, b, residual));
  function convBackward(dy: Tensor, pending: PendingGrads): (Tensor | null)[] {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty([g.B, g.Cin, g.H, g.W], 'f32', 'conv2d dx');
      // x's gradient from its other uses (a residual's, typically) is added in the same pass.
      if (impl === 'pointwise') pointwiseGemm(true, g, weight, dy, null, dx, pending.take(0), o.pointwise?.gemm);
      else if (impl === 'subgroup') shuffleGemm(true, shape, sg, weight, dy, null, dx, pending.take(0));
      else directInputGrad(g, dy, weight, dx, pending.take(0));
    }
    const biasGrad = !!b?.requiresGrad;
    if (!weight.requiresGrad) return [dx, null, biasGrad ? sum(dy, [0, 2, 3]) : null];
    if (impl === 'pointwise') return [dx, ...pointwiseWeightGrad(g, dy, x, biasGrad, pending, o.pointwise?.dw)];
    if (impl === 'subgroup') return [dx, ...shuffleWeightGrad(shape, sg, dy, x, biasGrad, pending)];
    return [dx, directWeightGrad(g, dy, x, pending), biasGrad ? sum(dy, [0, 2, 3]) : null];
  }
}

/** The residual added in the store: shaped as the output, f32 or f16. */
function checkResidual(g: Geometry, residual: Tensor): void {
  residual.assertAlive(g.context);
  const want = [g.B, g.Cout, g.Ho, g.Wo];
  const float = isFloat(residual.dtype);
  if (!float || residual.shape.join() !== want.join()) {
    throw new Error(`${g.context}: residual ${shapeStr(residual.shape)} ${residual.dtype} must be ${float ? residual.dtype : 'f32 or f16'} ${shapeStr(want)} (the output's shape)`);
  }
}
