// Per-element multi-label loss terms on logits (kernel: loss.wgsl), each with its backward rule.
// The reductions (sum, /B, −sum, mean) are left to the ordinary ops so that autograd composes;
// models/losses.ts builds the named losses from these.
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';

export interface LossTermOptions {
  /** 'bce': BCE with logits; 'mmcls-asl': mmcls asymmetric loss; 'alibaba-asl': Alibaba-MIIL ASL (before −sum). */
  kind: 'bce' | 'mmcls-asl' | 'alibaba-asl';
  gammaPos?: number;
  gammaNeg?: number;
  /** Probability margin for negatives; ≤ 0 disables it. */
  clip?: number;
  eps?: number;
  /** BCE only: label smoothing ε (targets > 0 become 1 − ε, others ε); undefined keeps the targets. */
  smooth?: number;
  /** alibaba-asl only: the focusing weight is a constant in backward. */
  detachFocalWeight?: boolean;
}

const KINDS = { bce: 0, 'mmcls-asl': 1, 'alibaba-asl': 2 } as const;

/**
 * Element-wise loss terms (f32) of `logits` (f32 or f16, read as is) against `target` (same shape,
 * f32); differentiable in `logits`, whose gradient comes in the logits' dtype.
 */
export function lossTerms(logits: Tensor, target: Tensor, o: LossTermOptions): Tensor {
  const op = `lossTerms(${o.kind})`;
  logits.assertAlive(op);
  target.assertAlive(op);
  if (!isFloat(logits.dtype) || target.dtype !== 'f32') {
    throw new Error(`${op}: logits must be f32 or f16 and target f32, got ${logits.describe()} and ${target.describe()}`);
  }
  if (logits.shape.join() !== target.shape.join()) {
    throw new Error(`${op}: logits ${shapeStr(logits.shape)} and target ${shapeStr(target.shape)} differ in shape`);
  }
  const constants = { KIND: KINDS[o.kind], DETACH: o.detachFocalWeight ? 1 : 0 };
  const smooth = o.smooth ?? 0;
  const params = [
    logits.size,
    f32bits(o.gammaPos ?? 0),
    f32bits(o.gammaNeg ?? 0),
    f32bits(o.clip ?? 0),
    f32bits(o.eps ?? 1e-8),
    o.smooth === undefined ? 0 : 1,
    f32bits(1 - smooth),
    f32bits(smooth),
  ];
  const context = `${op} ${shapeStr(logits.shape)}`;
  const out = Tensor.empty(logits.shape, 'f32', op);
  if (out.size > 0) {
    const storage = { x: logits.dtype };
    launch({ file: 'loss.wgsl', entry: 'forward', constants, storage, args: [logits, target, out], params, workgroups: grid1d(out.size), context });
  }
  return record(out, op, [logits], (g) => {
    const gx = Tensor.empty(logits.shape, logits.dtype, `${op} backward`);
    if (gx.size > 0) {
      const storage = { x: logits.dtype, g: g.dtype, out: gx.dtype };
      launch({ file: 'loss.wgsl', entry: 'backward', constants, storage, args: [logits, target, g, gx], params, workgroups: grid1d(gx.size), context: `${context} backward` });
    }
    return [gx];
  });
}
