// GM-MLIC (Wu et al., "GM-MLIC: Graph Matching based Multi-Label Image Classification", IJCAI 2021)
// on this engine. No official code exists for the IJCAI paper; its journal extension ("Semantic-Aware
// Graph Matching", ynanwu/ML-SGM) is the reference for every choice below that the paper leaves open.
//
// Data flow:
//   image → trunk (any ViG / GKGNet of ours) → final map X [B, C, h, w]
//   instances (N per image):
//     cells (default, ML-SGM): 3×3 conv (stride 2 when the map is ≥ 14 cells a side, else 1) + BN +
//       ReLU → the map's cells;  grid / boxes: ROIAlign 2×2 on X → Linear + ReLU
//     → L2-normalised instance vectors, × √D (unit RMS entries): v_n
//   instance graph: 4-neighbour grid (cells; ML-SGM) or complete without self loops (boxes)
//   label graph: complete with self loops over S labels (ML-SGM), label vectors u_s: GloVe 300-d for
//     COCO / VOC class names (shipped with the ML-GCN head), else one-hot
//   assignment graph: every instance → every label (N·S edges)
//   initial attributes (ML-SGM): instance edges [v_i; v_j], label edges [u_i; u_j], assignment
//     edges [v_n; u_s]; nodes v, u — each through its own reduction MLP to width L
//   2 Graph Network blocks, each (ML-SGM ConvLayer):
//     edge model: e ← MLP([x_src; x_dst; e]) on each of the three edge sets
//     node model: instance n ← MLP([n; mean over its instance in-edges of MLP([x_src; e]);
//                                  mean over its assignment edges of MLP([label; e])]),
//                 then labels alike (in-edges of the label graph, assignment edges from the
//                 updated instances)
//   decoder: per assignment edge MLP → logit of p(instance n has label s)
//   image logits = max over instances (sigmoid is monotone: the max of the probabilities)
//   loss: weighted BCE, 0.8 on positives and 0.2 on negatives, mean over B·S (ML-SGM util.py)
//
// Choices the papers leave open or that we make differently, and why:
// - MLP = Linear → ReLU → LayerNorm → Linear → ReLU → LayerNorm, as ML-SGM; its per-block node/edge
//   re-encoders (an extra MLP on every attribute at the start of each edge and node model) are left
//   out: on a CPU they double the cost, and the reduction MLPs already map every attribute to L.
// - Widths: ML-SGM's 1024-d instances, 512 hidden, 256 latent (decoder hidden 128) on the large
//   trunks; the tiny trunk uses 64 / 64 / 64 (decoder 32) so that it trains in minutes on a CPU
//   (at 32 / 32 it barely moved from the constant optimum in two epochs of the shapes set).
// - On the tiny trunk the blocks' updates are residual (e ← e + MLP(·), n ← n + MLP(·)): ML-SGM
//   replaces each attribute, which puts 9 LayerNorm-MLP layers between an instance and its logit;
//   in 4 CPU epochs that deep a path barely left the loss's constant optimum. Large trunks keep
//   ML-SGM's replacement.
// - Of the second block only the assignment-edge model is built: the decoder reads only the
//   assignment edges, so the rest of it is never used (in ML-SGM those parameters never receive a
//   gradient). Outputs are the same.
// - Cells: ML-SGM's stride-2 conv turns a 14×14 ResNet map (448 px) into 7×7 instances; on a map
//   smaller than 14 (a 96 px input gives 3×3) stride 2 would leave 2×2 instances, so stride 1.
// - The IJCAI paper's instances are detector proposals; `-grid` (a fixed 1+4+9 multi-scale grid)
//   and `-boxes` (boxes per image from a JSON file: any detector's, or ground truth) support that.
//   Box instances have no grid layout, so their instance graph is complete.
// - Instance vectors are L2-normalised as in ML-SGM, then multiplied by √D so that their entries
//   have unit RMS, like the label vectors' (one-hot; GloVe entries ~0.3). With unit norm the
//   instance part of the first layer of the assignment-edge MLP is ~1/√D of its label and bias parts;
//   on the shapes set the model then stayed at the constant optimum of the loss for two epochs.
// - The loss takes the max over instances of the sigmoid (ML-SGM); we compute it on logits (the
//   same value, without log(0)).
import { Tensor, F } from '../kernels/index.js';
import type { FixedGraph } from '../kernels/graph.js';
import { Module, captured } from './module.js';
import { Conv2d, BatchNorm2d, Linear, ModuleList, parameterTensor } from './layers.js';
import { lossTerms } from '../kernels/loss.js';
import type { LabelEmbeddings } from './ml-gcn.js';
import type { VigTrunk } from './pyramid-vig.js';
import {
  type RegionModelSpec, type BoxTable, buildTrunk, trunkFeatures, isTinyTrunk, gridGraph, completeGraph, assignmentGraphs,
  batchBoxes, gridBoxes, l2Normalize, GraphMlp,
} from './regions.js';

export interface RegionModelOptions {
  size: number;
  numLabels: number;
  dropPath?: number;
  labelEmbeddings?: LabelEmbeddings;
  /** Boxes per image (the `-boxes` source). */
  boxes?: BoxTable;
  /** Instances per image for `-boxes` (default 10). */
  maxBoxes?: number;
}

/** Fixed label vectors as a buffer [S, d]: given (GloVe) or one-hot; learnable ones as a parameter. */
export function labelVectors(m: Module & { addLabelTable(t: Tensor, trainable: boolean): Tensor }, S: number, emb: LabelEmbeddings | undefined): Tensor {
  const e = emb ?? { kind: 'onehot' as const };
  if (e.kind === 'learnable') return m.addLabelTable(parameterTensor([S, e.dim], { std: 1 }), true);
  const vectors = e.kind === 'given' ? e.vectors : Float32Array.from({ length: S * S }, (_, i) => (i % (S + 1) === 0 ? 1 : 0));
  return m.addLabelTable(Tensor.from(vectors, [S, e.kind === 'given' ? e.dim : S]), false);
}

/** The region models' interface beyond logits: per-batch image paths (box files) and their own loss. */
/** A built model's region interface, if it is a region model. */
export function asRegionModel(m: unknown): RegionModel | undefined {
  return m && typeof m === 'object' && 'setImages' in m && 'trainingLoss' in m ? (m as RegionModel) : undefined;
}

export interface RegionModel {
  readonly spec: RegionModelSpec;
  /** The images of the next forward (needed by the `-boxes` source). */
  setImages(paths: readonly string[]): void;
  /** Boxes per image for the `-boxes` source (train/box-file.ts loadBoxTable). */
  setBoxTable(boxes: BoxTable): void;
  /** The training loss for the logits of the last forward. */
  trainingLoss(logits: Tensor, target: Tensor): { loss: Tensor };
  releaseGraphs(): void;
}

/** 0.8·t·(−log p) + 0.2·(1 − t)·(−log(1 − p)), mean over all entries (ML-SGM's weighted_cross_entropy). */
export function weightedBce(logits: Tensor, target: Tensor, wPos = 0.8): Tensor {
  const terms = lossTerms(logits, target, { kind: 'bce' });
  const w = F.affine(target, 2 * wPos - 1, 1 - wPos);
  return F.mean(F.mul(terms, w));
}

export class GmMlic extends Module implements RegionModel {
  readonly backbone: VigTrunk;
  readonly proj: Conv2d | null;
  readonly projBn: BatchNorm2d | null;
  readonly roiFc: Linear | null;
  readonly labelTable: Tensor;
  readonly red: Record<'node_ins' | 'edge_ins' | 'node_label' | 'edge_label' | 'edge_cross', GraphMlp>;
  readonly layers: ModuleList<GnBlock>;
  readonly decoder: GraphMlp;
  readonly decoderOut: Linear;
  private graphs: { ins: FixedGraph; label: FixedGraph; cross: FixedGraph; crossRev: FixedGraph } | null = null;
  private paths: readonly string[] | null = null;
  readonly instances: number;
  readonly side: number;
  readonly stride: number;
  readonly maxBoxes: number;
  constructor(readonly spec: RegionModelSpec, readonly o: RegionModelOptions) {
    super();
    const S = o.numLabels;
    const tiny = isTinyTrunk(spec.trunk);
    const [D, H, L, Hd] = tiny ? [64, 64, 64, 32] : [1024, 512, 256, 128];
    this.backbone = this.addChild('backbone', buildTrunk(spec.trunk, o.size, S, o.dropPath ?? 0));
    const C = this.backbone.config.channels[3];
    const map = o.size / 32;
    this.stride = map >= 14 ? 2 : 1;
    this.side = spec.source === 'cells' ? Math.floor((map - 1) / this.stride) + 1 : 0;
    this.maxBoxes = o.maxBoxes ?? 10;
    this.instances = spec.source === 'cells' ? this.side * this.side : spec.source === 'grid' ? gridBoxes().length / 4 : this.maxBoxes;
    if (spec.source === 'cells') {
      this.proj = this.addChild('proj', new Conv2d(C, D, 3, { stride: this.stride, padding: 1, bias: false }));
      this.projBn = this.addChild('proj_bn', new BatchNorm2d(D));
      this.roiFc = null;
    } else {
      this.proj = this.projBn = null;
      this.roiFc = this.addChild('roi_fc', new Linear(C * 4, D));
    }
    this.labelTable = labelVectors(this, S, o.labelEmbeddings);
    const dl = this.labelTable.shape[1];
    this.red = {
      node_ins: this.addChild('red_node_ins', new GraphMlp(D, 0, 0, H, L)),
      edge_ins: this.addChild('red_edge_ins', new GraphMlp(D, D, 0, H, L)),
      node_label: this.addChild('red_node_label', new GraphMlp(dl, 0, 0, H, L)),
      edge_label: this.addChild('red_edge_label', new GraphMlp(dl, dl, 0, H, L)),
      edge_cross: this.addChild('red_edge_cross', new GraphMlp(D, dl, 0, H, L)),
    };
    // Of the last block only the assignment-edge model is built: the decoder reads the assignment
    // edges alone, so nothing else it computes is used (in ML-SGM those parameters never get a gradient).
    this.layers = this.addChild('layers', new ModuleList([new GnBlock(L, H, true, tiny), new GnBlock(L, H, false, tiny)]));
    this.decoder = this.addChild('decoder', new GraphMlp(L, 0, 0, Hd, Hd));
    this.decoderOut = this.addChild('decoder_out', new Linear(Hd, 1));
  }

  addLabelTable(t: Tensor, trainable: boolean): Tensor {
    return trainable ? this.addParam('label_embeddings', t) : this.addBuffer('label_embeddings', t);
  }

  setImages(paths: readonly string[]): void {
    this.paths = paths;
  }
  setBoxTable(boxes: BoxTable): void {
    this.o.boxes = boxes;
  }

  private graphsFor() {
    if (!this.graphs) {
      const N = this.instances;
      const { forward, reverse } = assignmentGraphs(N, this.o.numLabels);
      this.graphs = {
        ins: this.spec.source === 'cells' ? gridGraph(this.side, this.side) : completeGraph(N, false, 'instances'),
        label: completeGraph(this.o.numLabels, true, 'labels'),
        cross: forward,
        crossRev: reverse,
      };
    }
    return this.graphs;
  }

  releaseGraphs(): void {
    if (!this.graphs) return;
    for (const g of Object.values(this.graphs)) g.release();
    this.graphs = null;
  }

  override release(): void {
    this.releaseGraphs();
    super.release();
  }

  /** L2-normalised instance vectors × √D [B, N, D] from the trunk's map x [B, C, h, w]. */
  instanceFeatures(x: Tensor): Tensor {
    const [B, C, h, w] = x.shape;
    if (this.spec.source === 'cells') {
      const y = F.relu(this.projBn!.call(this.proj!.call(x)));
      const [, D, hh, ww] = y.shape;
      return F.mul(l2Normalize(F.permute(F.reshape(y, [B, D, hh * ww]), [0, 2, 1])), Math.sqrt(D));
    }
    const R = this.instances;
    const boxes = batchBoxes(this.spec.source, B, this.o.size, R, this.o.boxes, this.paths ?? undefined);
    const pooled = F.roiAlign(x, boxes, { pooled: 2, spatialScale: w / this.o.size, samplingRatio: 2 });
    void h;
    const feats = F.relu(this.roiFc!.call(F.reshape(pooled, [B, R, C * 4])));
    return F.mul(l2Normalize(feats), Math.sqrt(feats.shape[2]));
  }

  /** Logits per (instance, label) [B, N, S] from the trunk's map x [B, C, h, w]. */
  assignmentLogits(x: Tensor): Tensor {
    const g = this.graphsFor();
    const v = this.instanceFeatures(x);
    const B = v.shape[0];
    const S = this.o.numLabels;
    const u = F.expand(F.reshape(this.labelTable, [1, ...this.labelTable.shape]), [B, ...this.labelTable.shape]);
    const st: GnState = {
      ni: this.red.node_ins.call(v),
      ei: this.red.edge_ins.forwardEdges(g.ins, v, v, null),
      nl: this.red.node_label.call(u),
      el: this.red.edge_label.forwardEdges(g.label, u, u, null),
      ec: this.red.edge_cross.forwardEdges(g.cross, v, u, null),
    };
    let s = st;
    for (const layer of this.layers.items) s = layer.forward(s, g);
    const logit = this.decoderOut.call(this.decoder.call(s.ec)); // [B, N·S, 1]
    return F.reshape(logit, [B, this.instances, S]);
  }

  forward(img: Tensor): Tensor {
    return captured(this, this.head(trunkFeatures(this.backbone, img)));
  }

  /** Image logits [B, S] from the trunk's map: the max over instances of the assignment logits. */
  head(x: Tensor): Tensor {
    return F.maxOverAxis(this.assignmentLogits(x), 1).values;
  }

  trainingLoss(logits: Tensor, target: Tensor): { loss: Tensor } {
    return { loss: weightedBce(logits, target, 0.8) };
  }
}

interface GnState {
  ni: Tensor;
  ei: Tensor;
  nl: Tensor;
  el: Tensor;
  ec: Tensor;
}

/** One Graph Network block (ML-SGM ConvLayer): the edge model, then the node model. */
export class GnBlock extends Module {
  readonly edgeIns: GraphMlp;
  readonly edgeLabel: GraphMlp;
  readonly edgeCross: GraphMlp;
  readonly msgInsInner: GraphMlp;
  readonly msgInsInter: GraphMlp;
  readonly nodeIns: GraphMlp;
  readonly msgLabelInner: GraphMlp;
  readonly msgLabelInter: GraphMlp;
  readonly nodeLabel: GraphMlp;
  /**
   * `full` false: the assignment-edge model alone (the last block, see GmMlic). `residual`: every
   * update is added to the attribute it replaces (e ← e + MLP(·), n ← n + MLP(·)).
   */
  constructor(L: number, H: number, readonly full: boolean, readonly residual = false) {
    super();
    this.edgeCross = this.addChild('edge_mlp_cross', new GraphMlp(L, L, L, H, L));
    if (!full) {
      this.edgeIns = this.edgeLabel = this.msgInsInner = this.msgInsInter = this.nodeIns = this.msgLabelInner = this.msgLabelInter = this.nodeLabel = null!;
      return;
    }
    this.edgeIns = this.addChild('edge_mlp_ins', new GraphMlp(L, L, L, H, L));
    this.edgeLabel = this.addChild('edge_mlp_label', new GraphMlp(L, L, L, H, L));
    this.msgInsInner = this.addChild('node_mlp_ins_inner', new GraphMlp(L, 0, L, H, L));
    this.msgInsInter = this.addChild('node_mlp_ins_inter', new GraphMlp(L, 0, L, H, L));
    this.nodeIns = this.addChild('node_mlp_ins', new GraphMlp(3 * L, 0, 0, H, L));
    this.msgLabelInner = this.addChild('node_mlp_label_inner', new GraphMlp(L, 0, L, H, L));
    this.msgLabelInter = this.addChild('node_mlp_label_inter', new GraphMlp(L, 0, L, H, L));
    this.nodeLabel = this.addChild('node_mlp_label', new GraphMlp(3 * L, 0, 0, H, L));
  }
  forward(s: GnState, g: { ins: FixedGraph; label: FixedGraph; cross: FixedGraph; crossRev: FixedGraph }): GnState {
    const upd = (old: Tensor, y: Tensor) => (this.residual ? F.add(old, y) : y);
    // edge model
    const ec = upd(s.ec, this.edgeCross.forwardEdges(g.cross, s.ni, s.nl, s.ec));
    if (!this.full) return { ...s, ec };
    const ei = upd(s.ei, this.edgeIns.forwardEdges(g.ins, s.ni, s.ni, s.ei));
    const el = upd(s.el, this.edgeLabel.forwardEdges(g.label, s.nl, s.nl, s.el));
    // node model: instances (messages from instance neighbours and from the labels over the assignment edges)
    const innerI = F.scatterMean(this.msgInsInner.forwardEdges(g.ins, s.ni, null, ei), g.ins, 'dst');
    const interI = F.scatterMean(this.msgInsInter.forwardEdges(g.crossRev, s.nl, null, ec), g.crossRev, 'dst');
    const ni = upd(s.ni, this.nodeIns.call(F.concat([s.ni, innerI, interI], -1)));
    // labels (from label neighbours, and from the updated instances)
    const innerL = F.scatterMean(this.msgLabelInner.forwardEdges(g.label, s.nl, null, el), g.label, 'dst');
    const interL = F.scatterMean(this.msgLabelInter.forwardEdges(g.cross, ni, null, ec), g.cross, 'dst');
    const nl = upd(s.nl, this.nodeLabel.call(F.concat([s.nl, innerL, interL], -1)));
    return { ni, ei, nl, el, ec };
  }
}
