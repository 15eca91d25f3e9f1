// ML-GCN head (Chen et al., "Multi-Label Image Recognition with Graph Convolutional Networks"): a
// label co-occurrence graph from the training labels, binarised at τ and re-weighted with p, drives
// a two-layer GCN over label embeddings whose outputs are per-label classifiers applied to the
// pooled image feature. Usable on any backbone that yields a pooled feature: Pyramid ViG (the head
// replaces the ImageNet head), GKGNet and ML-ViG (its logits are added to the LabelQueryHead's).
import { readFile } from 'node:fs/promises';
import { Tensor, F } from '../kernels/index.js';
import { readSafetensors } from '../engine/safetensors.js';
import { Module, captured, type StateEntry } from './module.js';
import { parameterTensor, uniform } from './layers.js';
import { VigTrunk, type VigConfig } from './pyramid-vig.js';
import { Gkgnet, type GkgnetConfig } from './gkgnet.js';
import { MlVig, type MlVigConfig } from './ml-vig.js';

/**
 * The re-weighted, normalised correlation matrix Â (S×S, row-major): P(j|i) = M_ij / N_i from the
 * training labels (1 = present; 0 and −1 absent), A_ij = [P(j|i) ≥ τ] off the diagonal, then
 * A'_ij = p·A_ij / Σ_{k≠i} A_ik and A'_ii = 1 − p, and Â = D^{-1/2} A'ᵀ D^{-1/2} with D the row sums
 * of A' (the reference implementation's gen_adj).
 */
export function labelCorrelation(labels: readonly Int8Array[], S: number, tau = 0.4, p = 0.2): Float64Array {
  const count = new Float64Array(S);
  const co = new Float64Array(S * S);
  for (const l of labels) {
    if (l.length !== S) throw new Error(`labelCorrelation: a label vector has ${l.length} entries, expected ${S}`);
    for (let i = 0; i < S; i++) {
      if (l[i] !== 1) continue;
      count[i]++;
      for (let j = 0; j < S; j++) if (j !== i && l[j] === 1) co[i * S + j]++;
    }
  }
  const a = new Float64Array(S * S);
  for (let i = 0; i < S; i++) {
    let row = 0;
    for (let j = 0; j < S; j++) {
      if (j === i || count[i] === 0) continue;
      if (co[i * S + j] / count[i] >= tau) {
        a[i * S + j] = 1;
        row++;
      }
    }
    for (let j = 0; j < S; j++) if (j !== i) a[i * S + j] = row > 0 ? (p * a[i * S + j]) / row : 0;
    a[i * S + i] = 1 - p;
  }
  const d = new Float64Array(S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) d[i] += a[i * S + j];
  const out = new Float64Array(S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) out[i * S + j] = a[j * S + i] / Math.sqrt(d[i] * d[j]);
  return out;
}

export type LabelEmbeddings = { kind: 'onehot' } | { kind: 'learnable'; dim: number } | { kind: 'given'; vectors: Float32Array; dim: number };

/**
 * Label embeddings from a file: safetensors (tensor `embeddings`, or the only tensor, [S, d]) or JSON
 * (`{"classes": [...], "vectors": [[...]]}` or `{ "<class>": [...], ... }`), in the dataset's class order.
 */
export async function readLabelEmbeddings(path: string, classes: string[]): Promise<LabelEmbeddings> {
  const S = classes.length;
  let rows: number[][];
  if (path.endsWith('.safetensors')) {
    const f = await readSafetensors(path);
    const t = f.tensors.get('embeddings') ?? (f.tensors.size === 1 ? [...f.tensors.values()][0] : undefined);
    if (!t || t.shape.length !== 2 || t.shape[0] !== S) throw new Error(`${path}: expected a tensor "embeddings" of shape [${S}, d]`);
    return { kind: 'given', vectors: Float32Array.from(t.data), dim: t.shape[1] };
  }
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  if (Array.isArray(json.vectors)) {
    const names = json.classes as string[] | undefined;
    rows = classes.map((c, i) => (json.vectors as number[][])[names ? names.indexOf(c) : i]);
  } else rows = classes.map((c) => json[c] as number[]);
  const dim = rows[0]?.length ?? 0;
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== dim || dim === 0) throw new Error(`${path}: no ${dim || ''}-dim vector for class "${classes[i]}"`);
  });
  return { kind: 'given', vectors: Float32Array.from(rows.flat()), dim };
}

/** Two GCN layers (gc1, gc2: weight [in, out], LeakyReLU 0.2 between) over the label graph. */
export class MlGcnHead extends Module {
  readonly embeddings: Tensor;
  readonly adj: Tensor;
  readonly gc1: Tensor;
  readonly gc2: Tensor;
  constructor(readonly numLabels: number, readonly featureDim: number, adjacency: Float64Array, emb: LabelEmbeddings, hidden = 1024) {
    super();
    const S = numLabels;
    const [vectors, dim, trainable] =
      emb.kind === 'onehot'
        ? [Float32Array.from({ length: S * S }, (_, i) => (i % (S + 1) === 0 ? 1 : 0)), S, false]
        : emb.kind === 'learnable'
          ? [null, emb.dim, true]
          : [emb.vectors, emb.dim, false];
    // Fixed embeddings are data, not parameters: a buffer (saved, never counted or updated).
    this.embeddings = trainable ? this.addParam('embeddings', parameterTensor([S, dim], { std: 1 })) : this.addBuffer('embeddings', Tensor.from(vectors!, [S, dim]));
    this.adj = this.addBuffer('adj', Tensor.from(Float32Array.from(adjacency), [S, S]));
    // The reference init: U(±1/√out).
    this.gc1 = this.addParam('gc1.weight', uniform([dim, hidden], 1 / Math.sqrt(hidden)));
    this.gc2 = this.addParam('gc2.weight', uniform([hidden, featureDim], 1 / Math.sqrt(featureDim)));
  }
  /** Per-label classifiers W (S × featureDim). */
  classifiers(): Tensor {
    const h = F.matmul(this.adj, F.matmul(this.embeddings, this.gc1));
    const act = F.maximum(h, F.mul(h, 0.2));
    return F.matmul(this.adj, F.matmul(act, this.gc2));
  }
  /** pooled B×featureDim → logits B×S. */
  forward(pooled: Tensor): Tensor {
    return captured(this, F.matmul(pooled, this.classifiers(), { transB: true }));
  }
}

/** How a model's ML-GCN head is made: adjacency from the training labels, embeddings, GCN width. */
export interface MlGcnOptions {
  /** Training labels (1 present; 0, −1 absent); none: the identity graph, e.g. before loadStateDict restores `adj`. */
  trainLabels?: readonly Int8Array[];
  /** Default one-hot. */
  labelEmbeddings?: LabelEmbeddings;
  /** Hidden width of the first GCN layer (reference: 1024). */
  hidden?: number;
}

function mlGcnHead(numLabels: number, featureDim: number, o: MlGcnOptions): MlGcnHead {
  // Without labels labelCorrelation gives exactly the identity: A' = (1 − p)·I, normalised to I.
  return new MlGcnHead(numLabels, featureDim, labelCorrelation(o.trainLabels ?? [], numLabels), o.labelEmbeddings ?? { kind: 'onehot' }, o.hidden);
}

/**
 * The embeddings a checkpoint's ML-GCN head holds (`gcn.embeddings`), as fixed vectors, so that the
 * model rebuilt to load it has the same shapes; undefined when it has no ML-GCN head.
 */
export function checkpointLabelEmbeddings(state: Map<string, StateEntry>): LabelEmbeddings | undefined {
  const e = state.get('gcn.embeddings');
  if (!e || e.shape.length !== 2) return undefined;
  return { kind: 'given', vectors: Float32Array.from(e.data), dim: e.shape[1] };
}

/** Pyramid ViG trunk + ML-GCN head in place of the ImageNet head: logits = gcn(GAP(patches)). */
export class VigMlGcn extends VigTrunk {
  readonly gcn: MlGcnHead;
  constructor(override readonly config: VigConfig & { numLabels: number }, o: MlGcnOptions = {}) {
    super(config);
    this.gcn = this.addChild('gcn', mlGcnHead(config.numLabels, config.channels[3], o));
  }
  forward(img: Tensor): Tensor {
    let x = this.embed(img);
    for (const l of this.backbone.layers) x = l.call(x);
    return captured(this, this.gcn.forward(F.globalAvgPool(x)));
  }
}

/** GKGNet + ML-GCN: the LabelQueryHead's logits plus gcn(GAP(patches)). */
export class GkgnetMlGcn extends Gkgnet {
  readonly gcn: MlGcnHead;
  constructor(config: GkgnetConfig, o: MlGcnOptions = {}) {
    super(config);
    this.gcn = this.addChild('gcn', mlGcnHead(config.numLabels, config.channels[3], o));
  }
  override forwardAll(img: Tensor): { clsScore: Tensor; labels: Tensor; gap: Tensor } {
    const r = super.forwardAll(img);
    return { ...r, clsScore: F.add(r.clsScore, this.gcn.forward(r.gap)) };
  }
}

/** ML-ViG + ML-GCN: the ML-ViG logits plus gcn(GAP(patches)). */
export class MlVigMlGcn extends MlVig {
  readonly gcn: MlGcnHead;
  constructor(config: MlVigConfig, o: MlGcnOptions = {}) {
    super(config);
    this.gcn = this.addChild('gcn', mlGcnHead(config.numLabels, config.channels[3], o));
  }
  override forwardAll(img: Tensor): { clsScore: Tensor; gap: Tensor } {
    const r = super.forwardAll(img);
    return { ...r, clsScore: F.add(r.clsScore, this.gcn.forward(r.gap)) };
  }
}
