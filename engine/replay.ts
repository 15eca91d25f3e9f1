// Record a training step once and replay it as a flat list of GPU commands.
//
// A step run the normal way walks the model, builds a tape, looks up pipelines by WGSL source and
// bind groups by string keys. After warm-up all of that produces the same commands every step (the
// pool hands out the same buffers: its free lists pop the lowest id), so StepReplay records the
// commands of one step — pipeline, bind group and workgroup counts of each dispatch, each buffer
// copy — and from then on encodes that list into the command encoder and submits it: no tape, no
// tensor objects, no cache look-ups, no GPU object created.
//
// What changes from step to step must reach the GPU as data, never as a constant frozen in the
// recording: every CPU write made inside a recorded step is made again before each replay. A write
// made with a producer (Device.write's fourth argument: the step's inputs, drop-path masks, AdamW's
// learning rate and bias corrections) calls the producer again; a write without one replays the
// recorded bytes. A write into a buffer that no earlier command of the step touches goes straight
// into that buffer (queue.writeBuffer runs before the step's commands, after earlier steps'); one
// into a buffer the step used before is uploaded into a small "arena" buffer and copied from there
// at its place in the command stream. A per-step value baked into a uniform would give another bind group,
// and a per-step write without a producer other bytes, so a step is recorded twice and replayed only
// when both recordings agree command for command (and static write for static write).
//
// Safety: a recording names buffers. Those free in the pool after the recorded step are its
// temporaries, the others (parameters, optimizer state, the loss ring) persist; before each replay
// every temporary must still be free, every persistent buffer still held and the pool not trimmed,
// else the recording is dropped and the step runs normally. Replay stops whenever the inputs' shapes
// differ from the recorded ones (the last, smaller batch): that step runs the normal way.
import { device, beginScope, endScope } from './context.js';
import { Tensor, type DType, type Shape } from './tensor.js';
import { envVar } from './gpu.js';
import type { CommandSink, Device, Pipeline, RecordedOp, WriteProducer } from './device.js';
import type { PooledBuffer } from './pool.js';

interface RecordedWrite {
  dst: PooledBuffer;
  dstOffset: number;
  /** Bytes written, padded to a multiple of 4. */
  bytes: number;
  /** The bytes of a write without a producer (a constant), padded; empty for a producer's. */
  data: Uint8Array;
  producer: WriteProducer | undefined;
  /** Index of the copy op that replays it; -1 for a direct write (no earlier command touches dst). */
  op: number;
  /** Byte offset in the arena (set by seal()). */
  arenaOffset: number;
}

const COPY_SRC_DST = 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

function copyOp(src: GPUBuffer | null, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): RecordedOp {
  return { pipeline: null, bindGroup: null, x: 0, y: 0, z: 0, src, srcOffset, dst, dstOffset, bytes };
}

/** The commands of one step, as the device encoded them. */
export class Recording implements CommandSink {
  readonly ops: RecordedOp[] = [];
  readonly writes: RecordedWrite[] = [];
  readonly buffers = new Set<PooledBuffer>();
  readonly effects: (() => void)[] = [];
  /** Buffers the commands recorded so far touch. */
  private readonly touched = new Set<PooledBuffer>();
  readonly pipelines = new Set<Pipeline>();
  dispatches = 0;
  boundBytes = 0;
  aborted: string | null = null;
  private temporaries: PooledBuffer[] = [];
  private persistent: PooledBuffer[] = [];
  private generation = -1;
  private arena: GPUBuffer | null = null;
  private dynamic: RecordedWrite[] = [];

  constructor(readonly shapes: Shape[]) {}

  dispatch(p: Pipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number, buffers: PooledBuffer[], bytes: number): void {
    if (this.aborted) return;
    this.ops.push({ pipeline: p.pipeline, bindGroup, x, y, z, src: null, srcOffset: 0, dst: null, dstOffset: 0, bytes: 0 });
    for (const b of buffers) {
      this.buffers.add(b);
      this.touched.add(b);
    }
    this.pipelines.add(p);
    this.dispatches++;
    this.boundBytes += bytes;
  }

  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void {
    if (this.aborted) return;
    this.ops.push(copyOp(src.buffer, srcOffset, dst.buffer, dstOffset, bytes));
    for (const b of [src, dst]) {
      this.buffers.add(b);
      this.touched.add(b);
    }
    this.boundBytes += 2 * bytes;
  }

  write(dst: PooledBuffer, dstOffset: number, data: Uint8Array, producer: WriteProducer | undefined): void {
    if (this.aborted) return;
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    // A producer's data is made again at each replay: only a constant's bytes are kept.
    const padded = new Uint8Array(producer ? 0 : bytes);
    if (!producer) padded.set(data);
    this.buffers.add(dst);
    if (!this.touched.has(dst)) {
      this.writes.push({ dst, dstOffset, bytes, data: padded, producer, op: -1, arenaOffset: 0 });
      return;
    }
    this.writes.push({ dst, dstOffset, bytes, data: padded, producer, op: this.ops.length, arenaOffset: 0 });
    this.ops.push(copyOp(null, 0, dst.buffer, dstOffset, bytes));
  }

  effect(fn: () => void): void {
    if (!this.aborted) this.effects.push(fn);
  }

  abort(reason: string): void {
    this.aborted ??= reason;
  }

  /** Why `other` (the same step recorded again) differs from this one, or null when they agree. */
  differs(other: Recording): string | null {
    if (this.aborted || other.aborted) return this.aborted ?? other.aborted;
    if (this.ops.length !== other.ops.length) return `${this.ops.length} vs ${other.ops.length} commands`;
    for (let i = 0; i < this.ops.length; i++) {
      const a = this.ops[i];
      const b = other.ops[i];
      if (a.pipeline !== b.pipeline || a.bindGroup !== b.bindGroup || a.x !== b.x || a.y !== b.y || a.z !== b.z) {
        return `dispatch ${i} differs (pipeline, bind group — e.g. a per-step value in a uniform — or workgroups)`;
      }
      if (a.src !== b.src || a.srcOffset !== b.srcOffset || a.dst !== b.dst || a.dstOffset !== b.dstOffset || a.bytes !== b.bytes) {
        return `copy ${i} differs`;
      }
    }
    if (this.effects.length !== other.effects.length) return `${this.effects.length} vs ${other.effects.length} host-side effects`;
    if (this.writes.length !== other.writes.length) return `${this.writes.length} vs ${other.writes.length} CPU writes`;
    for (let i = 0; i < this.writes.length; i++) {
      const a = this.writes[i];
      const b = other.writes[i];
      if (a.dst !== b.dst || a.dstOffset !== b.dstOffset || a.bytes !== b.bytes || !a.producer !== !b.producer || a.op !== b.op) {
        return `CPU write ${i} differs in place or size`;
      }
      if (!a.producer && !equalBytes(a.data, b.data)) return `CPU write ${i} (no producer) wrote other bytes: a per-step value written as a constant`;
    }
    return null;
  }

  /** Call after the step's scope closed: classify the buffers and build the arena. */
  seal(dev: Device): void {
    this.generation = dev.pool.generation;
    for (const b of this.buffers) (b.free ? this.temporaries : this.persistent).push(b);
    // Arena slices: for the writes copied in the stream (op ≥ 0); the constants are uploaded once, here.
    const ordered = this.writes.filter((w) => w.op >= 0);
    // Made before every replay: every producer, and the constants that go straight into their buffer.
    this.dynamic = this.writes.filter((w) => w.producer || w.op < 0);
    let size = 0;
    for (const w of ordered) {
      w.arenaOffset = size;
      size += w.bytes;
    }
    if (size > 0) {
      this.arena = dev.device.createBuffer({ size, usage: COPY_SRC_DST, label: 'replay arena' });
      for (const w of ordered) {
        if (!w.producer) dev.device.queue.writeBuffer(this.arena, w.arenaOffset, w.data as Uint8Array<ArrayBuffer>);
        const op = this.ops[w.op];
        op.src = this.arena;
        op.srcOffset = w.arenaOffset;
      }
    }
  }

  /** The buffers are where the recording left them: temporaries free, the others held, none destroyed. */
  valid(dev: Device): boolean {
    if (dev.pool.generation !== this.generation || dev.profiler) return false;
    for (let i = 0; i < this.temporaries.length; i++) if (!this.temporaries[i].free) return false;
    for (let i = 0; i < this.persistent.length; i++) if (this.persistent[i].free) return false;
    return true;
  }

  /** Make this step's writes (producers called in recorded order), then encode + submit the commands. */
  replay(dev: Device): void {
    for (let i = 0; i < this.effects.length; i++) this.effects[i]();
    const queue = dev.device.queue;
    for (let i = 0; i < this.dynamic.length; i++) {
      const w = this.dynamic[i];
      let bytes = w.data;
      if (w.producer) {
        const d = w.producer();
        if (Math.ceil(d.byteLength / 4) * 4 !== w.bytes) {
          throw new Error(`replay: a producer returned ${d.byteLength} bytes; it wrote ${w.bytes} when recorded`);
        }
        bytes = new Uint8Array(d.buffer as ArrayBuffer, d.byteOffset, d.byteLength);
      }
      // Device.write first submits encoded work that still uses the buffer, and pads to 4 bytes.
      if (w.op < 0) dev.write(w.dst, bytes, w.dstOffset);
      else if (bytes.byteLength % 4 === 0) queue.writeBuffer(this.arena!, w.arenaOffset, bytes as Uint8Array<ArrayBuffer>);
      else {
        const padded = new Uint8Array(w.bytes);
        padded.set(bytes);
        queue.writeBuffer(this.arena!, w.arenaOffset, padded);
      }
    }
    dev.replay(this.ops, this.dispatches, this.boundBytes);
  }

  /** Writes made straight into their buffer / through the arena, per replay. */
  get writeCounts(): { direct: number; arena: number } {
    const direct = this.writes.filter((w) => w.op < 0).length;
    return { direct, arena: this.writes.length - direct };
  }

  release(): void {
    this.arena?.destroy();
    this.arena = null;
  }
}

/**
 * Run `fn` now and, when the step is being recorded, again at each replay of it: how a step updates
 * host-side state (BatchNorm's num_batches_tracked) that a replay would otherwise skip. `fn` must
 * not capture per-step values.
 */
export function perStep(fn: () => void): void {
  fn();
  device().recorder?.effect(fn);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One input of a step: uploaded into a fresh tensor when the step runs normally, into the arena when replayed. */
export interface StepInput {
  data: Float32Array | Int32Array | Uint32Array;
  shape: Shape;
  dtype?: DType;
}

export type StepMode = 'normal' | 'recorded' | 'replayed';

export interface StepReplayOptions {
  /** Normal steps at a shape before the first recording (pool and caches warm). Default 1. */
  warmup?: number;
  /** Default: true unless env WEBVIG_REPLAY=0. */
  enabled?: boolean;
  /** Recordings at one shape that may disagree before replay gives up on that shape. Default 3. */
  maxAttempts?: number;
}

function dtypeOf(i: StepInput): DType {
  return i.dtype ?? (i.data instanceof Int32Array ? 'i32' : i.data instanceof Uint32Array ? 'u32' : 'f32');
}

function sameShapes(inputs: StepInput[], shapes: Shape[] | null): boolean {
  if (!shapes || shapes.length !== inputs.length) return false;
  for (let i = 0; i < inputs.length; i++) {
    const a = inputs[i].shape;
    const b = shapes[i];
    if (a.length !== b.length) return false;
    for (let d = 0; d < a.length; d++) if (a[d] !== b[d]) return false;
  }
  return true;
}

/**
 * Runs a step function — everything one training step encodes, from its inputs to zeroGrad — either
 * the normal way or as the replay of its recording. `fn` receives the inputs as tensors; every tensor
 * it creates is released when it returns (a scope). Anything that changes per step must enter `fn`
 * through `inputs` or a write with a producer (see the header); a closure in `fn` capturing a
 * per-step value would be frozen by the recording.
 */
export class StepReplay {
  readonly counts = { normal: 0, recorded: 0, replayed: 0 };
  /** Why the last recording could not be used, if one could not. */
  reason: string | null = null;
  readonly enabled: boolean;
  private readonly warmup: number;
  private readonly maxAttempts: number;
  private ready: Recording | null = null;
  private candidate: Recording | null = null;
  private warmShapes: Shape[] | null = null;
  private warm = 0;
  private attempts = 0;
  /** Consecutive steps at shapes other than the recording's. */
  private misses = 0;
  private current: StepInput[] = [];

  constructor({ warmup = 1, enabled = envVar('WEBVIG_REPLAY') !== '0', maxAttempts = 3 }: StepReplayOptions = {}) {
    this.warmup = warmup;
    this.enabled = enabled;
    this.maxAttempts = maxAttempts;
  }

  /** The recording being replayed, if any. */
  get recording(): Recording | null {
    return this.ready;
  }

  run(inputs: StepInput[], fn: (inputs: Tensor[]) => void): StepMode {
    this.current = inputs;
    const dev = device();
    if (this.ready && sameShapes(inputs, this.ready.shapes)) {
      if (this.ready.valid(dev) && !dev.recorder) {
        this.ready.replay(dev);
        this.counts.replayed++;
        this.misses = 0;
        return 'replayed';
      }
      this.reason = 'the recorded buffers were reused, released or destroyed since; recording again';
      this.invalidate();
    } else if (this.ready && ++this.misses >= 3) {
      // The shape changed for good (not one last, smaller batch): record the new one.
      this.reason = 'the input shapes changed; recording again';
      this.invalidate();
    }
    if (!this.enabled || this.ready || dev.profiler || dev.recorder) {
      // One recording at a time: another shape (a last, smaller batch) runs the normal way.
      this.normal(fn, null);
      return 'normal';
    }
    if (!sameShapes(inputs, this.warmShapes)) {
      this.warmShapes = inputs.map((i) => [...i.shape]);
      this.warm = 0;
      this.attempts = 0;
      this.dropCandidate();
    }
    if (this.warm < this.warmup || this.attempts >= this.maxAttempts) {
      this.warm++;
      this.normal(fn, null);
      return 'normal';
    }
    const rec = new Recording(this.warmShapes!);
    this.normal(fn, rec);
    this.counts.recorded++;
    this.counts.normal--;
    if (rec.aborted) {
      this.reason = `cannot record the step: ${rec.aborted}`;
      this.attempts = this.maxAttempts;
      return 'recorded';
    }
    const diff = this.candidate ? this.candidate.differs(rec) : 'first recording';
    this.dropCandidate();
    if (diff === null) {
      rec.seal(dev);
      this.ready = rec;
      this.reason = null;
    } else {
      this.candidate = rec;
      if (diff !== 'first recording') {
        this.attempts++;
        this.reason = `two recordings of the step differ: ${diff}`;
      }
    }
    return 'recorded';
  }

  private normal(fn: (inputs: Tensor[]) => void, rec: Recording | null): void {
    const dev = device();
    beginScope();
    try {
      if (rec) dev.recorder = rec;
      const tensors = this.current.map((input, i) => {
        if (input.dtype && input.dtype !== dtypeOf({ ...input, dtype: undefined })) {
          throw new Error(`step input ${i}: dtype ${input.dtype} for a ${input.data.constructor.name}`);
        }
        return Tensor.fromProducer(input.shape, () => this.current[i].data, 'step input');
      });
      fn(tensors);
    } finally {
      dev.recorder = null;
      endScope();
    }
    this.counts.normal++;
  }

  private dropCandidate(): void {
    this.candidate?.release();
    this.candidate = null;
  }

  /** Forget the recording (the model or optimizer changed in a way the step does not show). */
  invalidate(): void {
    this.ready?.release();
    this.ready = null;
    this.dropCandidate();
    this.warmShapes = null;
    this.misses = 0;
  }

  release(): void {
    this.invalidate();
  }
}
