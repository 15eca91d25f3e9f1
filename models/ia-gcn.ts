// IA-GCN ("Interpretable / Instance-Aware GCN" with a global and a region branch, variational ROI
// weighting and an image-level label-correlation matrix) on this engine. No official code exists;
// where the paper gives no formula we take the simplest one consistent with its text, and say so.
//
// Data flow:
//   image → trunk (any ViG / GKGNet of ours) → final map X [B, C, h, w]
//   global branch: GAP(X) → Linear → global logits y_g [B, S]
//   region branch, R ROIs per image (instance source, as GM-MLIC's):
//     cells (default): the map's cells; grid / boxes: ROIAlign 2×2 on X, flattened
//     → Linear + ReLU → ROI features h_r [B, R, D]
//     rough label scores s_r = Linear(h_r) [B, R, S]        (supervised by max_r s_r with BCE)
//     variational ROI scale: (μ_r, log σ²_r) = Linear(h_r); z_r = μ_r + σ_r·ε (ε ~ N(0, 1), training;
//       z_r = μ_r at evaluation); α_r = sigmoid(z_r); KL(N(μ, σ²) ‖ N(0, 1)) in the loss
//     image-level correlation: A_img = Σ_r α_r p_r p_rᵀ / Σ_r α_r with p_r = sigmoid(s_r), rows
//       normalised to sum 1
//     fused graph: A = ½ Â_stat + ½ A_img, Â_stat ML-GCN's statistical co-occurrence matrix from the
//       training labels (official gen_A / gen_adj, `--mlgcn-adj`)
//     label GCN (ML-GCN's two layers, LeakyReLU 0.2) over the label vectors (GloVe for COCO / VOC
//       names, else one-hot) with the per-image A → per-label classifiers W [B, S, D]
//     region logits y_r[b, s] = W[b, s] · max_r h_r      (max over ROIs: the region feature)
//   logits = ½ (y_g + y_r)
//   loss = BCE(logits) + BCE(max_r s_r) + mean KL
//
// Choices (the paper's text does not fix them):
// - α_r = sigmoid of the reparameterised Gaussian sample (a scale in (0, 1)); KL against N(0, 1),
//   averaged over ROIs and images, weight 1.
// - A_img: the α-weighted mean of the outer products of the ROI label probabilities (co-occurrence
//   within the image), row-normalised as a transition matrix; fused with Â_stat by an equal average.
// - The two branches are fused by averaging their logits; the rough ROI scores get their own BCE
//   through a max over ROIs (multiple-instance style), so they are label scores and A_img means
//   something from the first step.
// - The paper's ROIs come from a detector (proposals); `-grid` and `-boxes` give boxes, the default
//   treats the feature-map cells as ROIs (ML-SGM's choice for GM-MLIC), which needs no detector.
import { Tensor, F } from '../kernels/index.js';
import { Module, captured } from './module.js';
import { Linear, uniform } from './layers.js';
import { labelCorrelation, type AdjacencyMode } from './ml-gcn.js';
import { bceWithLogits } from './losses.js';
import type { VigTrunk } from './pyramid-vig.js';
import { type RegionModelSpec, type BoxTable, buildTrunk, trunkFeatures, isTinyTrunk, batchBoxes, gridBoxes } from './regions.js';
import { labelVectors, type RegionModel, type RegionModelOptions } from './gm-mlic.js';

export interface IaGcnOptions extends RegionModelOptions {
  trainLabels?: readonly Int8Array[];
  adjacency?: AdjacencyMode;
  /** Weight of the KL term (default 1). */
  klWeight?: number;
}

/** The label GCN of IA-GCN: ML-GCN's gc1 / gc2 over a per-image adjacency. Keys `gcn.*`. */
export class IaGcnLabelGraph extends Module {
  readonly embeddings: Tensor;
  readonly adj: Tensor;
  readonly gc1: Tensor;
  readonly gc2: Tensor;
  constructor(S: number, D: number, hidden: number, adjacency: Float64Array, emb: RegionModelOptions['labelEmbeddings']) {
    super();
    this.embeddings = labelVectors(this, S, emb);
    this.adj = this.addBuffer('adj', Tensor.from(Float32Array.from(adjacency), [S, S]));
    const dim = this.embeddings.shape[1];
    this.gc1 = this.addParam('gc1.weight', uniform([dim, hidden], 1 / Math.sqrt(hidden)));
    this.gc2 = this.addParam('gc2.weight', uniform([hidden, D], 1 / Math.sqrt(D)));
  }
  addLabelTable(t: Tensor, trainable: boolean): Tensor {
    return trainable ? this.addParam('embeddings', t) : this.addBuffer('embeddings', t);
  }
  /** Per-image classifiers [B, S, D] from the per-image adjacency A [B, S, S]. */
  classifiers(A: Tensor): Tensor {
    const h = F.matmul(A, F.matmul(this.embeddings, this.gc1));
    const act = F.maximum(h, F.mul(h, 0.2));
    return F.matmul(A, F.matmul(act, this.gc2));
  }
}

export class IaGcn extends Module implements RegionModel {
  readonly backbone: VigTrunk;
  readonly globalFc: Linear;
  readonly roiFc: Linear;
  readonly roughFc: Linear;
  readonly varFc: Linear;
  readonly gcn: IaGcnLabelGraph;
  readonly rois: number;
  private paths: readonly string[] | null = null;
  /** What the last forward left for the loss: rough ROI logits, μ and log σ². */
  private last: { rough: Tensor; mu: Tensor; logvar: Tensor } | null = null;
  constructor(readonly spec: RegionModelSpec, readonly o: IaGcnOptions) {
    super();
    const S = o.numLabels;
    const tiny = isTinyTrunk(spec.trunk);
    const [D, hidden] = tiny ? [64, 64] : [1024, 1024];
    this.backbone = this.addChild('backbone', buildTrunk(spec.trunk, o.size, S, o.dropPath ?? 0));
    const C = this.backbone.config.channels[3];
    const map = o.size / 32;
    this.rois = spec.source === 'cells' ? map * map : spec.source === 'grid' ? gridBoxes().length / 4 : (o.maxBoxes ?? 10);
    this.globalFc = this.addChild('global_fc', new Linear(C, S));
    this.roiFc = this.addChild('roi_fc', new Linear(spec.source === 'cells' ? C : 4 * C, D));
    this.roughFc = this.addChild('rough_fc', new Linear(D, S));
    this.varFc = this.addChild('var_fc', new Linear(D, 2));
    this.gcn = this.addChild('gcn', new IaGcnLabelGraph(S, D, hidden, labelCorrelation(o.trainLabels ?? [], S, { mode: o.adjacency }), o.labelEmbeddings));
  }

  setImages(paths: readonly string[]): void {
    this.paths = paths;
  }
  setBoxTable(boxes: BoxTable): void {
    this.o.boxes = boxes;
  }
  releaseGraphs(): void {}

  /** ROI features [B, R, D] from the trunk's map x [B, C, h, w]. */
  roiFeatures(x: Tensor): Tensor {
    const [B, C, hh, ww] = x.shape;
    let f: Tensor;
    if (this.spec.source === 'cells') f = F.permute(F.reshape(x, [B, C, hh * ww]), [0, 2, 1]);
    else {
      const boxes = batchBoxes(this.spec.source, B, this.o.size, this.rois, this.o.boxes, this.paths ?? undefined);
      f = F.reshape(F.roiAlign(x, boxes, { pooled: 2, spatialScale: ww / this.o.size, samplingRatio: 2 }), [B, this.rois, C * 4]);
    }
    return F.relu(this.roiFc.call(f));
  }

  /** Every intermediate tensor (tests and the loss) from the trunk's map x; `eps` replaces the drawn noise. */
  head(x: Tensor, eps?: Tensor) {
    const h = this.roiFeatures(x);
    const [B, R] = h.shape;
    const yg = this.globalFc.call(F.globalAvgPool(x));
    const rough = this.roughFc.call(h); // [B, R, S]
    const mv = this.varFc.call(h); // [B, R, 2]
    const mu = F.slice(mv, 2, 0, 1);
    const logvar = F.slice(mv, 2, 1, 2);
    let z = mu;
    if (this.training) {
      const noise = eps ?? this.noise(B * R);
      z = F.add(mu, F.mul(F.exp(F.mul(logvar, 0.5)), F.reshape(noise, [B, R, 1])));
    }
    const alpha = F.sigmoid(z); // [B, R, 1]
    const p = F.sigmoid(rough);
    const co = F.matmul(p, F.mul(p, alpha), { transA: true }); // [B, S, S] = Σ_r α_r p_r p_rᵀ
    const aImg = F.div(co, F.sum(alpha, 1, true)); // ÷ Σ_r α_r ([B, 1, 1])
    const aRow = F.div(aImg, F.add(F.sum(aImg, -1, true), 1e-6));
    const A = F.add(F.mul(this.gcn.adj, 0.5), F.mul(aRow, 0.5));
    const W = this.gcn.classifiers(A); // [B, S, D]
    const region = F.maxOverAxis(h, 1).values; // [B, D]
    const yr = F.reshape(F.matmul(W, F.reshape(region, [B, region.shape[1], 1])), [B, W.shape[1]]);
    const logits = F.mul(F.add(yg, yr), 0.5);
    return { logits, yg, yr, rough, mu, logvar, alpha, A };
  }

  private noise(n: number): Tensor {
    const rng = this.generator;
    if (!rng) throw new Error('IA-GCN in training mode needs a generator for its reparameterisation noise: call model.setGenerator(new Rng(seed)) first');
    // A producer, so that a replayed step (engine/replay.ts) draws fresh noise each step.
    return Tensor.fromProducer([n], () => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = rng.normal();
      return v;
    }, 'reparameterisation noise');
  }

  forward(img: Tensor): Tensor {
    const r = this.head(trunkFeatures(this.backbone, img));
    this.last = { rough: r.rough, mu: r.mu, logvar: r.logvar };
    return captured(this, r.logits);
  }

  /** BCE(logits) + BCE(max_r rough) + w·mean KL(N(μ, σ²) ‖ N(0, 1)). */
  trainingLoss(logits: Tensor, target: Tensor): { loss: Tensor; bce: Tensor; rough: Tensor; kl: Tensor } {
    if (!this.last) throw new Error('IA-GCN: trainingLoss needs a forward first');
    return iaGcnLoss(logits, this.last.rough, this.last.mu, this.last.logvar, target, this.o.klWeight ?? 1);
  }
}

export function iaGcnLoss(logits: Tensor, rough: Tensor, mu: Tensor, logvar: Tensor, target: Tensor, klWeight = 1) {
  const bce = bceWithLogits(logits, target);
  const roughBce = bceWithLogits(F.maxOverAxis(rough, 1).values, target);
  // KL = −½ (1 + log σ² − μ² − σ²), mean over ROIs and images; in f32, as every loss (f16
  // activations: μ² past 256 and σ² = exp(log σ²) past ~11 would overflow f16).
  const m = F.asF32(mu);
  const lv = F.asF32(logvar);
  const kl = F.mul(F.mean(F.sub(F.add(F.mul(m, m), F.exp(lv)), F.add(lv, 1))), 0.5);
  return { loss: F.add(F.add(bce, roughBce), F.mul(kl, klWeight)), bce, rough: roughBce, kl };
}
