// Pyramid ViG (huawei `DeepGCN`, spec §3) and the backbone layout GKGNet shares with it.
import { Tensor, F } from '../kernels/index.js';
import { Module, captured } from './module.js';
import { Layer, Conv2d, BatchNorm2d, GELU, Identity, Sequential, parameterTensor } from './layers.js';
import { Stem, Downsample, vigBlock } from './vig-blocks.js';

export interface VigConfig {
  channels: number[];
  blocks: number[];
  /** Input side (multiple of 32); fixes pos_embed and the relative-position tables. */
  size: number;
  k: number;
  /** KNN channel groups: 1 for Pyramid ViG, 2 for GKGNet. */
  groups: number;
  reduceRatios: number[];
  dropPath: number;
  relativePos: boolean;
  /** Cap of the dilation schedule min(idx/4 + 1, cap); official: ⌊49 / k⌋. */
  maxDilation?: number;
}

export const VIG_VARIANTS: Record<string, Pick<VigConfig, 'channels' | 'blocks'>> = {
  ti: { channels: [48, 96, 240, 384], blocks: [2, 2, 6, 2] },
  s: { channels: [80, 160, 400, 640], blocks: [2, 2, 6, 2] },
  m: { channels: [96, 192, 384, 768], blocks: [2, 2, 16, 2] },
  b: { channels: [128, 256, 512, 1024], blocks: [2, 2, 18, 2] },
};

export function checkVigConfig(c: VigConfig, what: string): void {
  if (c.size % 32 !== 0 || c.size <= 0) throw new Error(`${what}: input size ${c.size} must be a positive multiple of 32`);
  if (c.channels.length !== 4 || c.blocks.length !== 4) throw new Error(`${what}: channels and blocks need 4 stages`);
  for (const ch of c.channels) if (ch % 4 !== 0) throw new Error(`${what}: channel count ${ch} must be a multiple of 4`);
}

/** Stage layout: for each backbone list index, which stage it belongs to and whether it ends one. */
export function stageEnds(blocks: number[]): number[] {
  const ends: number[] = [];
  let idx = -1;
  blocks.forEach((n, i) => {
    idx += n + (i > 0 ? 1 : 0);
    ends.push(idx);
  });
  return ends;
}

/** stem + pos_embed + the flat backbone list (blocks and downsamples), as both official repos build it. */
export class VigTrunk extends Module {
  readonly stem: Stem;
  readonly posEmbed: Tensor;
  readonly backbone: Sequential;
  readonly ends: number[];
  constructor(readonly config: VigConfig) {
    super();
    checkVigConfig(config, this.constructor.name);
    const c = config;
    this.stem = this.addChild('stem', new Stem(c.channels[0]));
    const side = c.size / 4;
    this.posEmbed = this.addParam('pos_embed', parameterTensor([1, c.channels[0], side, side], { value: 0 }));
    const maxDilation = c.maxDilation ?? Math.floor(49 / c.k);
    const layers: Layer[] = [];
    const relPosTables = new Map<string, Tensor>();
    let idx = 0;
    let nodes = side * side;
    c.blocks.forEach((n, i) => {
      if (i > 0) {
        layers.push(new Downsample(c.channels[i - 1], c.channels[i]));
        nodes /= 4;
      }
      for (let j = 0; j < n; j++, idx++) {
        layers.push(
          vigBlock(c.channels[i], {
            k: c.k,
            dilation: Math.min(Math.floor(idx / 4) + 1, maxDilation),
            groups: c.groups,
            r: c.reduceRatios[i],
            nodes,
            relativePos: c.relativePos,
            relPosTables,
            dropPath: this.blockRate(idx),
          }),
        );
      }
    });
    this.backbone = this.addChild('backbone', new Sequential(...layers));
    this.ends = stageEnds(c.blocks);
  }

  /** stem(img) + pos_embed: B×C0×H/4×W/4. */
  embed(img: Tensor): Tensor {
    if (img.rank !== 4 || img.shape[1] !== 3 || img.shape[2] !== this.config.size || img.shape[3] !== this.config.size) {
      throw new Error(`${this.constructor.name}: input ${img.describe()} must be [B,3,${this.config.size},${this.config.size}]`);
    }
    return F.add(this.stem.call(img), this.posEmbed);
  }

  /** Drop-path rate of block `idx` (linear from 0 to dropPath over all blocks). */
  blockRate(idx: number): number {
    const total = this.config.blocks.reduce((a, b) => a + b, 0);
    return total > 1 ? (this.config.dropPath * idx) / (total - 1) : 0;
  }
}

/** huawei Pyramid ViG `DeepGCN`: trunk, global average pool, `prediction` head. */
export class PyramidVig extends VigTrunk {
  readonly prediction: Sequential;
  readonly numClasses: number;
  constructor(config: VigConfig & { numClasses: number; headHidden?: number }) {
    super(config);
    this.numClasses = config.numClasses;
    const c3 = config.channels[3];
    const hidden = config.headHidden ?? 1024;
    this.prediction = this.addChild(
      'prediction',
      new Sequential(new Conv2d(c3, hidden, 1), new BatchNorm2d(hidden), new GELU(), new Identity(), new Conv2d(hidden, config.numClasses, 1)),
    );
  }
  forward(img: Tensor): Tensor {
    let x = this.embed(img);
    for (const l of this.backbone.layers) x = l.call(x);
    const [B, C] = x.shape;
    const pooled = F.reshape(F.globalAvgPool(x), [B, C, 1, 1]);
    return captured(this, F.reshape(this.prediction.call(pooled), [B, this.numClasses]));
  }
}
