// A small Module base in the PyTorch spirit: named parameters, buffers and children, so that the
// state dict keys equal the official ones (`backbone.backbone.0.0.fc1.0.weight`, …).
import { Tensor, keep, type Shape, type Rng } from '../kernels/index.js';

export interface StateEntry {
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface LoadResult {
  missing: string[];
  unexpected: string[];
  /** Keys present in both whose shapes differ (skipped, as mmcv's non-strict loading does). */
  mismatched: string[];
}

/**
 * Observes a model's forward pass from outside (e.g. a parity harness): each traced module's output
 * by path, and for each KNN module, stored neighbour indices to use instead of its own and a look at
 * the ones it computed. Set on a whole model with `setTracer`; model code holds no global hook state.
 */
export interface ForwardTracer {
  output?(path: string, out: Tensor): void;
  /** Indices to use at this KNN module instead of computing them (null: compute). */
  neighbours?(path: string): Tensor | null;
  /** When present, a KNN module computes its own indices even when injected ones are used. */
  ownNeighbours?(path: string, indices: Tensor): void;
  /**
   * Sees the inputs of a max-relative aggregation at MRConv module `path` (queries B×C×N, sources
   * B×C×M, indices B·G×N×k); may return the slot to take per (b, c, n) instead of the argmax.
   */
  maxRelative?(path: string, queries: Tensor, sources: Tensor, indices: Tensor): Tensor | null;
}

/** Options of Module.eval(). */
export interface EvalOptions {
  /**
   * Run each Conv2d followed by a BatchNorm2d (in a Sequential) as one convolution whose weights
   * fold in the running statistics (F.foldBatchNorm), when no gradient is recorded: one pass over
   * the activations fewer per pair. Outputs match the unfolded pair up to rounding, so this is for
   * inference where speed matters more than bitwise parity with PyTorch's eval. Default false.
   */
  foldBatchNorm?: boolean;
}

export class Module {
  training = true;
  /** Set by eval({ foldBatchNorm: true }), cleared by train(). */
  foldBatchNorm = false;
  /** Dotted path from the root, set when attached as a child (e.g. `backbone.backbone.3.0`). */
  path = '';
  tracer: ForwardTracer | null = null;
  /** Training-time randomness (drop path): one seeded generator shared by the model, see setGenerator. */
  generator: Rng | null = null;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  protected addParam(name: string, t: Tensor, trainable = true): Tensor {
    t.name = this.qualify(name);
    if (trainable) t.param(t.name);
    else keep(t);
    this._params.set(name, t);
    return t;
  }

  protected addBuffer(name: string, t: Tensor): Tensor {
    t.name = this.qualify(name);
    this._buffers.set(name, keep(t));
    return t;
  }

  protected addChild<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    m.setPath(this.qualify(name));
    return m;
  }

  private qualify(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  private setPath(p: string): void {
    this.path = p;
    for (const [n, t] of this._params) t.name = this.qualify(n);
    for (const [n, t] of this._buffers) t.name = this.qualify(n);
    for (const [n, c] of this._children) c.setPath(this.qualify(n));
  }

  *namedChildren(): Iterable<[string, Module]> {
    yield* this._children;
  }

  /** Every parameter with its official name, including frozen ones (as PyTorch's named_parameters). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._params) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that an optimizer updates. */
  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, t]) => t.requiresGrad);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._buffers) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  *modules(): Iterable<Module> {
    yield this;
    for (const c of this._children.values()) yield* c.modules();
  }

  train(mode = true): this {
    for (const m of this.modules()) {
      m.training = mode;
      if (mode) m.foldBatchNorm = false;
    }
    return this;
  }

  eval({ foldBatchNorm = false }: EvalOptions = {}): this {
    for (const m of this.modules()) {
      m.training = false;
      m.foldBatchNorm = foldBatchNorm;
    }
    return this;
  }

  /** Extra non-tensor state saved with the tensors (BatchNorm's num_batches_tracked). */
  protected extraState(): Map<string, number> {
    return new Map();
  }

  protected loadExtraState(_name: string, _value: number): boolean {
    return false;
  }

  /** All tensors by official name: parameters, buffers and extra state, read back to the CPU. */
  async stateDict(): Promise<Map<string, StateEntry>> {
    const out = new Map<string, StateEntry>();
    const tensors = [...this.namedParameters(), ...this.namedBuffers()];
    // One staging buffer and one wait for all of them, instead of a read-back per tensor.
    const data = await Tensor.readAll(tensors.map(([, t]) => t));
    tensors.forEach(([n, t], i) => out.set(n, { shape: [...t.shape], data: data[i] }));
    for (const [prefix, m] of this.namedModules()) {
      for (const [k, v] of m.extraState()) out.set(prefix + k, { shape: [], data: Int32Array.of(v) });
    }
    return out;
  }

  *namedModules(prefix = ''): Iterable<[string, Module]> {
    yield [prefix, this];
    for (const [n, c] of this._children) yield* c.namedModules(`${prefix}${n}.`);
  }

  /**
   * Load tensors by official name. Shape mismatches are skipped and reported (mmcv's non-strict
   * behaviour); with `strict`, missing or unexpected keys throw. Keys listed by `derived()` may be
   * missing: they are rebuilt from the architecture (e.g. relative_pos tables).
   */
  loadStateDict(state: Map<string, StateEntry>, { strict = true } = {}): LoadResult {
    const res: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    const own = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
    const extras = new Map<string, [Module, string]>();
    for (const [prefix, m] of this.namedModules()) for (const k of m.extraState().keys()) extras.set(prefix + k, [m, k]);
    const derived = new Set(this.derivedKeys());
    for (const [k, v] of state) {
      const t = own.get(k);
      if (t) {
        if (t.shape.join() !== v.shape.join() && !(t.size === v.data.length && t.size === 1)) {
          res.mismatched.push(`${k}: checkpoint [${v.shape.join(',')}] vs model [${t.shape.join(',')}]`);
          continue;
        }
        checkStateEntry(k, v, t.dtype === 'f32' ? 'f32' : 'i32');
        t.write(v.data);
      } else if (extras.has(k)) {
        const [m, name] = extras.get(k)!;
        checkStateEntry(k, v, 'i32');
        m.loadExtraState(name, v.data[0]);
      } else res.unexpected.push(k);
    }
    for (const k of [...own.keys(), ...extras.keys()]) if (!state.has(k) && !derived.has(k)) res.missing.push(k);
    if (strict && (res.missing.length || res.unexpected.length || res.mismatched.length)) {
      const parts = [
        res.missing.length ? `missing: ${res.missing.slice(0, 8).join(', ')}${res.missing.length > 8 ? ` (+${res.missing.length - 8})` : ''}` : '',
        res.unexpected.length ? `unexpected: ${res.unexpected.slice(0, 8).join(', ')}${res.unexpected.length > 8 ? ` (+${res.unexpected.length - 8})` : ''}` : '',
        res.mismatched.length ? `shape mismatch: ${res.mismatched.slice(0, 4).join('; ')}` : '',
      ].filter(Boolean);
      throw new Error(`loadStateDict: ${parts.join('; ')}`);
    }
    return res;
  }

  /** Keys that the architecture rebuilds by itself, so a checkpoint may omit them. */
  derivedKeys(): string[] {
    const out: string[] = [];
    for (const [prefix, m] of this.namedModules()) for (const k of m.ownDerivedKeys()) out.push(prefix + k);
    return out;
  }

  protected ownDerivedKeys(): string[] {
    return [];
  }

  /** Draw this module's and every submodule's training-time randomness from `rng`. */
  setGenerator(rng: Rng): void {
    for (const [, m] of this.namedModules()) m.generator = rng;
  }

  /** Trace this module and every submodule with `tracer` (null: stop tracing). */
  setTracer(tracer: ForwardTracer | null): void {
    for (const [, m] of this.namedModules()) m.tracer = tracer;
  }

  /** Release every parameter and buffer. */
  release(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.release();
  }
}

/** The first element of `data` that is NaN or ±Infinity, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/**
 * Refuses, naming the tensor, a state entry that would load plausible-looking garbage: a float
 * tensor stored with an integer dtype (or the reverse), or float values that are NaN or infinite.
 */
export function checkStateEntry(name: string, e: StateEntry, want: 'f32' | 'i32'): void {
  const got = e.data instanceof Float32Array ? 'f32' : e.data instanceof Int32Array ? 'i32' : 'other';
  if (got !== want) {
    const on = got === 'f32' ? 'a float dtype' : got === 'i32' ? 'an integer dtype' : `${(e.data as object).constructor.name} data`;
    throw new Error(`tensor "${name}" is stored with ${on}; the model expects ${want === 'f32' ? 'floats (F32, F16, BF16 or F64)' : 'integers (I64 or I32)'}`);
  }
  if (want === 'f32') {
    const i = firstNonFinite(e.data);
    if (i >= 0) {
      let count = 0;
      for (let j = i; j < e.data.length; j++) if (!Number.isFinite(e.data[j])) count++;
      throw new Error(`tensor "${name}" holds ${e.data[i]} (${count} of its ${e.data.length} values are not finite, the first at element ${i}); refusing to load corrupt weights`);
    }
  }
}

/** Show `out`, the output of module `m`, to the model's tracer if it has one. */
export function captured<T extends Tensor>(m: Module, out: T): T {
  m.tracer?.output?.(m.path, out);
  return out;
}

/**
 * captured() for an output kept in another layout than the official module's (e.g. channels first):
 * the tracer sees `official(out)`, which is only computed when there is a tracer.
 */
export function capturedAs<T extends Tensor>(m: Module, out: T, official: (out: T) => Tensor): T {
  if (m.tracer?.output) m.tracer.output(m.path, official(out));
  return out;
}

export type { Shape };
