// The PyTorch layers the models are made of, with PyTorch's parameter names and initialisations.
import { Tensor, Rng, F, perStep, isGradEnabled } from '../kernels/index.js';
import { Module, captured, capturedAs } from './module.js';

/** One generator for parameter initialisation, seeded per model build (construction order). */
let initRng = new Rng(0);
export function seedInit(seed: number): void {
  initRng = new Rng(seed);
}

function normal(shape: number[], std: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = initRng.normal() * std;
  return Tensor.from(v, shape);
}

/** U(−bound, bound) from the init generator. */
export function uniform(shape: number[], bound: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (initRng.uniform() * 2 - 1) * bound;
  return Tensor.from(v, shape);
}

const constant = (shape: number[], value: number) => Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape);

/** A module that maps one tensor to one tensor; `call` runs forward and the capture hook. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
  call(x: Tensor): Tensor {
    return captured(this, this.forward(x));
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
}

/** nn.Conv2d; weights kaiming-normal (fan-in, gain √2) and zero bias, as both official repos init. */
export class Conv2d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernel: number, readonly opts: Conv2dOptions = {}) {
    super();
    const groups = opts.groups ?? 1;
    if (inChannels % groups || outChannels % groups) {
      throw new Error(`Conv2d(${inChannels}, ${outChannels}, groups=${groups}): channels must be divisible by groups`);
    }
    const fanIn = (inChannels / groups) * kernel * kernel;
    this.weight = this.addParam('weight', normal([outChannels, inChannels / groups, kernel, kernel], Math.sqrt(2 / fanIn)));
    this.bias = opts.bias === false ? null : this.addParam('bias', constant([outChannels], 0));
  }
  forward(x: Tensor): Tensor {
    return this.convolve(x, this.weight, this.bias);
  }
  /**
   * bn(forward(x)) with bn in eval mode, as one convolution with folded weights (inference only);
   * plus `residual` in the convolution's store when given.
   */
  forwardFolded(x: Tensor, bn: BatchNorm2d, residual?: Tensor): Tensor {
    const [weight, bias] = F.foldBatchNorm(this.weight, this.bias, bn);
    const y = this.convolve(x, weight, bias, residual);
    weight.release();
    bias.release();
    return y;
  }
  private convolve(x: Tensor, weight: Tensor, bias: Tensor | null, residual?: Tensor): Tensor {
    return F.conv2d(x, weight, bias ?? undefined, {
      stride: this.opts.stride ?? 1,
      padding: this.opts.padding ?? 0,
      groups: this.opts.groups ?? 1,
      residual,
    });
  }
}

/** nn.BatchNorm2d (eps 1e-5, momentum 0.1); also used on B×C×S×1 label tensors. */
export class BatchNorm2d extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  numBatchesTracked = 0;
  private readonly countBatch = () => void this.numBatchesTracked++;
  constructor(readonly channels: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.addParam('weight', constant([channels], 1));
    this.bias = this.addParam('bias', constant([channels], 0));
    this.runningMean = this.addBuffer('running_mean', constant([channels], 0));
    this.runningVar = this.addBuffer('running_var', constant([channels], 1));
  }
  forward(x: Tensor): Tensor {
    return this.normalize(x, 'none');
  }
  /** gelu(forward(x)) in one pass; the BN output itself is never materialised. */
  forwardGelu(x: Tensor): Tensor {
    return this.normalize(x, 'gelu');
  }
  /** residual + mask·forward(x) in one pass (mask: drop path's, or null); forward's output is never materialised. */
  forwardResidual(x: Tensor, residual: Tensor, mask: Tensor | null): Tensor {
    return this.normalize(x, 'none', { residual, branchScale: mask ?? undefined });
  }
  private normalize(x: Tensor, activation: 'none' | 'gelu', add: { residual?: Tensor; branchScale?: Tensor } = {}): Tensor {
    // perStep: a replayed training step (engine/replay.ts) counts the batch too.
    if (this.training) perStep(this.countBatch);
    return F.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
      activation,
      ...add,
    });
  }
  protected override extraState(): Map<string, number> {
    return new Map([['num_batches_tracked', this.numBatchesTracked]]);
  }
  protected override loadExtraState(name: string, value: number): boolean {
    if (name !== 'num_batches_tracked') return false;
    this.numBatchesTracked = value;
    return true;
  }
}

/** nn.Linear on the last axis; PyTorch's default init U(±1/√in) unless `std` is given (normal). */
export class Linear extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly inFeatures: number, readonly outFeatures: number, init: { std?: number } = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.addParam('weight', init.std !== undefined ? normal([outFeatures, inFeatures], init.std) : uniform([outFeatures, inFeatures], bound));
    this.bias = this.addParam('bias', init.std !== undefined ? constant([outFeatures], 0) : uniform([outFeatures], bound));
  }
  forward(x: Tensor): Tensor {
    const lead = x.shape.slice(0, -1);
    const flat = F.reshape(x, [-1, this.inFeatures]);
    const y = F.matmul(flat, this.weight, { transB: true, bias: this.bias, biasMode: 'col' });
    return F.reshape(y, [...lead, this.outFeatures]);
  }
  /**
   * The same map over the features of x [B, inFeatures, N] kept channels first (as a 1×1 convolution
   * with this weight): [B, outFeatures, N], no transposes. Called in place of call(); the tracer sees
   * the official layout, [B, N, outFeatures].
   */
  callChannelsFirst(x: Tensor): Tensor {
    const [B, C, N] = x.shape;
    const w = F.reshape(this.weight, [this.outFeatures, C, 1, 1]);
    const y = F.reshape(F.conv2d(F.reshape(x, [B, C, N, 1]), w, this.bias), [B, this.outFeatures, N]);
    return capturedAs(this, y, (t) => F.transpose(t, 1, 2));
  }
}

/** nn.Embedding's table, N(0, 1). */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.addParam('weight', normal([num, dim], 1));
  }
}

export class GELU extends Layer {
  forward(x: Tensor): Tensor {
    return F.gelu(x);
  }
}

/** Dropout with p = 0 as in the official heads: identity, kept to hold its index in Sequential. */
export class Identity extends Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * nn.Sequential: children named 0, 1, 2, … A BatchNorm2d followed by a GELU runs as one fused pass
 * (a tracer sees the GELU's output, not the BN's). After eval({ foldBatchNorm: true }), a Conv2d
 * followed by a BatchNorm2d runs as one convolution when no gradient is recorded (a tracer sees the
 * BN's output, not the conv's), unless a GELU follows the BN (BN + GELU stay one pass).
 */
export class Sequential extends Layer {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers.map((l, i) => this.addChild(String(i), l));
  }
  forward(x: Tensor): Tensor {
    return this.through(x, this.layers.length);
  }
  /** gelu(call(x)); when the last layer is a BatchNorm2d it applies the GELU in its own pass (then
   * neither its output nor this module's is materialised, and a tracer sees neither). */
  callGelu(x: Tensor): Tensor {
    const last = this.layers[this.layers.length - 1];
    if (!(last instanceof BatchNorm2d)) return F.gelu(this.call(x));
    return last.forwardGelu(this.through(x, this.layers.length - 1));
  }
  /**
   * residual + dropPath(call(x)): with drop path's per-sample `mask` (null: none). When the last
   * layer is a BatchNorm2d, it adds the residual in its own pass (neither its output nor this
   * module's is materialised, and a tracer sees neither: with a tracer the sum is made afterwards);
   * when that BN folds into its convolution, the convolution adds it in its store.
   */
  callResidual(x: Tensor, residual: Tensor, mask: Tensor | null): Tensor {
    const n = this.layers.length;
    const last = this.layers[n - 1];
    if (!(last instanceof BatchNorm2d) || this.tracer) return addBranch(residual, this.call(x), mask);
    if (!mask && this.folds(n - 2, n)) return (this.layers[n - 2] as Conv2d).forwardFolded(this.through(x, n - 2), last, residual);
    return last.forwardResidual(this.through(x, n - 1), residual, mask);
  }
  /**
   * Whether layers i and i + 1 (of [0, end)) run as one convolution with folded BatchNorm weights. A
   * BN that a GELU follows keeps its fused BN + GELU pass instead: folding would leave a GELU pass
   * over the same bytes, plus the fold's.
   */
  private folds(i: number, end: number): boolean {
    const [conv, bn, after] = this.layers.slice(i, i + 3);
    return this.foldBatchNorm && !this.training && i + 1 < end && conv instanceof Conv2d && bn instanceof BatchNorm2d &&
      !(i + 2 < end && after instanceof GELU) && !isGradEnabled();
  }
  /** x through layers [0, end). */
  private through(x: Tensor, end: number): Tensor {
    let y = x;
    for (let i = 0; i < end; i++) {
      const l = this.layers[i];
      const next = this.layers[i + 1];
      if (this.folds(i, end)) {
        y = captured(next, (l as Conv2d).forwardFolded(y, next as BatchNorm2d));
        i++;
      } else if (l instanceof BatchNorm2d && next instanceof GELU && i + 1 < end) {
        y = captured(next, l.forwardGelu(y));
        i++;
      } else {
        y = l.call(y);
      }
    }
    return y;
  }
}

/** A learnable tensor initialised to a constant or N(0, std²). */
export function parameterTensor(shape: number[], init: { value?: number; std?: number }): Tensor {
  return init.std !== undefined ? normal(shape, init.std) : constant(shape, init.value ?? 0);
}

/** timm DropPath: each sample's residual branch scaled by Bernoulli(1−p)/(1−p) in training. */
export function dropPath(x: Tensor, p: number, training: boolean, rng: Rng | null): Tensor {
  const mask = dropPathMask(x, p, training, rng);
  return mask ? F.mul(x, mask) : x;
}

/** x + dropPath(y): a residual and its branch in one pass (addcmul with the per-sample mask). */
export function residualDropPath(x: Tensor, y: Tensor, p: number, training: boolean, rng: Rng | null): Tensor {
  return addBranch(x, y, dropPathMask(y, p, training, rng));
}

/** x + branch(input) with drop path: the branch a Sequential, which adds the residual itself where it can (Sequential.callResidual). */
export function residualBranch(x: Tensor, branch: Sequential, input: Tensor, p: number, training: boolean, rng: Rng | null): Tensor {
  return branch.callResidual(input, x, dropPathMask(x, p, training, rng));
}

function addBranch(x: Tensor, y: Tensor, mask: Tensor | null): Tensor {
  return mask ? F.addcmul(x, y, mask) : F.add(x, y);
}

/**
 * Per sample of x, 0 (dropped, with probability p) or 1 / (1 − p), shaped [B, 1, …] to broadcast;
 * null outside training or at p = 0 (the identity).
 */
function dropPathMask(x: Tensor, p: number, training: boolean, rng: Rng | null): Tensor | null {
  if (!training || p <= 0) return null;
  if (!rng) throw new Error(`drop path ${p} in training mode needs a generator: call model.setGenerator(new Rng(seed)) first`);
  const B = x.shape[0];
  const keepProb = 1 - p;
  // A producer, so that a replayed step (engine/replay.ts) draws a fresh mask each step.
  const draw = () => {
    const mask = new Float32Array(B);
    for (let b = 0; b < B; b++) mask[b] = rng.uniform() < keepProb ? 1 / keepProb : 0;
    return mask;
  };
  return Tensor.fromProducer([B, ...x.shape.slice(1).map(() => 1)], draw, 'drop path mask');
}

/** nn.ModuleList: children named 0, 1, 2, … (any module type). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.addChild(String(i), m));
  }
}
