// Multi-label losses on logits [B, S] (spec models.md §6), float32 as PyTorch computes them. The
// per-element terms and their gradients come from one fused kernel (kernels/loss.ts) that follows
// PyTorch's op chain, so saturation behaves as in float32 PyTorch; reductions are ordinary ops.
import type { Tensor } from '../engine/tensor.js';
import { lossTerms } from '../kernels/loss.js';
import { sum, mean } from '../kernels/reduce.js';
import { add, mul, neg } from '../kernels/elementwise.js';

function batchSize(op: string, logits: Tensor): number {
  if (logits.rank !== 2) throw new Error(`${op}: logits must be [B, S], got ${logits.describe()}`);
  return logits.shape[0];
}

/** Σ terms / B, as mmcls's weight_reduce_loss with avg_factor = B. */
function sumOverBatch(terms: Tensor, b: number): Tensor {
  return mul(sum(terms), 1 / b);
}

export interface MmclsAslOptions {
  gammaPos?: number;
  /** 2 in GKGNet's config (the mmcls module's own default is 4). */
  gammaNeg?: number;
  clip?: number;
  eps?: number;
}

/** mmcls AsymmetricLoss (§6.1): Σ −log(max(pt, eps))·(1 − pt)^γ / B, focusing weight differentiated. */
export function asymmetricLossMmcls(logits: Tensor, target: Tensor, { gammaPos = 0, gammaNeg = 2, clip = 0.05, eps = 1e-8 }: MmclsAslOptions = {}): Tensor {
  const b = batchSize('asymmetricLossMmcls', logits);
  return sumOverBatch(lossTerms(logits, target, { kind: 'mmcls-asl', gammaPos, gammaNeg, clip, eps }), b);
}

/** mmcls LabelSmoothLoss(ε, mode='multi_label') (§6.2): BCE with logits against 1 − ε / ε, Σ / B. */
export function labelSmoothBce(logits: Tensor, target: Tensor, eps = 0.1): Tensor {
  const b = batchSize('labelSmoothBce', logits);
  return sumOverBatch(lossTerms(logits, target, { kind: 'bce', smooth: eps }), b);
}

export interface GkgnetLoss {
  /** bce + 10·asymmetric: what GKGNet trains on. */
  loss: Tensor;
  bce: Tensor;
  asymmetric: Tensor;
  asymmetricX10: Tensor;
}

/** GKGNet's LabelQueryHead loss (§6.3): LS-BCE(0.1) + 10 · ASL(γ+ = 0, γ− = 2, clip 0.05). */
export function gkgnetLoss(logits: Tensor, target: Tensor): GkgnetLoss {
  const bce = labelSmoothBce(logits, target, 0.1);
  const asymmetric = asymmetricLossMmcls(logits, target, { gammaPos: 0, gammaNeg: 2, clip: 0.05 });
  const asymmetricX10 = mul(asymmetric, 10);
  return { loss: add(bce, asymmetricX10), bce, asymmetric, asymmetricX10 };
}

export interface AlibabaAslOptions {
  gammaNeg?: number;
  gammaPos?: number;
  clip?: number;
  eps?: number;
  /** disable_torch_grad_focal_loss: the focusing weight is a constant in backward. */
  detachFocalWeight?: boolean;
}

/** Alibaba-MIIL AsymmetricLoss (§6.4): −Σ (t·log p + (1 − t)·log q)·w, no division by B. */
export function asymmetricLossAlibaba(logits: Tensor, target: Tensor, { gammaNeg = 4, gammaPos = 1, clip = 0.05, eps = 1e-8, detachFocalWeight = true }: AlibabaAslOptions = {}): Tensor {
  batchSize('asymmetricLossAlibaba', logits);
  return neg(sum(lossTerms(logits, target, { kind: 'alibaba-asl', gammaPos, gammaNeg, clip, eps, detachFocalWeight })));
}

/** Alibaba-MIIL AsymmetricLossOptimized: the same values; its default keeps the weight differentiated. */
export function asymmetricLossOptimized(logits: Tensor, target: Tensor, options: AlibabaAslOptions = {}): Tensor {
  return asymmetricLossAlibaba(logits, target, { ...options, detachFocalWeight: options.detachFocalWeight ?? false });
}

/** torch.nn.functional.binary_cross_entropy_with_logits with reduction 'mean' (any shape). */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  return mean(lossTerms(logits, target, { kind: 'bce' }));
}
