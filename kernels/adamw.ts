// Flat, chunk-aligned storage and the launches of adamw.wgsl: a fused AdamW step and a global-norm
// gradient reduction over any number of parameters in a fixed, small number of dispatches.
//
// The parameters live in the flat buffers (FusedAdamW.adopt: the parameter arena, each parameter a
// view bound at its slot's offset), so the update works in place. Most gradients come out of
// backward in their slots of the flat gradient buffer (their homes; split weight gradients are
// summed into them with flat-gather.wgsl at the end of backward); a step gathers the others in (8
// per dispatch, in the step's compute pass), dispatches the norm partials and the update once per
// bucket plus one final norm (3 dispatches when everything fits one binding, the usual case).
// Parameters that could not move (another view shares their storage) are gathered in and copied
// back out each step.
// The moments live only in the flat buffers. Each parameter starts on a CHUNK boundary so a
// chunk → slot table finds a thread's parameter in O(1); the padding stays zero.
import { Tensor } from '../engine/tensor.js';
import { device, keep } from '../engine/context.js';
import { launch, f32bits, grid1d } from '../engine/launch.js';
import { fillInto } from './fill.js';
import { gather, gatherFits, type GatherItem } from './flat-gather.js';
import type { GradScaler } from './grad-scaler.js';

/** Elements per chunk; must match CHUNK in adamw.wgsl. */
export const ADAMW_CHUNK = 1024;
/**
 * CPU adapters (the *4 entries, whole vec4s): lanes per workgroup of the norm's chunks (a reduction
 * tree level is a coroutine switch per SIMD row there) and of the update.
 */
const CPU_WG = { norm: 8, update: 64 } as const;

export interface FlatSlot {
  bucket: number;
  /** Element offset of the slot inside its bucket's flat buffers. */
  offset: number;
  size: number;
}

export interface FlatBucket {
  /** Padded elements (a multiple of ADAMW_CHUNK). */
  elements: number;
  /** Index of the bucket's first chunk among all chunks. */
  chunkBase: number;
}

/** Hyperparameters that stay fixed for the optimizer's life (they go in a cached uniform). */
export interface AdamWConstants {
  beta1: number;
  beta2: number;
  eps: number;
  skipNonFinite: boolean;
}

/** Largest bucket (elements) that binds as one storage buffer on this device. */
export function maxBucketElements(): number {
  const l = device().limits;
  const bytes = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize);
  return Math.floor(bytes / 4 / ADAMW_CHUNK) * ADAMW_CHUNK;
}

/**
 * Gradients of a fixed list of tensors ("slots") in flat buffers: gather, one deterministic global
 * L2 norm with clip scale and non-finite flag (all on the GPU), scale and scatter back.
 */
export class FlatGrads {
  readonly slots: FlatSlot[] = [];
  readonly buckets: FlatBucket[] = [];
  readonly chunks: number;
  /** chunk → slot (u32). */
  readonly owner: Tensor;
  /** Per slot (active, 1 − lr·wd, lr / bc1, sqrt(bc2)); only `active` matters for the norm. */
  readonly hyper: Tensor;
  /** (norm, clip scale, non-finite flag) of the last norm(). */
  readonly stats: Tensor;
  protected readonly grad: Tensor[];
  private readonly partials: Tensor;

  constructor(sizes: number[], bucketLimit = maxBucketElements()) {
    const limit = Math.floor(bucketLimit / ADAMW_CHUNK) * ADAMW_CHUNK;
    const owner: number[] = [];
    sizes.forEach((size, i) => {
      const padded = Math.ceil(size / ADAMW_CHUNK) * ADAMW_CHUNK;
      if (padded > limit) {
        throw new Error(`adamw: parameter ${i} has ${size} elements, more than one binding holds (${limit})`);
      }
      let b = this.buckets[this.buckets.length - 1];
      if (!b || b.elements + padded > limit) {
        b = { elements: 0, chunkBase: owner.length };
        this.buckets.push(b);
      }
      this.slots.push({ bucket: this.buckets.length - 1, offset: b.elements, size });
      b.elements += padded;
      for (let c = 0; c < padded / ADAMW_CHUNK; c++) owner.push(i);
    });
    this.chunks = owner.length;
    this.owner = keep(Tensor.from(Uint32Array.from(owner), [owner.length], 'u32'));
    this.hyper = keep(Tensor.empty([Math.max(1, sizes.length) * 4], 'f32', 'adamw.hyper'));
    this.hyper.write(new Float32Array(this.hyper.size));
    this.stats = keep(Tensor.empty([3], 'f32', 'adamw.stats'));
    this.partials = keep(Tensor.empty([this.chunks], 'f32', 'adamw.partials'));
    this.grad = this.flat('adamw.grad');
  }

  /** One zero-filled flat buffer per bucket. */
  protected flat(label: string): Tensor[] {
    return this.buckets.map((b) => {
      const t = keep(Tensor.empty([b.elements], 'f32', label));
      fillInto(t, 0);
      return t;
    });
  }

  /**
   * Copy each non-null tensor into its slot of `flats`: up to GATHER tensors of one bucket per
   * dispatch of flat-gather.wgsl (kernels/flat-gather.ts); a tensor too large for one dispatch row
   * is copied with a buffer copy.
   */
  protected copyIn(tensors: (Tensor | null)[], flats: Tensor[]): void {
    const items: GatherItem[] = [];
    tensors.forEach((t, i) => {
      const s = this.slots[i];
      if (!t || s.size === 0) return;
      this.checkSlot(t, i);
      const flat = flats[s.bucket];
      const byteOffset = flat.byteOffset + s.offset * 4;
      // Already in its slot (a gradient that backward wrote into its home).
      if (t.pooled === flat.pooled && t.byteOffset === byteOffset) return;
      if (gatherFits(s.size)) items.push({ src: t, chunks: 1, stride: s.size, n: s.size, dst: flat.pooled, byteOffset, owner: flat });
      else device().copy(t.pooled, t.byteOffset, flat.pooled, byteOffset, s.size * 4);
    });
    gather(items, 'gather into the flat buffers');
  }

  protected copyOut(flats: Tensor[], tensors: (Tensor | null)[]): void {
    const dev = device();
    tensors.forEach((t, i) => {
      const s = this.slots[i];
      if (!t || s.size === 0) return;
      dev.copy(flats[s.bucket].pooled, s.offset * 4, t.pooled, t.byteOffset, s.size * 4);
    });
  }

  protected checkSlot(t: Tensor, i: number): void {
    t.assertAlive('adamw');
    if (t.dtype !== 'f32' || t.size !== this.slots[i].size) {
      throw new Error(`adamw: slot ${i} holds ${this.slots[i].size} f32 elements, got ${t.describe()}`);
    }
  }

  /** Gather the gradients of the active slots (null: inactive, skipped by everything below). */
  gather(grads: (Tensor | null)[]): void {
    this.copyIn(grads, this.grad);
  }

  /** Global L2 norm of the active gradients → stats; clip scale min(1, maxNorm / (norm + eps)) unless maxNorm is null. */
  norm(maxNorm: number | null, eps: number): void {
    const cpu = device().kernelProfile === 'cpu';
    this.buckets.forEach((b, k) => {
      launch({
        file: 'adamw.wgsl',
        entry: cpu ? 'norm_partial4' : 'norm_partial',
        constants: cpu ? { WG: CPU_WG.norm } : {},
        args: cpu ? [this.owner, this.hyper, this.partials, this.grad[k]] : [this.owner, this.hyper, this.grad[k], this.partials],
        params: this.params(b),
        workgroups: grid1d(b.elements / ADAMW_CHUNK, 1),
        context: `gradient norm partials (bucket ${k}, ${b.elements} elements)`,
      });
    });
    launch({
      file: 'adamw.wgsl',
      entry: 'norm_final',
      args: [this.partials, this.stats],
      params: this.params({ elements: this.chunks, chunkBase: 0 }, undefined, maxNorm ?? -1, eps),
      workgroups: [1],
      context: `gradient norm (${this.chunks} chunks)`,
    });
  }

  /** Multiply the gathered gradients by the clip scale and copy them back into `grads`. */
  scatterScaled(grads: (Tensor | null)[]): void {
    this.buckets.forEach((b, k) => {
      launch({
        file: 'adamw.wgsl',
        entry: 'scale_grads',
        args: [this.grad[k], this.stats],
        params: this.params(b),
        workgroups: grid1d(b.elements),
        context: `clip gradients (bucket ${k}, ${b.elements} elements)`,
      });
    });
    this.copyOut(this.grad, grads);
  }

  /** The uniform words; every field but n / chunk_base is constant over a run, so they cache. */
  protected params(b: FlatBucket, c?: AdamWConstants, maxNorm = -1, clipEps = 0): number[] {
    return [
      b.elements, b.chunkBase,
      f32bits(c?.beta1 ?? 0), f32bits(c?.beta2 ?? 0), f32bits(1 - (c?.beta1 ?? 0)), f32bits(1 - (c?.beta2 ?? 0)),
      f32bits(c?.eps ?? 0), c?.skipNonFinite ? 1 : 0, f32bits(maxNorm), f32bits(clipEps),
    ];
  }

  release(): void {
    for (const t of [this.owner, this.hyper, this.stats, this.partials, ...this.grad]) t.release();
  }
}

/** FlatGrads plus flat parameters and moments: one fused AdamW step over every slot. */
export class FusedAdamW extends FlatGrads {
  readonly param: Tensor[];
  readonly expAvg: Tensor[];
  readonly expAvgSq: Tensor[];
  /** Slots whose parameter lives in `param` (see adopt()): a step copies it neither in nor out. */
  readonly resident: boolean[];
  /** The gradient homes this optimizer gave its parameters (see adopt()). */
  private readonly homes = new Map<Tensor, () => Tensor>();

  constructor(sizes: number[], readonly constants: AdamWConstants, bucketLimit?: number) {
    super(sizes, bucketLimit);
    this.param = this.flat('adamw.param');
    this.expAvg = this.flat('adamw.exp_avg');
    this.expAvgSq = this.flat('adamw.exp_avg_sq');
    this.resident = sizes.map(() => false);
  }

  /**
   * Make the flat parameter buffers the parameters' home (the parameter arena): each parameter is
   * moved into its slot (Tensor.relocate; slots start on CHUNK boundaries, so every view is bound at
   * an aligned offset) and the update then works in place. A parameter whose storage another view
   * shares stays where it is and is copied in and out each step as before.
   */
  adopt(params: Tensor[]): void {
    params.forEach((p, i) => {
      const s = this.slots[i];
      if (s.size === 0 || this.resident[i]) return;
      this.checkSlot(p, i);
      const view = this.param[s.bucket].viewAt(s.offset * 4, p.shape);
      this.resident[i] = p.relocate(view);
      view.release();
      // The gradient's slot becomes its home: backward rules that can write there do, and the
      // step then gathers only the other gradients.
      const home = () => this.grad[s.bucket].viewAt(s.offset * 4, p.shape);
      p.gradHome = home;
      this.homes.set(p, home);
    });
  }

  /**
   * One step: `hyper` must already hold this step's per-slot values. `params[i]` / `grads[i]` null
   * where slot i is inactive. Gradients are scaled by the clip factor (1 when maxNorm is null).
   * With a loss scaler the gradients are unscaled first, and the step counts live in `steps`
   * (`scaled` holds them): `hyper` then holds (active, 1 − lr·wd, lr) and the GPU completes it.
   */
  step(params: (Tensor | null)[], grads: (Tensor | null)[], maxNorm: number | null, clipEps: number, scaled?: { scaler: GradScaler; steps: Tensor }): void {
    this.gather(grads);
    const moved = params.map((p, i) => (this.resident[i] ? null : p));
    this.copyIn(moved, this.param);
    if (scaled) this.buckets.forEach((b, k) => scaled.scaler.unscale(this.grad[k], b.elements));
    this.norm(maxNorm, clipEps);
    scaled?.scaler.gate(this.stats, this.hyper, scaled.steps, [this.constants.beta1, this.constants.beta2]);
    const cpu = device().kernelProfile === 'cpu';
    this.buckets.forEach((b, k) => {
      const state = [this.param[k], this.expAvg[k], this.expAvgSq[k]];
      launch({
        file: 'adamw.wgsl',
        entry: cpu ? 'adamw4' : 'adamw',
        constants: cpu ? { WG: CPU_WG.update } : {},
        args: cpu ? [this.owner, this.hyper, this.stats, this.grad[k], ...state] : [this.owner, this.hyper, this.grad[k], this.stats, ...state],
        params: this.params(b, this.constants),
        workgroups: cpu ? grid1d(b.elements / 4, CPU_WG.update) : grid1d(b.elements),
        context: `adamw (bucket ${k}, ${b.elements} elements)`,
      });
    });
    this.copyOut(this.param, moved);
    scaled?.scaler.update(this.stats);
  }

  /** Both moments of every slot, read back in one transfer per bucket and buffer. */
  async readMoments(): Promise<{ expAvg: Float32Array; expAvgSq: Float32Array }[]> {
    const read = (flats: Tensor[]) => Promise.all(flats.map((t) => t.toArray()));
    const [m, v] = [await read(this.expAvg), await read(this.expAvgSq)];
    return this.slots.map((s) => ({
      expAvg: m[s.bucket].slice(s.offset, s.offset + s.size),
      expAvgSq: v[s.bucket].slice(s.offset, s.offset + s.size),
    }));
  }

  writeMoments(slot: number, expAvg: Float32Array, expAvgSq: Float32Array): void {
    const s = this.slots[slot];
    if (expAvg.length !== s.size || expAvgSq.length !== s.size) {
      throw new Error(`adamw: slot ${slot} holds ${s.size} elements, got moments of ${expAvg.length} and ${expAvgSq.length}`);
    }
    if (s.size === 0) return;
    device().write(this.expAvg[s.bucket].pooled, expAvg, s.offset * 4);
    device().write(this.expAvgSq[s.bucket].pooled, expAvgSq, s.offset * 4);
  }

  override release(): void {
    for (const [p, home] of this.homes) if (p.gradHome === home) p.gradHome = null;
    super.release();
    for (const t of [...this.param, ...this.expAvg, ...this.expAvgSq]) t.release();
  }
}
