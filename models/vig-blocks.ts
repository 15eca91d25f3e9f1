// The building blocks shared by Pyramid ViG and GKGNet (spec §3.2–§3.7, §4.2–§4.3), with the
// official module tree so parameter names match: Grapher, FFN, Stem, Downsample, GrapherLabel.
import { Tensor, F, keep } from '../kernels/index.js';
import { Module, captured, capturedAs } from './module.js';
import { Layer, Conv2d, BatchNorm2d, GELU, Sequential, residualBranch } from './layers.js';
import { relativePosTable } from './relative-pos.js';

const convBn = (cin: number, cout: number, groups = 1) => new Sequential(new Conv2d(cin, cout, 1, { groups }), new BatchNorm2d(cout));

/** `dilated_knn_graph`: cosine KNN with dilation (no parameters); its path names it in fixtures. */
export class DilatedKnnGraph extends Module {
  constructor(readonly k: number, readonly dilation: number, readonly groups: number) {
    super();
  }
  run(query: Tensor, source: Tensor, relativePos?: Tensor): Tensor {
    const injected = this.tracer?.neighbours?.(this.path) ?? null;
    const observe = this.tracer?.ownNeighbours;
    // An observing tracer sees the own choice, computed from the same inputs, while the injected
    // one is used downstream.
    const own = injected && !observe
      ? null
      : F.dilatedKnn(query, source, { k: this.k, dilation: this.dilation, groups: this.groups, relativePos });
    if (observe && own) observe.call(this.tracer, this.path, own);
    return injected ?? own!;
  }
}

/** `gconv` (MRConv2d's BasicConv): its `nn` is grouped(4) 1×1 conv + BN + GELU. */
class GConv extends Module {
  readonly nn: Sequential;
  constructor(channels: number) {
    super();
    this.nn = this.addChild('nn', new Sequential(new Conv2d(channels, channels, 1, { groups: 4 }), new BatchNorm2d(channels), new GELU()));
  }
}

/** `graph_conv` (DyGraphConv2d with MRConv): KNN, max-relative, interleave, grouped 1×1 conv + BN + GELU. */
export class GraphConv extends Module {
  readonly knn: DilatedKnnGraph;
  readonly nn: Sequential;
  constructor(readonly channels: number, k: number, dilation: number, readonly groups: number, readonly r: number) {
    super();
    this.nn = this.addChild('gconv', new GConv(2 * channels)).nn;
    this.knn = this.addChild('dilated_knn_graph', new DilatedKnnGraph(k, dilation, groups));
  }
  /** x: B×C×H×W (queries, after fc1); sources are x pooled by r, or x itself. */
  forward(x: Tensor, relativePos?: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    // Without pooling the sources are the queries themselves: one tensor, whose two gradients the
    // aggregation's backward sums in its own pass (and the pool's backward adds the queries' one).
    const y = this.r > 1 ? F.avgPool2d(x, this.r) : x;
    const idx = this.knn.run(F.reshape(x, [B, C, H * W]), F.reshape(y, [B, C, -1]), relativePos);
    const out = this.aggregate(x, y, idx);
    return captured(this, F.reshape(out, [B, 2 * C, H, W]));
  }
  /**
   * Max-relative aggregation and the MRConv update on node tensors q: B×C×N, s: B×C×M, or maps
   * B×C×H×W of them (passed as they are, so that their gradients meet the tensors' other ones).
   */
  aggregate(q: Tensor, s: Tensor, idx: Tensor): Tensor {
    const [B, C] = q.shape;
    const N = idx.shape[1];
    const nodes = (t: Tensor) => F.reshape(t, [B, C, -1]);
    const choice = this.tracer?.maxRelative?.(`${this.path}.gconv`, nodes(q), nodes(s), idx) ?? undefined;
    // Interleave [q, rel] → channel 2c = q[c], 2c+1 = rel[c] (cat on a new axis, then flatten),
    // written by the aggregation itself.
    const z = F.reshape(F.maxRelativeInterleaved(q, s, idx, this.groups, choice), [B, 2 * C, N, 1]);
    return this.nn.call(z);
  }
}

/** Patch-level Grapher (block `.0`): fc1 → graph_conv → fc2, plus the residual. */
export class Grapher extends Layer {
  readonly fc1: Sequential;
  readonly graphConv: GraphConv;
  readonly fc2: Sequential;
  readonly relativePos: Tensor | null;
  constructor(
    readonly channels: number,
    o: {
      k: number; dilation: number; groups: number; r: number; nodes: number; relativePos: boolean; dropPath: number;
      /** The model's position tables, shared by the Graphers of a stage (built once per stage). */
      relPosTables?: Map<string, Tensor>;
    },
  ) {
    super();
    this.fc1 = this.addChild('fc1', convBn(channels, channels));
    this.graphConv = this.addChild('graph_conv', new GraphConv(channels, o.k, o.dilation, o.groups, o.r));
    this.fc2 = this.addChild('fc2', convBn(2 * channels, channels));
    this.relativePos = o.relativePos ? this.addParam('relative_pos', relativePosTensor(o.relPosTables ?? new Map(), o.nodes, channels, o.r), false) : null;
    this.dropPathRate = o.dropPath;
  }
  readonly dropPathRate: number;
  protected override ownDerivedKeys(): string[] {
    return this.relativePos ? ['relative_pos'] : [];
  }
  forward(x: Tensor): Tensor {
    const h = this.fc1.call(x);
    const [, , H, W] = x.shape;
    if (this.relativePos && this.relativePos.shape[1] !== H * W) {
      throw new Error(`Grapher ${this.path}: built for ${this.relativePos.shape[1]} nodes, got a ${H}×${W} map (build the model for this input size)`);
    }
    const g = this.graphConv.forward(h, this.relativePos ?? undefined);
    return residualBranch(x, this.fc2, g, this.dropPathRate, this.training, this.generator);
  }
}

/** The frozen position tables are identical for every block of a stage: each model builds each once. */
function relativePosTensor(tables: Map<string, Tensor>, nodes: number, channels: number, r: number): Tensor {
  const key = `${nodes},${channels},${r}`;
  let t = tables.get(key);
  if (!t) {
    t = keep(Tensor.from(relativePosTable(nodes, channels, r), [1, nodes, nodes / (r * r)]));
    tables.set(key, t);
  }
  return t;
}

/** FFN (block `.1`): x + BN(conv(GELU(BN(conv(x))))), hidden 4C. */
export class FFN extends Layer {
  readonly fc1: Sequential;
  readonly fc2: Sequential;
  constructor(channels: number, readonly dropPathRate: number, hidden = 4 * channels) {
    super();
    this.fc1 = this.addChild('fc1', convBn(channels, hidden));
    this.fc2 = this.addChild('fc2', convBn(hidden, channels));
  }
  forward(x: Tensor): Tensor {
    return residualBranch(x, this.fc2, this.fc1.callGelu(x), this.dropPathRate, this.training, this.generator);
  }
}

/** Stem `convs.0..7`: conv s2, BN, GELU, conv s2, BN, GELU, conv s1, BN. */
export class Stem extends Layer {
  readonly convs: Sequential;
  constructor(channels: number) {
    super();
    const h = channels / 2;
    this.convs = this.addChild(
      'convs',
      new Sequential(
        new Conv2d(3, h, 3, { stride: 2, padding: 1 }), new BatchNorm2d(h), new GELU(),
        new Conv2d(h, channels, 3, { stride: 2, padding: 1 }), new BatchNorm2d(channels), new GELU(),
        new Conv2d(channels, channels, 3, { stride: 1, padding: 1 }), new BatchNorm2d(channels),
      ),
    );
  }
  forward(x: Tensor): Tensor {
    return this.convs.call(x);
  }
}

/** Downsample `conv.0/1`: conv 3×3 s2 p1 + BN. */
export class Downsample extends Layer {
  readonly conv: Sequential;
  constructor(cin: number, cout: number) {
    super();
    this.conv = this.addChild('conv', new Sequential(new Conv2d(cin, cout, 3, { stride: 2, padding: 1 }), new BatchNorm2d(cout)));
  }
  forward(x: Tensor): Tensor {
    return this.conv.call(x);
  }
}

/** A ViG block: Sequential(Grapher, FFN). */
export function vigBlock(channels: number, o: ConstructorParameters<typeof Grapher>[1]): Sequential {
  return new Sequential(new Grapher(channels, o), new FFN(channels, o.dropPath));
}

/**
 * Cross-level Group KGCN (`GrapherLabel`, §4.3): label nodes E aggregate their k nearest patch nodes
 * of X (B×C×H×W) per channel group, then an FFN. The official module takes and returns E as B×S×C;
 * here E stays channels first, B×C×S, as every op inside wants it (the tracer sees B×S×C).
 */
export class GrapherLabel extends Module {
  readonly fc1: Sequential;
  readonly graphConv: GraphConv;
  readonly fc2: Sequential;
  readonly ffn: FFN;
  constructor(readonly channels: number, k: number, groups: number, readonly dropPathRate: number) {
    super();
    this.fc1 = this.addChild('fc1', convBn(channels, channels));
    this.fc2 = this.addChild('fc2', convBn(2 * channels, channels));
    this.graphConv = this.addChild('graph_conv', new GraphConv(channels, k, 1, groups, 1));
    this.ffn = this.addChild('ffn', new FFN(channels, dropPathRate));
  }
  forward(labels: Tensor, patches: Tensor): Tensor {
    const [B, C, S] = labels.shape;
    const l = F.reshape(labels, [B, C, S, 1]);
    const l0 = this.fc1.call(l);
    const q = F.reshape(l0, [B, C, S]);
    const p = F.reshape(patches, [B, C, -1]);
    const g = captured(this.graphConv, F.reshape(this.graphConv.aggregate(q, patches, this.graphConv.knn.run(q, p)), [B, 2 * C, S, 1]));
    const l1 = residualBranch(l, this.fc2, g, this.dropPathRate, this.training, this.generator);
    const l2 = this.ffn.call(l1);
    return capturedAs(this, F.reshape(l2, [B, C, S]), (t) => F.transpose(t, 1, 2));
  }
}
