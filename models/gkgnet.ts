// GKGNet (spec §4): the ViG trunk with grouped KNN, a label stream that meets the patches of every
// stage through a cross-level Group KGCN, and the LabelQueryHead. Official mmcls keys: the
// classifier's top-level modules are `backbone` (this trunk + label stream) and `head`.
import { Tensor, F } from '../kernels/index.js';
import { Module, captured, capturedAs } from './module.js';
import { Embedding, Linear, ModuleList } from './layers.js';
import { VigTrunk, VIG_VARIANTS, type VigConfig } from './pyramid-vig.js';
import { GrapherLabel } from './vig-blocks.js';

export interface GkgnetConfig extends VigConfig {
  /** Number of labels S. */
  numLabels: number;
  /** Neighbours of the cross-level (label → patch) graph. */
  kLabel: number;
}

export function gkgnetConfig(variant: 't' | 's' | 'b', size: number, numLabels: number, extra: Partial<GkgnetConfig> = {}): GkgnetConfig {
  const v = VIG_VARIANTS[variant === 't' ? 'ti' : variant];
  return { ...v, size, numLabels, k: 9, kLabel: 9, groups: 2, reduceRatios: [4, 2, 1, 1], dropPath: 0.1, relativePos: true, ...extra };
}

/** A label table [S, C] as a label stream's first value: one copy per image, channels first (B×C×S). */
export function labelStreamStart(table: Tensor, B: number): Tensor {
  return F.transpose(F.expand(F.reshape(table, [1, ...table.shape]), [B, ...table.shape]), 1, 2);
}

/** The mmcls `GKGNet` backbone: trunk + `label_lt`, `gcn_label.i.0`, `ffn_label.i.0`. */
export class GkgnetBackbone extends VigTrunk {
  readonly labelLt: Embedding;
  readonly gcnLabel: ModuleList<ModuleList<GrapherLabel>>;
  readonly ffnLabel: ModuleList<ModuleList<Linear>>;
  constructor(override readonly config: GkgnetConfig) {
    super(config);
    const ch = config.channels;
    this.labelLt = this.addChild('label_lt', new Embedding(config.numLabels, ch[0]));
    // Label modules take the drop-path rate of their stage's first block.
    // (list index after the previous stage's end and its Downsample, minus the downsamples before it)
    const firstBlock = [0, ...this.ends.slice(0, 3).map((e) => e + 2)].map((listIdx, i) => listIdx - i);
    this.gcnLabel = this.addChild(
      'gcn_label',
      new ModuleList(ch.map((c, i) => new ModuleList([new GrapherLabel(c, config.kLabel, config.groups, this.blockRate(firstBlock[i]))]))),
    );
    this.ffnLabel = this.addChild('ffn_label', new ModuleList(ch.slice(0, 3).map((c, i) => new ModuleList([new Linear(c, ch[i + 1])]))));
  }

  /** Returns the final patch map (B×C3×h×w) and label embeddings (B×S×C3). */
  forward(img: Tensor): { patches: Tensor; labels: Tensor } {
    const B = img.shape[0];
    let x = this.embed(img);
    // The label stream runs channels first (B×C×S, as the patches): one transpose in, one out.
    let e = labelStreamStart(this.labelLt.weight, B);
    let stage = 0;
    this.backbone.layers.forEach((layer, i) => {
      x = layer.call(x);
      if (i !== this.ends[stage]) return;
      e = this.gcnLabel.items[stage].items[0].forward(e, x);
      if (stage < 3) {
        const ffn = this.ffnLabel.items[stage];
        e = capturedAs(ffn, ffn.items[0].callChannelsFirst(e), (t) => F.transpose(t, 1, 2));
      }
      stage++;
    });
    return { patches: x, labels: F.transpose(e, 1, 2) };
  }
}

/** `LabelQueryHead`: per-label classifier on the label embeddings + a linear layer on GAP(patches). */
export class LabelQueryHead extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(channels: number, numLabels: number) {
    super();
    this.fc1 = this.addChild('fc1', new Linear(channels, numLabels, { std: 0.01 }));
    this.fc2 = this.addChild('fc2', new Linear(channels, numLabels, { std: 0.01 }));
  }
  forward(labels: Tensor, patches: Tensor): { clsScore: Tensor; gap: Tensor } {
    // fc1 applied to every label vector, diagonal kept = Σ_c W[s,c]·E[b,s,c] + b[s].
    const yLabel = F.add(F.sum(F.mul(labels, this.fc1.weight), -1), this.fc1.bias);
    const gap = F.globalAvgPool(patches);
    const yPatch = this.fc2.call(gap);
    return { clsScore: F.add(yLabel, yPatch), gap };
  }
}

/** The whole classifier (mmcls ImageClassifier): `backbone` + `head`. Forward gives logits B×S. */
export class Gkgnet extends Module {
  readonly backbone: GkgnetBackbone;
  readonly head: LabelQueryHead;
  constructor(readonly config: GkgnetConfig) {
    super();
    this.backbone = this.addChild('backbone', new GkgnetBackbone(config));
    this.head = this.addChild('head', new LabelQueryHead(config.channels[3], config.numLabels));
  }
  forwardAll(img: Tensor): { clsScore: Tensor; labels: Tensor; gap: Tensor } {
    const { patches, labels } = this.backbone.forward(img);
    const { clsScore, gap } = this.head.forward(labels, patches);
    return { clsScore: captured(this, clsScore), labels, gap };
  }
  forward(img: Tensor): Tensor {
    return this.forwardAll(img).clsScore;
  }
}
