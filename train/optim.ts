// AdamW with torch.optim.AdamW's semantics (spec training.md §5) and global-norm gradient clipping
// fused into the same step, plus a standalone clipGradNorm. Nothing here reads the GPU back during
// a step: the norm, the clip scale and a non-finite flag stay on the GPU until asked for.
// GPU side and the flat-buffer design: kernels/adamw.ts.
import { Tensor } from '../engine/tensor.js';
import { device, keep } from '../engine/context.js';
import { FusedAdamW, FlatGrads } from '../kernels/adamw.js';
import type { GradScaler } from '../kernels/grad-scaler.js';
import { firstNonFinite, type StateEntry } from '../models/module.js';

export interface ParamGroup {
  params: Tensor[];
  lr?: number;
  weightDecay?: number;
}

/** AdamW groups of spec training.md §5: weight decay on weights, none on norms and biases (every 1-D parameter). */
export function decayGroups(params: Tensor[], weightDecay: number): ParamGroup[] {
  return [
    { params: params.filter((t) => t.rank > 1), weightDecay },
    { params: params.filter((t) => t.rank <= 1), weightDecay: 0 },
  ];
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /**
   * Leave parameters and moments untouched in a step whose gradient norm is NaN or ±Inf (default
   * true; torch would write NaNs). The per-parameter step counters still advance (not with a
   * `scaler`, whose skipped steps count nothing, as in torch).
   */
  skipNonFinite?: boolean;
  /** Elements per flat bucket (default: the most one storage binding holds); tests lower it. */
  bucketElements?: number;
  /**
   * Move the parameters into the optimizer's flat buffers (default true): the update then works in
   * place, with no per-parameter copies (kernels/adamw.ts, FusedAdamW.adopt).
   */
  arena?: boolean;
  /**
   * Dynamic loss scaling (--precision mixed): the gradients arrive multiplied by the scaler's scale
   * (backward seeded with GradScaler.seed) and are unscaled before clipping; a step whose gradients
   * hold inf/NaN changes neither parameters, moments nor step counts, and the scale backs off. The
   * step counts then live on the GPU (torch's fused AdamW with a GradScaler) and the bias
   * corrections are computed there in f32.
   */
  scaler?: GradScaler;
}

export interface StepOptions {
  /** Clip the global L2 norm of all gradients to this value first (torch clip_grad_norm_). */
  maxGradNorm?: number;
  /** Added to the norm in the clip factor maxGradNorm / (norm + clipEps). */
  clipEps?: number;
}

export interface StepStats {
  /** Global L2 norm of the step's gradients, before clipping. */
  gradNorm: number;
  /** Factor the gradients were multiplied by (1 without clipping or below the max). */
  clipScale: number;
  /** The norm was NaN or ±Inf (and, with skipNonFinite, the step changed nothing). */
  nonFinite: boolean;
}

export interface ResolvedGroup {
  params: Tensor[];
  lr: number;
  weightDecay: number;
}

interface Slot {
  param: Tensor;
  /** State-dict prefix: the tensor's name, or `param<i>` for unnamed tensors (i over all given params). */
  name: string;
  group: ResolvedGroup;
  /** torch's per-parameter state['step']: steps in which this parameter had a gradient (unused with a scaler: see `steps`). */
  step: number;
}

const MOMENTS = ['exp_avg', 'exp_avg_sq', 'step'] as const;
/** The loss scaler's state (torch's scaler.state_dict(): scale, _growth_tracker), with a scaler. */
const SCALER_KEYS = ['grad_scaler.scale', 'grad_scaler.growth_tracker'] as const;

export class AdamW {
  readonly paramGroups: ResolvedGroup[];
  readonly betas: readonly [number, number];
  readonly eps: number;
  private readonly slots: Slot[] = [];
  private readonly fused: FusedAdamW;
  private readonly hyper: Float32Array;
  private readonly scaler: GradScaler | null;
  /** With a scaler: each slot's step count (f32, on the GPU). */
  private readonly steps: Tensor | null;

  /**
   * `params`: tensors or groups `{ params, lr?, weightDecay? }` (unset fields take the options').
   * Tensors with requiresGrad false (e.g. the frozen relative_pos tables) get no state and are
   * never touched.
   */
  constructor(params: Tensor[] | ParamGroup[], { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, skipNonFinite = true, bucketElements, arena = true, scaler }: AdamWOptions = {}) {
    check(lr >= 0, `AdamW: invalid learning rate ${lr}`);
    check(eps >= 0, `AdamW: invalid eps ${eps}`);
    check(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1, `AdamW: invalid betas [${betas.join(', ')}]`);
    const groups: ParamGroup[] = params.length && params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ParamGroup[]);
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.paramGroups = groups.map((g, gi) => {
      const r = { params: [...g.params], lr: g.lr ?? lr, weightDecay: g.weightDecay ?? weightDecay };
      check(r.lr >= 0 && r.weightDecay >= 0, `AdamW: group ${gi}: invalid lr ${r.lr} or weightDecay ${r.weightDecay}`);
      return r;
    });
    const seen = new Set<Tensor>();
    const names = new Set<string>();
    let index = 0;
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        const i = index++;
        check(p instanceof Tensor && p.dtype === 'f32', `AdamW: parameter ${i} is not an f32 tensor`);
        check(!seen.has(p), `AdamW: parameter ${i} (${p.describe()}) appears twice`);
        seen.add(p);
        if (!p.requiresGrad) continue;
        const name = p.name || `param${i}`;
        check(!names.has(name), `AdamW: two parameters are named ${name}`);
        names.add(name);
        this.slots.push({ param: p, name, group: g, step: 0 });
      }
    }
    this.fused = new FusedAdamW(
      this.slots.map((s) => s.param.size),
      { beta1: betas[0], beta2: betas[1], eps, skipNonFinite },
      bucketElements,
    );
    if (arena) this.fused.adopt(this.slots.map((s) => s.param));
    this.hyper = new Float32Array(this.fused.hyper.size);
    this.scaler = scaler ?? null;
    this.steps = scaler ? keep(Tensor.from(new Float32Array(Math.max(1, this.slots.length)), [Math.max(1, this.slots.length)])) : null;
  }

  /** The first group's learning rate. */
  get lr(): number {
    return this.paramGroups[0]?.lr ?? 0;
  }

  /** Set every group's learning rate (what a scheduler does each iteration). */
  set lr(v: number) {
    check(v >= 0, `AdamW: invalid learning rate ${v}`);
    for (const g of this.paramGroups) g.lr = v;
  }

  /**
   * One AdamW step over every parameter that has a gradient (the others, and their step counts,
   * are left alone), optionally clipping the global gradient norm first. Encodes GPU work only.
   */
  step({ maxGradNorm, clipEps = 1e-6 }: StepOptions = {}): void {
    if (maxGradNorm !== undefined) check(maxGradNorm >= 0, `AdamW.step: invalid maxGradNorm ${maxGradNorm}`);
    const params: (Tensor | null)[] = [];
    const grads: (Tensor | null)[] = [];
    const active: boolean[] = [];
    for (const s of this.slots) {
      const g = s.param.grad;
      const on = g !== null && s.param.requiresGrad;
      params.push(on ? s.param : null);
      grads.push(on ? g : null);
      active.push(on);
    }
    if (!grads.some((g) => g)) return;
    // The learning rate, the step counts and the bias corrections reach the GPU as data (the
    // `hyper` buffer), through a producer: a replayed step (engine/replay.ts) calls it again.
    const hyper = () => this.stepHyper(active);
    device().write(this.fused.hyper.pooled, hyper(), 0, hyper);
    this.fused.step(params, grads, maxGradNorm ?? null, clipEps, this.scaler ? { scaler: this.scaler, steps: this.steps! } : undefined);
  }

  /** Advance the step count of the active slots and fill `hyper` with this step's per-slot values. */
  private stepHyper(active: readonly boolean[]): Float32Array {
    const [b1, b2] = this.betas;
    const h = this.hyper;
    for (let i = 0; i < this.slots.length; i++) {
      if (!active[i]) {
        h.fill(0, 4 * i, 4 * i + 4);
        continue;
      }
      const s = this.slots[i];
      const { lr, weightDecay } = s.group;
      // Float64 scalars rounded once to float32, as torch hands them to its float kernels.
      h[4 * i] = 1;
      h[4 * i + 1] = 1 - lr * weightDecay;
      if (this.scaler) {
        // The step count and bias corrections are the GPU's (grad-scaler.wgsl's gate).
        h[4 * i + 2] = lr;
        continue;
      }
      s.step++;
      h[4 * i + 2] = lr / (1 - b1 ** s.step);
      h[4 * i + 3] = Math.sqrt(1 - b2 ** s.step);
    }
    return h;
  }

  /** Release every gradient (set_to_none, torch's default). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        p.grad?.release();
        p.grad = null;
      }
    }
  }

  /** (gradient norm, clip scale, non-finite flag) of the last step that had gradients, on the GPU. */
  get stats(): Tensor {
    return this.fused.stats;
  }

  /** Read the last step's statistics back (waits for the GPU; call after the step, not inside it). */
  async readStats(): Promise<StepStats> {
    const [gradNorm, clipScale, flag] = await this.fused.stats.toArray();
    return { gradNorm, clipScale, nonFinite: flag !== 0 };
  }

  /** Steps taken by one parameter (torch's state['step']); with a scaler they are on the GPU: see stateDict(). */
  stepCount(param: Tensor): number {
    const s = this.slots.find((x) => x.param === param);
    if (!s) throw new Error(`AdamW.stepCount: ${param.describe()} is not a trainable parameter of this optimizer`);
    if (this.scaler) throw new Error('AdamW.stepCount: with a loss scaler the step counts live on the GPU; read them with stateDict()');
    return s.step;
  }

  /** Every slot's step count. */
  private async stepCounts(): Promise<number[]> {
    if (!this.steps) return this.slots.map((s) => s.step);
    return [...(await this.steps.toArray())].slice(0, this.slots.length);
  }

  /** `<name>.exp_avg`, `<name>.exp_avg_sq` (parameter shape) and `<name>.step` (int32 scalar) per parameter. */
  async stateDict(): Promise<Map<string, StateEntry>> {
    const moments = await this.fused.readMoments();
    const steps = await this.stepCounts();
    const out = new Map<string, StateEntry>();
    this.slots.forEach((s, i) => {
      const shape = [...s.param.shape];
      out.set(`${s.name}.exp_avg`, { shape, data: moments[i].expAvg });
      out.set(`${s.name}.exp_avg_sq`, { shape, data: moments[i].expAvgSq });
      out.set(`${s.name}.step`, { shape: [], data: Int32Array.of(steps[i]) });
    });
    if (this.scaler) {
      const { scale, growthTracker } = await this.scaler.read();
      out.set(SCALER_KEYS[0], { shape: [], data: Float32Array.of(scale) });
      out.set(SCALER_KEYS[1], { shape: [], data: Int32Array.of(growthTracker) });
    }
    return out;
  }

  /** Restore what stateDict() returned. With `strict`, missing or unexpected keys throw. */
  loadStateDict(state: Map<string, StateEntry>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const missing: string[] = [];
    const known = new Set<string>();
    this.slots.forEach((s, i) => {
      const keys = MOMENTS.map((k) => `${s.name}.${k}`);
      keys.forEach((k) => known.add(k));
      const [m, v, step] = keys.map((k) => state.get(k));
      if (!m || !v || !step) {
        missing.push(...keys.filter((k) => !state.has(k)));
        return;
      }
      for (const [k, e] of [[keys[0], m], [keys[1], v]] as const) {
        if (!(e.data instanceof Float32Array) || e.data.length !== s.param.size) {
          throw new Error(`AdamW.loadStateDict: ${k} has ${e.data.length} ${e.data.constructor.name} values, parameter ${s.param.describe()} needs f32`);
        }
        const bad = firstNonFinite(e.data);
        if (bad >= 0) throw new Error(`tensor "optimizer.${k}" holds ${e.data[bad]} at element ${bad}; refusing to load a corrupt optimizer state`);
      }
      if (step.data.length !== 1) throw new Error(`AdamW.loadStateDict: ${keys[2]} has ${step.data.length} values, expected 1`);
      this.fused.writeMoments(i, m.data as Float32Array, v.data as Float32Array);
      s.step = step.data[0];
    });
    if (this.steps) this.steps.write(Float32Array.from({ length: this.steps.size }, (_, i) => this.slots[i]?.step ?? 0));
    if (this.scaler) {
      SCALER_KEYS.forEach((k) => known.add(k));
      const [scale, tracker] = SCALER_KEYS.map((k) => state.get(k));
      if (!scale || !tracker) missing.push(...SCALER_KEYS.filter((k) => !state.has(k)));
      else this.scaler.write(scale.data[0], tracker.data[0]);
    }
    const unexpected = [...state.keys()].filter((k) => !known.has(k));
    if (strict && (missing.length || unexpected.length)) {
      throw new Error(`AdamW.loadStateDict: missing [${missing.slice(0, 8).join(', ')}] unexpected [${unexpected.slice(0, 8).join(', ')}]`);
    }
    return { missing, unexpected };
  }

  /** Free the optimizer's GPU buffers (the parameters stay). */
  release(): void {
    this.fused.release();
    this.steps?.release();
  }
}

let clipCache: { key: string; flat: FlatGrads } | null = null;

/**
 * torch.nn.utils.clip_grad_norm_: the global L2 norm over the gradients of `params` (those that have
 * one), then every gradient × min(1, maxNorm / (norm + eps)) in place, all on the GPU. Returns the
 * norm as a 1-element tensor (NaN/Inf when a gradient is not finite). The flat layout is cached for
 * the last parameter list, so repeated calls create no GPU objects. AdamW.step({ maxGradNorm })
 * does the same without the extra copies.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, eps = 1e-6): Tensor {
  check(maxNorm >= 0, `clipGradNorm: invalid maxNorm ${maxNorm}`);
  const withGrad = params.filter((p) => p.grad);
  const grads = withGrad.map((p) => p.grad!);
  const key = grads.map((g, i) => `${withGrad[i].id}:${g.size}`).join();
  if (clipCache?.key !== key) {
    clipCache?.flat.release();
    const flat = new FlatGrads(grads.map((g) => g.size));
    // Every slot is active; only hyper's first component matters for the norm.
    flat.hyper.write(Float32Array.from({ length: flat.hyper.size }, (_, i) => (i % 4 === 0 ? 1 : 0)));
    clipCache = { key, flat };
  }
  const flat = clipCache.flat;
  flat.gather(grads);
  flat.norm(maxNorm, eps);
  flat.scatterScaled(grads);
  const norm = Tensor.empty([1], 'f32', 'clipGradNorm');
  device().copy(flat.stats.pooled, 0, norm.pooled, 0, 4);
  return norm;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}
