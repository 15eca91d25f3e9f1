// BatchNorm2d over channel axis 1 of x [B, C, ...spatial] (kernel: batchnorm.wgsl), with an optional
// fused GELU. Train mode normalises with the batch statistics (biased variance) and updates the
// running statistics in place on the GPU; eval mode uses the running statistics.
//
// Saved for backward: x itself (the caller's tensor) and a [C, 2] tensor of (mean, 1/√(var + eps))
// that the forward pass needs anyway; with the fused GELU the pre-activation is recomputed from
// those, not stored. Like every intermediate, the saved tensor lives in the caller's current scope.
//
// Storage: x, the residual and the incoming gradient as f32 or f16 (activations under mixed
// precision), read into f32; y and dx in x's dtype; the residual's gradient is the output's (the
// tape casts it where the residual's dtype differs). Statistics, weight, bias, their gradients, the
// running statistics and the branch scale are f32.
//
// num_batches_tracked: the caller (the BatchNorm2d module) keeps it on the CPU and increments it
// for each train-mode call; it never reaches the GPU, since a fixed momentum does not depend on it.
import { Tensor, isFloat, type DType } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { device, isGradEnabled } from '../engine/context.js';
import { launch, f32bits, grid1d, shapeStr, unusedOperand } from '../engine/launch.js';

export interface BatchNormOptions {
  /** Batch statistics + running-statistics update (true) or running statistics (false). */
  training: boolean;
  /** Weight of the new batch statistic in the running average. Default 0.1. */
  momentum?: number;
  /** Default 1e-5. */
  eps?: number;
  /** 'gelu': return gelu(bn(x)) in one pass (exact erf GELU). Default 'none'. */
  activation?: 'none' | 'gelu';
  /**
   * A residual block's input, shaped as x: return residual + bn(x) (after the activation, if any)
   * in the same pass, as a following add would. Its gradient is the output's.
   */
  residual?: Tensor;
  /**
   * With `residual`: one factor per image (B values, e.g. drop path's [B, 1, 1, 1] mask) that
   * scales bn(x) before the add, as addcmul(residual, bn(x), scale) would. A constant: no gradient.
   */
  branchScale?: Tensor;
}

/**
 * Invocations per workgroup and values per invocation of the elementwise passes, per kernel profile:
 * GPUs take wide workgroups, one value each; CPU adapters (lavapipe) 64 invocations (a barrier of
 * the reduction tree is a coroutine switch per 8 lanes) of 4 values (one index division per 4).
 */
const SHAPE = { gpu: { WG: 256, PER: 1 }, cpu: { WG: 64, PER: 4 } } as const;
/**
 * Invocations of the one-workgroup-per-channel kernels. A CPU adapter runs a workgroup on one
 * thread whatever its size, so lanes past one SIMD row (8) add no speed, only barrier switches in
 * the reduction tree: 8 lanes took a third of 64's time on gkgnet-tiny's 2×2 planes (bench/RESULTS.md).
 */
const CHANNEL_WG = { gpu: 256, cpu: 8 } as const;
/**
 * Storage buffers that the fused train-mode entries bind: one workgroup per channel
 * (train_forward*, grad_fused*) 9, the chunked ones (normalize_chunk, grad_chunk) 10. A device that
 * offers fewer per shader stage (WebGPU guarantees 8) runs split passes instead, none binding more
 * than 8: the statistics (stats_partial, stats_final), then `normalize`; backward grad_partial,
 * grad_final, then grad_dx.
 */
const STORAGE = { perChannel: 9, chunked: 10 } as const;
/** Values per channel that one workgroup reduces at least, … */
const MIN_CHUNK = 2048;
/** … and at most this many chunks per channel (beyond that, chunks grow). */
const MAX_CHUNKS = 64;

/**
 * y = (x − mean) / √(var + eps) · weight + bias per channel of axis 1 (then GELU when asked), as
 * torch.nn.functional.batch_norm. x is [B, C, ...] (e.g. B×C×H×W, or B×C×S×1 label tensors);
 * weight, bias, runningMean and runningVar are [C]. Train mode also updates runningMean and
 * runningVar in place: run ← (1 − momentum)·run + momentum·stat, with the unbiased variance.
 */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  o: BatchNormOptions,
): Tensor {
  const context = `batchnorm x ${shapeStr(x.shape)}`;
  checkFloat(context, { x });
  const args = { x, weight, bias, runningMean, runningVar };
  checkF32(context, { weight, bias, runningMean, runningVar });
  if (x.rank < 2) throw new Error(`${context}: x must be [B, C, ...spatial]`);
  const [B, C] = x.shape;
  const S = x.shape.slice(2).reduce((a, b) => a * b, 1);
  checkPerChannel(context, args, x, C, 'channel');
  const { residual, branchScale } = o;
  checkResidual(context, x, residual, branchScale);
  const n = B * S;
  if (o.training && n < 2) {
    throw new Error(`${context}: training needs more than 1 value per channel (B·spatial = ${n})`);
  }
  const momentum = o.momentum ?? 0.1;
  const eps = o.eps ?? 1e-5;
  const gelu = o.activation === 'gelu';
  const chunk = Math.max(MIN_CHUNK, Math.ceil(n / MAX_CHUNKS));
  const chunks = Math.max(1, Math.ceil(n / chunk));
  const params = [C, S, n, chunks, chunk, x.size, f32bits(eps), f32bits(momentum)];
  const { WG, PER } = SHAPE[device().kernelProfile];
  // The residual's and the scale's bindings are declared by every entry that may use them: unused,
  // they bind a placeholder (never read then).
  const scaled = { RESIDUAL: +!!residual, SCALED: +!!branchScale };
  const scale = branchScale ?? unusedOperand();
  const res = residual ?? unusedOperand();
  // Every array alias of batchnorm.wgsl: out (y or dx) is always in x's dtype; gy (backward only) in
  // the incoming gradient's, f32 for the forward entries that bind none.
  const run = (entry: string, a: Tensor[], workgroups: [number, number?], constants: Record<string, number> = {}, gy: DType = 'f32') => {
    const storage = { xv: x.dtype, x4: x.dtype, out: x.dtype, out4: x.dtype, residual: res.dtype, residual4: res.dtype, gy, gy4: gy };
    launch({ file: 'batchnorm.wgsl', entry, constants: { WG, ...scaled, ...constants }, storage, args: a, params, workgroups, context: `${context} (${entry})` });
  };
  const elementwise = (entry: string, a: Tensor[]) => run(entry, a, grid1d(Math.ceil(x.size / PER), WG), { PER, GELU: +gelu });

  // One workgroup per channel does a channel's reduction and elementwise pass in one dispatch; the
  // chunked passes only pay off on a GPU when a channel has more values than one workgroup takes.
  const storageLimit = device().limits.maxStorageBuffersPerShaderStage;
  const split = storageLimit < STORAGE.chunked;
  const perChannel = storageLimit >= STORAGE.perChannel && (device().kernelProfile === 'cpu' || chunks === 1);
  // CPU adapters walk planes of a multiple of 4 values as vec4s (the *4 entries; args in binding order).
  const vec4 = device().kernelProfile === 'cpu' && S % 4 === 0;
  const y = Tensor.empty(x.shape, x.dtype, 'batchnorm');
  const stats = Tensor.empty([C, 2], 'f32', 'batchnorm stats');
  if (C === 0) return y;
  if (o.training && perChannel) {
    const constants = { GELU: +gelu, WG: CHANNEL_WG[device().kernelProfile] };
    if (vec4) run('train_forward4', [weight, bias, scale, runningMean, runningVar, stats, x, y, res], [C], constants);
    else run('train_forward', [x, weight, bias, scale, runningMean, runningVar, stats, y, res], [C], constants);
  } else {
    if (o.training) {
      // Chunk summaries, then each chunk merges its channel's and normalises itself.
      const part = Tensor.empty([C * chunks, 4], 'f32', 'batchnorm partial');
      run('stats_partial', [x, part], [chunks, C]);
      if (split) {
        run('stats_final', [part, runningMean, runningVar, stats], [C]);
        elementwise('normalize', [x, weight, bias, stats, scale, y, res]);
      } else {
        run('normalize_chunk', [x, weight, bias, part, scale, runningMean, runningVar, stats, y, res], [chunks, C], { GELU: +gelu });
      }
      part.release();
    } else {
      run('eval_stats', [runningMean, runningVar, stats], [Math.ceil(C / 64)]);
      if (x.size > 0) elementwise('normalize', [x, weight, bias, stats, scale, y, res]);
    }
  }

  const inputs = residual ? [x, weight, bias, residual] : [x, weight, bias];
  return record(y, 'batchnorm', inputs, (g, pending) => {
    const dweight = pending.home(1) ?? Tensor.empty([C], 'f32', 'batchnorm dweight');
    const dbias = pending.home(2) ?? Tensor.empty([C], 'f32', 'batchnorm dbias');
    if (perChannel && x.requiresGrad) {
      const dx = Tensor.empty(x.shape, x.dtype, 'batchnorm dx');
      const constants = { GELU: +gelu, TRAIN: +o.training, WG: CHANNEL_WG[device().kernelProfile], PARK: +(dx.dtype === 'f32') };
      if (vec4) run('grad_fused4', [weight, bias, stats, scale, dweight, dbias, x, g, dx], [C], constants, g.dtype);
      else run('grad_fused', [x, g, weight, bias, stats, scale, dx, dweight, dbias], [C], constants, g.dtype);
      return residual ? [dx, dweight, dbias, g] : [dx, dweight, dbias];
    }
    // Chunk sums, then each chunk adds its channel's and writes its dx (grad_final alone without dx,
    // or before grad_dx where grad_chunk binds too many buffers).
    const part = Tensor.empty([C * chunks, 4], 'f32', 'batchnorm grad partial');
    run('grad_partial', [x, g, weight, bias, stats, scale, part], [chunks, C], { GELU: +gelu }, g.dtype);
    const dx = x.requiresGrad ? Tensor.empty(x.shape, x.dtype, 'batchnorm dx') : null;
    const dxConstants = { GELU: +gelu, TRAIN: +o.training };
    if (dx && !split) {
      run('grad_chunk', [x, g, weight, bias, stats, part, scale, dx, dweight, dbias], [chunks, C], dxConstants, g.dtype);
    } else {
      run('grad_final', [part, dweight, dbias], [C]);
      if (dx) run('grad_dx', [x, g, weight, bias, stats, part, scale, dx], [chunks, C], dxConstants, g.dtype);
    }
    part.release();
    return residual ? [dx, dweight, dbias, g] : [dx, dweight, dbias];
  });
}

/**
 * The weight and bias of one convolution that computes batchNorm2d(conv2d(x, convWeight, convBias))
 * with the running statistics (eval mode), as torch.nn.utils.fuse_conv_bn_weights: one pass over the
 * weight instead of one over every activation. Inference only: nothing is recorded for backward, so
 * it refuses to run while gradients are being recorded. The results match the unfolded pair up to
 * rounding (the products are associated differently).
 */
export function foldBatchNorm(
  convWeight: Tensor,
  convBias: Tensor | null,
  bn: { weight: Tensor; bias: Tensor; runningMean: Tensor; runningVar: Tensor; eps: number },
): [Tensor, Tensor] {
  const Cout = convWeight.shape[0];
  const context = `foldBatchNorm conv weight ${shapeStr(convWeight.shape)}`;
  if (isGradEnabled()) throw new Error(`${context}: folding is for inference; run it under noGrad()`);
  const args = { convWeight, ...(convBias ? { convBias } : {}), weight: bn.weight, bias: bn.bias, runningMean: bn.runningMean, runningVar: bn.runningVar };
  checkF32(context, args);
  checkPerChannel(context, args, convWeight, Cout, 'output channel');
  const fanIn = convWeight.size / Math.max(1, Cout);
  const weight = Tensor.empty(convWeight.shape, 'f32', 'folded conv weight');
  const bias = Tensor.empty([Cout], 'f32', 'folded conv bias');
  if (convWeight.size > 0) {
    launch({
      file: 'fold-batchnorm.wgsl',
      args: [convWeight, convBias ?? bn.runningMean, bn.weight, bn.bias, bn.runningMean, bn.runningVar, weight, bias],
      params: [Cout, fanIn, f32bits(bn.eps), convBias ? 1 : 0],
      workgroups: grid1d(convWeight.size, 64),
      context,
    });
  }
  return [weight, bias];
}

/** The residual shaped as x; the branch scale one value per image, with a residual, and constant. */
function checkResidual(context: string, x: Tensor, residual?: Tensor, branchScale?: Tensor): void {
  if (residual) {
    checkFloat(context, { residual });
    if (residual.shape.join() !== x.shape.join()) throw new Error(`${context}: residual ${shapeStr(residual.shape)} must have x's shape`);
  }
  if (!branchScale) return;
  checkF32(context, { branchScale });
  if (!residual) throw new Error(`${context}: branchScale scales the branch added to a residual; pass residual too`);
  if (branchScale.size !== x.shape[0]) throw new Error(`${context}: branchScale ${shapeStr(branchScale.shape)} must hold one value per image (${x.shape[0]})`);
  if (branchScale.requiresGrad) throw new Error(`${context}: branchScale ${shapeStr(branchScale.shape)} is a constant here; it must not require grad`);
}

/** Every operand alive and f32 or f16 (an activation). */
function checkFloat(context: string, args: Record<string, Tensor>): void {
  for (const [name, t] of Object.entries(args)) {
    t.assertAlive(context);
    if (!isFloat(t.dtype)) throw new Error(`${context}: ${name} must be f32 or f16, got ${t.describe()}`);
  }
}

/** Every operand alive and f32. */
function checkF32(context: string, args: Record<string, Tensor>): void {
  for (const [name, t] of Object.entries(args)) {
    t.assertAlive(context);
    if (t.dtype !== 'f32') throw new Error(`${context}: ${name} must be f32, got ${t.describe()}`);
  }
}

/** Every operand but `main` a [C] vector: one value per `what`. */
function checkPerChannel(context: string, args: Record<string, Tensor>, main: Tensor, C: number, what: string): void {
  for (const [name, t] of Object.entries(args)) {
    if (t !== main && (t.rank !== 1 || t.shape[0] !== C)) {
      throw new Error(`${context}: ${name} ${shapeStr(t.shape)} must be [${C}] (one per ${what})`);
    }
  }
}
