// Tensors: contiguous row-major storage in a pooled GPU buffer, a shape and a dtype. Views share
// storage (reshape); everything else copies. Storage is reference-counted by its views only, and
// released explicitly (release(), or a closing scope): never by the garbage collector.
import { device, track, keep } from './context.js';
import { STORAGE_USAGE, type BufferArg } from './device.js';
import type { PooledBuffer } from './pool.js';
import type { GradNode } from './autograd.js';
import { Rng } from './rng.js';
import { fromHalfArray, toHalfArray } from './half.js';

/** f16: activations under `--precision mixed` (WGSL f16, 2 bytes); the others take 4 bytes. */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export function dtypeBytes(dt: DType): number {
  return dt === 'f16' ? 2 : 4;
}
export type Shape = readonly number[];

class Storage {
  refs = 1;
  constructor(readonly pooled: PooledBuffer) {}
}

let nextId = 1;

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape [${shape.join(',')}]`);
  }
}

export class Tensor implements BufferArg {
  readonly isTensor = true;
  readonly id = nextId++;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** The op that produced this tensor, for backward(); null for leaves. */
  node: GradNode | null = null;
  /**
   * For a parameter: a view of where its optimizer wants the gradient (its slot of a flat gradient
   * buffer). Backward rules that can write a gradient there directly do (PendingGrads.home).
   */
  gradHome: (() => Tensor) | null = null;
  name = '';
  private storage: Storage | null;
  private offset: number;

  private constructor(readonly shape: Shape, readonly dtype: DType, storage: Storage, byteOffset = 0) {
    this.size = numel(shape);
    this.storage = storage;
    this.offset = byteOffset;
    track(this);
  }

  /** Where the tensor starts in its buffer: 0, except for views into an arena (viewAt, relocate). */
  get byteOffset(): number {
    return this.offset;
  }

  /** An uninitialised tensor. */
  static empty(shape: Shape, dtype: DType = 'f32', label = ''): Tensor {
    checkShape(shape, label || 'Tensor.empty');
    const bytes = Math.max(4, Math.ceil((numel(shape) * dtypeBytes(dtype)) / 4) * 4);
    return new Tensor([...shape], dtype, new Storage(device().pool.acquire(bytes, STORAGE_USAGE, label)));
  }

  /** Upload `data` (a typed array or plain numbers) as a tensor of `shape`. */
  static from(data: ArrayLike<number>, shape: Shape = [data.length], dtype?: DType): Tensor {
    const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
    if (numel(shape) !== data.length) {
      throw new Error(`Tensor.from: ${data.length} values do not fill shape [${shape.join(',')}]`);
    }
    const t = Tensor.empty(shape, dt, 'from');
    const typed = toTyped(data, dt);
    if (typed.length) device().write(t.pooled, typed);
    return t;
  }

  /**
   * A tensor filled by `producer`, which a replayed step (engine/replay.ts) calls again before each
   * replay: how per-step data (drop-path masks, a batch) reaches a recorded step. It must return the
   * same number of elements every time.
   */
  static fromProducer(shape: Shape, producer: () => Float32Array | Int32Array | Uint32Array, label = 'produced'): Tensor {
    const data = producer();
    const dt: DType = data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32';
    if (numel(shape) !== data.length) {
      throw new Error(`Tensor.fromProducer: ${data.length} values do not fill shape [${shape.join(',')}]`);
    }
    const t = Tensor.empty(shape, dt, label);
    if (data.length) device().write(t.pooled, data, 0, producer);
    return t;
  }

  static scalar(v: number): Tensor {
    return Tensor.from([v], []);
  }

  /** Standard normal values from a seeded generator (same seed, same values, on every device). */
  static randn(shape: Shape, seed: number, std = 1): Tensor {
    const n = numel(shape);
    const out = new Float32Array(n);
    const rng = new Rng(seed);
    for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
    return Tensor.from(out, shape);
  }

  /** Uniform values in [lo, hi) from a seeded generator. */
  static rand(shape: Shape, seed: number, lo = 0, hi = 1): Tensor {
    const n = numel(shape);
    const out = new Float32Array(n);
    const rng = new Rng(seed);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
    return Tensor.from(out, shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get released(): boolean {
    return this.storage === null;
  }

  get pooled(): PooledBuffer {
    if (!this.storage) throw new Error(`tensor #${this.id} ${this.describe()} used after release`);
    return this.storage.pooled;
  }

  get bytes(): number {
    return this.size * dtypeBytes(this.dtype);
  }

  /**
   * This tensor's buffer bound from its offset as `bytes` bytes (whole vec4s or words past its end,
   * which its buffer holds) where a kernel needs more than the tensor: `words` leaves the dtype out
   * (the kernel reads the bits as 32-bit words, so the device checks no element type), `touched`
   * is what the kernel uses of it (bytes_per_step).
   */
  binding(bytes: number, o: { words?: boolean; touched?: number } = {}): BufferArg {
    if (this.offset + bytes > this.pooled.capacity) {
      throw new Error(`${this.describe()}: buffer of ${this.pooled.capacity} bytes cannot be bound as ${bytes} at byte ${this.offset}`);
    }
    return {
      pooled: this.pooled, bytes, byteOffset: this.offset, dtype: o.words ? undefined : this.dtype, touched: o.touched,
      describe: () => this.describe(), assertAlive: (op) => this.assertAlive(op),
    };
  }

  describe(): string {
    return `${this.name || 'tensor'} [${this.shape.join(',')}] ${this.dtype}`;
  }

  assertAlive(op: string): void {
    if (!this.storage) throw new Error(`${op}: ${this.describe()} (#${this.id}) was used after release`);
  }

  /** A view with a new shape over the same storage (one dimension may be -1). */
  view(shape: Shape): Tensor {
    this.assertAlive('view');
    const resolved = resolveShape(shape, this.size, this.shape);
    this.storage!.refs++;
    return new Tensor(resolved, this.dtype, this.storage!, this.offset);
  }

  /**
   * A view of numel(shape) elements starting `byteOffset` bytes into this tensor (an arena slice).
   * The offset must be a multiple of the device's minStorageBufferOffsetAlignment, since kernels
   * bind the view at that offset.
   */
  viewAt(byteOffset: number, shape: Shape, dtype: DType = this.dtype): Tensor {
    this.assertAlive('viewAt');
    if (dtype === 'f16' && numel(shape) % 2 === 1) {
      // Writes, fills and copies move whole 32-bit words: an odd one would touch the next half.
      throw new Error(`viewAt: an f16 view needs an even number of elements, got [${shape.join(',')}] of ${this.describe()}`);
    }
    const align = device().limits.minStorageBufferOffsetAlignment;
    if (byteOffset % align !== 0 || byteOffset < 0 || byteOffset + numel(shape) * dtypeBytes(dtype) > this.bytes) {
      throw new Error(`viewAt: [${shape.join(',')}] at byte ${byteOffset} does not fit ${this.describe()} at a multiple of ${align}`);
    }
    this.storage!.refs++;
    return new Tensor([...shape], dtype, this.storage!, this.offset + byteOffset);
  }

  /**
   * Move this tensor into `target`'s place (a view of the same size and dtype, e.g. an arena slice):
   * the values are copied on the GPU, the old storage is released, and every later use of this
   * tensor object uses the new place. Returns false (and changes nothing) when other views share
   * the old storage, since they would keep the old values.
   */
  relocate(target: Tensor): boolean {
    this.assertAlive('relocate');
    target.assertAlive('relocate');
    if (target.size !== this.size || target.dtype !== this.dtype) {
      throw new Error(`relocate: ${this.describe()} does not fit ${target.describe()}`);
    }
    const old = this.storage!;
    if (old.refs !== 1) return false;
    // Copies move whole words; an odd f16 tensor owns its last word (Tensor.empty rounds its
    // buffer up, and viewAt refuses odd f16 views).
    if (this.size > 0) device().copy(old.pooled, this.offset, target.pooled, target.offset, Math.ceil(this.bytes / 4) * 4);
    target.storage!.refs++;
    this.storage = target.storage;
    this.offset = target.offset;
    old.refs = 0;
    device().pool.release(old.pooled);
    return true;
  }

  /** Release the storage (when no other view holds it). Idempotent. */
  release(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    if (--s.refs === 0) device().pool.release(s.pooled);
  }

  /** Mark as a trainable leaf that outlives scopes. */
  param(name = ''): this {
    this.requiresGrad = true;
    if (name) this.name = name;
    keep(this);
    return this;
  }

  /** Copy the values to the CPU as floats (integer tensors are converted). */
  async toArray(): Promise<Float32Array> {
    this.assertAlive('toArray');
    return asFloats(await device().read(this.pooled, this.bytes, this.offset), this.dtype);
  }

  /** Copy several tensors' values to the CPU with one wait: f32 and f16 as Float32Array, integers as Int32Array. */
  static async readAll(tensors: readonly Tensor[]): Promise<(Float32Array | Int32Array)[]> {
    for (const t of tensors) t.assertAlive('readAll');
    const bufs = await device().readMany(tensors.map((t) => ({ src: t.pooled, bytes: t.bytes, srcOffset: t.offset })));
    return bufs.map((b, i) => (isFloat(tensors[i].dtype) ? asFloats(b, tensors[i].dtype) : new Int32Array(b)));
  }

  /** Copy an integer tensor's values to the CPU. */
  async toInt32Array(): Promise<Int32Array> {
    this.assertAlive('toInt32Array');
    if (isFloat(this.dtype)) throw new Error(`toInt32Array: ${this.describe()} is not an integer tensor`);
    return new Int32Array(await device().read(this.pooled, this.bytes, this.offset));
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): ${this.describe()} has ${this.size} elements, not 1`);
    return (await this.toArray())[0];
  }

  /** Overwrite the values from the CPU (same number of elements). */
  write(data: ArrayLike<number>): void {
    this.assertAlive('write');
    if (data.length !== this.size) throw new Error(`write: ${data.length} values for ${this.describe()}`);
    device().write(this.pooled, toTyped(data, this.dtype), this.offset);
  }
}

export function isFloat(dt: DType): boolean {
  return dt === 'f32' || dt === 'f16';
}

function asFloats(buf: ArrayBuffer, dt: DType): Float32Array {
  if (dt === 'f32') return new Float32Array(buf);
  if (dt === 'f16') return fromHalfArray(new Uint16Array(buf));
  return Float32Array.from(dt === 'i32' ? new Int32Array(buf) : new Uint32Array(buf));
}

function toTyped(data: ArrayLike<number>, dt: DType): Float32Array | Uint16Array | Int32Array | Uint32Array {
  if (dt === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dt === 'f16') return toHalfArray(data);
  if (dt === 'i32') return data instanceof Int32Array ? data : Int32Array.from(data);
  return data instanceof Uint32Array ? data : Uint32Array.from(data);
}

export function resolveShape(shape: Shape, size: number, from: Shape): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const known = out.reduce((a, d, i) => (i === free ? a : a * d), 1);
    out[free] = known === 0 ? 0 : size / known;
  }
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view [${from.join(',')}] (${size} elements) as [${shape.join(',')}]`);
  }
  return out;
}
