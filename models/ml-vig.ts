/**
 * ML-ViG (spec §5). No official code exists; this is a first implementation from the paper summary.
 * Choices the paper leaves open, marked *(assumed)* in the spec, are made as follows:
 * - Backbone: Pyramid ViG blocks with ungrouped KNN (G = 1), widths of ViG-S by default, the same
 *   stem, pos_embed, relative-position term and dilation schedule.
 * - Multi-label graph (MLG) blocks: M = [1, 1, 1, 3] per stage, applied after the stage's ViG blocks
 *   (placement as in GKGNet). Label nodes start from a learnable N(0, 1) embedding (`label_embed`)
 *   and are mapped between stages by a Linear (`label_proj.i`), as in GKGNet; an MLG block's drop
 *   path is its stage's first ViG block's rate (as GKGNet's label modules).
 * - PLG (patch → label): cosine KNN (as §3.4, no position term) from each label node to its K_plg
 *   nearest patch nodes of the stage output (K_plg = 9 at 224, 33 at ≥ 448, capped by the number of
 *   patches); h' = h + [h ‖ max_j (h − x_j)]·W with W ∈ R^{2C×C} (`plg.weight`, bias `plg.bias`),
 *   keeping the paper's sign (centre minus neighbour).
 * - LLG (label ↔ label): H̄ = A·H' + H' with a learnable dense A ∈ R^{S×S} (`llg_adj`, init
 *   N(0, 0.01²)), then a ViG FFN (4× hidden, conv 1×1 + BN on the S label nodes, residual).
 * - Classifier: Linear(GAP(X)) + the per-label linear on the final label nodes (§4.5 label branch).
 * - Loss (trainer): label smoothing 0.1 + 10 × ASL(γ+ = 0, γ− = 2, clip 0.05), GKGNet's weighting.
 */
import { Tensor, F } from '../kernels/index.js';
import { Module, captured, capturedAs } from './module.js';
import { Linear, ModuleList, parameterTensor } from './layers.js';
import { VigTrunk, VIG_VARIANTS, type VigConfig } from './pyramid-vig.js';
import { FFN, DilatedKnnGraph } from './vig-blocks.js';
import { LabelQueryHead, labelStreamStart } from './gkgnet.js';

export interface MlVigConfig extends VigConfig {
  numLabels: number;
  /** MLG blocks per stage. */
  mlgBlocks: number[];
  /** Patch neighbours of each label node (PLG). */
  kPlg: number;
}

export function mlVigConfig(size: number, numLabels: number, extra: Partial<MlVigConfig> = {}): MlVigConfig {
  return {
    ...VIG_VARIANTS.s,
    size,
    numLabels,
    k: 9,
    groups: 1,
    reduceRatios: [4, 2, 1, 1],
    dropPath: 0.1,
    relativePos: true,
    mlgBlocks: [1, 1, 1, 3],
    kPlg: size >= 448 ? 33 : 9,
    ...extra,
  };
}

/** One MLG block: PLG (labels gather from patches) then LLG (labels exchange among themselves). */
export class MlgBlock extends Module {
  readonly plg: Linear;
  readonly knn: DilatedKnnGraph;
  readonly adj: Tensor;
  readonly ffn: FFN;
  constructor(readonly channels: number, numLabels: number, kPlg: number, dropPath: number) {
    super();
    this.plg = this.addChild('plg', new Linear(2 * channels, channels));
    this.knn = this.addChild('plg_knn', new DilatedKnnGraph(kPlg, 1, 1));
    this.adj = this.addParam('llg_adj', parameterTensor([numLabels, numLabels], { std: 0.01 }));
    this.ffn = this.addChild('llg_ffn', new FFN(channels, dropPath));
  }
  /**
   * labels B×C×S, patches B×C×H×W → B×C×S. The label nodes stay channels first, as the patches, the
   * KNN, max-relative and the FFN want them (the tracer sees B×S×C).
   */
  forward(labels: Tensor, patches: Tensor): Tensor {
    const [B, C, S] = labels.shape;
    const p = F.reshape(patches, [B, C, -1]);
    const k = Math.min(this.knn.k, p.shape[2]);
    const idx = k === this.knn.k ? this.knn.run(labels, p) : F.dilatedKnn(labels, p, { k, dilation: 1, groups: 1 });
    // max_j (h − x_j) = max_j ((−x_j) − (−h)): the max-relative op with both sides negated.
    const rel = F.maxRelative(F.neg(labels), F.neg(p), idx, 1);
    const h1 = F.add(labels, this.plg.callChannelsFirst(F.concat([labels, rel], 1)));
    // LLG: h2[b, :, s] = h1[b, :, s] + Σ_t adj[s, t] · h1[b, :, t].
    const h2 = F.add(F.matmul(h1, this.adj, { transB: true }), h1);
    const out = this.ffn.call(F.reshape(h2, [B, C, S, 1]));
    return capturedAs(this, F.reshape(out, [B, C, S]), (t) => F.transpose(t, 1, 2));
  }
}

export class MlVig extends VigTrunk {
  readonly labelEmbed: Tensor;
  readonly mlg: ModuleList<ModuleList<MlgBlock>>;
  readonly labelProj: ModuleList<Linear>;
  readonly head: LabelQueryHead;
  constructor(override readonly config: MlVigConfig) {
    super(config);
    const ch = config.channels;
    if (config.mlgBlocks.length !== 4) throw new Error(`MlVig: mlgBlocks [${config.mlgBlocks}] needs 4 stages`);
    this.labelEmbed = this.addParam('label_embed', parameterTensor([config.numLabels, ch[0]], { std: 1 }));
    // MLG blocks take the drop-path rate of their stage's first ViG block (as GKGNet's label modules).
    const firstBlock = config.blocks.map((_, i) => config.blocks.slice(0, i).reduce((a, b) => a + b, 0));
    this.mlg = this.addChild(
      'mlg',
      new ModuleList(ch.map((c, i) => new ModuleList(Array.from({ length: config.mlgBlocks[i] }, () => new MlgBlock(c, config.numLabels, config.kPlg, this.blockRate(firstBlock[i])))))),
    );
    this.labelProj = this.addChild('label_proj', new ModuleList(ch.slice(0, 3).map((c, i) => new Linear(c, ch[i + 1]))));
    this.head = this.addChild('head', new LabelQueryHead(ch[3], config.numLabels));
  }
  forward(img: Tensor): Tensor {
    return this.forwardAll(img).clsScore;
  }
  /** Logits B×S and GAP(final patch map) B×C3. */
  forwardAll(img: Tensor): { clsScore: Tensor; gap: Tensor } {
    const B = img.shape[0];
    let x = this.embed(img);
    // The label stream runs channels first (B×C×S): one transpose in, one out.
    let e = labelStreamStart(this.labelEmbed, B);
    let stage = 0;
    this.backbone.layers.forEach((layer, i) => {
      x = layer.call(x);
      if (i !== this.ends[stage]) return;
      for (const blk of this.mlg.items[stage].items) e = blk.forward(e, x);
      if (stage < 3) e = this.labelProj.items[stage].callChannelsFirst(e);
      stage++;
    });
    const { clsScore, gap } = this.head.forward(F.transpose(e, 1, 2), x);
    return { clsScore: captured(this, clsScore), gap };
  }
}
