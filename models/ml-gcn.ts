// ML-GCN head (Chen et al., "Multi-Label Image Recognition with Graph Convolutional Networks"): a
// label co-occurrence graph from the training labels, binarised at τ and re-weighted with p, drives
// a two-layer GCN over label embeddings whose outputs are per-label classifiers applied to the
// pooled image feature. The graph is by default the official code's (`gen_A`/`gen_adj` of
// Megvii-Nanjing/ML-GCN, which the published results come from), or the paper's corrected Eq. 8
// (see AdjacencyMode); the embeddings default to the shipped GloVe vectors for COCO / VOC class
// names (see labelEmbeddingsFromTables; the tables are read by train/label-embeddings.ts). Usable on any backbone that yields a pooled feature: Pyramid ViG (the head
// replaces the ImageNet head), GKGNet and ML-ViG (its logits are added to the LabelQueryHead's).
import { Tensor, F } from '../kernels/index.js';
import { Module, captured, type StateEntry } from './module.js';
import { parameterTensor, uniform } from './layers.js';
import { VigTrunk, type VigConfig } from './pyramid-vig.js';
import { Gkgnet, type GkgnetConfig } from './gkgnet.js';
import { MlVig, type MlVigConfig } from './ml-vig.js';

/**
 * How the label graph is re-weighted (`--mlgcn-adj`):
 * - `official` (default): the official code's `gen_A` (Megvii-Nanjing/ML-GCN `util.py`), which
 *   produced the published results: each **column** of the binarised A scaled by p / (column sum +
 *   1e-6), p = 0.25, then **+ 1** on the diagonal.
 * - `paper`: the paper's Eq. 8 with the authors' published correction (`data/svg.svg` in their
 *   repository: the denominator is Σ_{i≠j} A_ij, i.e. the column sum, not the row sum as first
 *   printed), with the paper's p = 0.2 and 1 − p on the diagonal:
 *   A'_ij = p·A_ij / Σ_{k≠j} A_kj (i ≠ j; 0 for a column without edges), A'_ii = 1 − p.
 * Both are then normalised by the official `gen_adj`: Â = D^{-1/2} A'ᵀ D^{-1/2}, D = row sums of A'.
 *
 * The two give the same Â (to ~1e-7, the official 1e-6 in the denominator): the paper's A' with p is
 * (1 − p) times the official A' with p / (1 − p), and 0.2 / 0.8 = 0.25; gen_adj is invariant to a
 * scale of A'. So the official code is the corrected Eq. 8 with the paper's p = 0.2, written
 * differently; they differ before normalisation (`labelGraph`) and for other p. Eq. 8 as first
 * printed (row sums; this module's behaviour before the official default) differs from both by
 * ~16% on the official fixture and is not offered; checkpoints made with it keep their `gcn.adj`.
 */
export type AdjacencyMode = 'official' | 'paper';
export const ADJACENCY_MODES: readonly AdjacencyMode[] = ['official', 'paper'];

export interface CorrelationOptions {
  /** Default 'official'. */
  mode?: AdjacencyMode;
  /** Binarisation threshold τ (both: 0.4). */
  tau?: number;
  /** Re-weighting p (default: 0.25 official, 0.2 paper). */
  p?: number;
}

/** p of each mode: the official code's 0.25, the paper's 0.2. */
export const DEFAULT_P: Record<AdjacencyMode, number> = { official: 0.25, paper: 0.2 };

/**
 * The re-weighted correlation matrix A' (S×S, row-major, before normalisation; the official
 * `gen_A`): P(j|i) = M_ij / N_i from the training labels (1 = present; 0 and −1 absent; M_ii = 0,
 * as the official statistics pickles have it), A_ij = [P(j|i) ≥ τ], then re-weighted per `mode`
 * (see AdjacencyMode). A class that never occurs has no edges.
 */
export function labelGraph(labels: readonly Int8Array[], S: number, o: CorrelationOptions = {}): Float64Array {
  const mode = o.mode ?? 'official';
  if (!ADJACENCY_MODES.includes(mode)) throw new Error(`labelGraph: unknown mode "${mode}" (${ADJACENCY_MODES.join(', ')})`);
  const tau = o.tau ?? 0.4;
  const p = o.p ?? DEFAULT_P[mode];
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
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) if (j !== i && count[i] > 0 && co[i * S + j] / count[i] >= tau) a[i * S + j] = 1;
  const col = new Float64Array(S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) col[j] += a[i * S + j];
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < S; j++) {
      if (j === i) continue;
      // official: A * p / (A.sum(0) + 1e-6); paper: the same without the epsilon (0 for an empty column).
      a[i * S + j] = mode === 'official' ? (a[i * S + j] * p) / (col[j] + 1e-6) : col[j] > 0 ? (p * a[i * S + j]) / col[j] : 0;
    }
    a[i * S + i] = mode === 'official' ? 1 : 1 - p;
  }
  return a;
}

/** The official `gen_adj`: D^{-1/2} Aᵀ D^{-1/2} with D the row sums of A (S×S, row-major). */
export function normalizeGraph(a: Float64Array, S: number): Float64Array {
  const d = new Float64Array(S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) d[i] += a[i * S + j];
  const out = new Float64Array(S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) out[i * S + j] = a[j * S + i] / Math.sqrt(d[i] * d[j]);
  return out;
}

/** The GCN's adjacency Â = gen_adj(gen_A) from the training labels (see labelGraph, normalizeGraph). */
export function labelCorrelation(labels: readonly Int8Array[], S: number, o: CorrelationOptions = {}): Float64Array {
  return normalizeGraph(labelGraph(labels, S, o), S);
}

export type LabelEmbeddings = { kind: 'onehot' } | { kind: 'learnable'; dim: number } | { kind: 'given'; vectors: Float32Array; dim: number };

/** The GloVe tables shipped in models/label-embeddings/ (the vectors ML-GCN's results were produced with). */
export const GLOVE_TABLES = ['coco', 'voc'] as const;
export type GloveTable = (typeof GLOVE_TABLES)[number];

/** Class names compared case-, space-, '_'- and '-'-insensitively: 'potted plant' = 'pottedplant', 'TV monitor' = 'tvmonitor'. */
export function normalizeClassName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** A GloVe table as shipped in models/label-embeddings/<name>-glove-300.json. */
export interface GloveTableData {
  classes: string[];
  vectors: number[][];
}

/** The default label embeddings of an ML-GCN head and where they come from (for the run output and config.json). */
export interface DefaultLabelEmbeddings {
  embeddings: LabelEmbeddings;
  /** 'glove-coco' | 'glove-voc' | 'onehot'. */
  source: string;
  /** One line for the run output. */
  description: string;
}

/**
 * The default embeddings for a dataset's classes, given the GloVe tables (train/label-embeddings.ts
 * reads the shipped ones: `defaultLabelEmbeddings`): the GloVe vectors (300-d) when every class
 * name is one of COCO's (or VOC's) names after normalizeClassName (in any order, or a subset); the
 * table whose names are exactly the dataset's wins, else COCO, else VOC (shared names have the
 * same vectors). Otherwise one-hot (today's choice for other datasets).
 */
export function labelEmbeddingsFromTables(classes: readonly string[], tables: (name: GloveTable) => GloveTableData): DefaultLabelEmbeddings {
  const names = classes.map(normalizeClassName);
  const distinct = new Set(names).size === names.length && names.every((n) => n.length > 0);
  const candidates = GLOVE_TABLES.map((t) => {
    const g = tables(t);
    const index = new Map(g.classes.map((c, i) => [normalizeClassName(c), i]));
    const rows = names.map((n) => index.get(n));
    return { t, g, rows, exact: index.size === names.length };
  }).filter((x) => distinct && names.length > 0 && x.rows.every((r) => r !== undefined));
  const pick = candidates.find((x) => x.exact) ?? candidates[0];
  if (!pick) {
    return { embeddings: { kind: 'onehot' }, source: 'onehot', description: "one-hot (the class names are not COCO's or VOC's)" };
  }
  const dim = pick.g.vectors[0].length;
  const vectors = new Float32Array(names.length * dim);
  pick.rows.forEach((r, i) => vectors.set(pick.g.vectors[r!], i * dim));
  const which = pick.t.toUpperCase();
  return {
    embeddings: { kind: 'given', vectors, dim },
    source: `glove-${pick.t}`,
    description: `GloVe ${dim}-d vectors of the ${which} class names (shipped, as ML-GCN used them)`,
  };
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
  /** How the label graph is re-weighted (default 'official'). */
  adjacency?: AdjacencyMode;
}

function mlGcnHead(numLabels: number, featureDim: number, o: MlGcnOptions): MlGcnHead {
  // Without labels labelCorrelation gives exactly the identity (A' = I or (1 − p)·I, normalised to I).
  const adj = labelCorrelation(o.trainLabels ?? [], numLabels, { mode: o.adjacency });
  return new MlGcnHead(numLabels, featureDim, adj, o.labelEmbeddings ?? { kind: 'onehot' }, o.hidden);
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
