// Batches for training and evaluation: samples are decoded and augmented in worker threads while the
// consumer works on earlier batches. Every sample's randomness comes from (seed, epoch, position in
// the epoch), so the batches are bitwise identical for any worker count, including 0 (in-process).
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Sample } from './dataset.js';
import { loadSample } from './image.js';
import { Rng, hashSeed } from './rng.js';
import { spawnModuleWorker } from './spawn-worker.js';
import type { AugmentOptions } from './transforms.js';

export interface Batch {
  /** [B, 3, size, size], normalised. */
  images: Float32Array;
  /** [B, S]: 1 present, 0 absent, -1 ignore. */
  labels: Float32Array;
  /** Index into the samples of each row. */
  indices: number[];
}

export interface LoaderOptions {
  batchSize: number;
  augment: AugmentOptions;
  seed?: number;
  shuffle?: boolean;
  /** Leave out the last, incomplete batch. */
  dropLast?: boolean;
  /** Decode threads (default min(4, cores)); 0 decodes in this thread. */
  workers?: number;
  /** Batches decoded ahead of the one the consumer holds (default 2). */
  prefetch?: number;
  /** The epoch's sample indices before shuffling, e.g. classBalancedIndices(); default each sample once. */
  indices?: readonly number[];
  /** Drop samples that fail to decode (reported once through onBad) instead of throwing. */
  skipBad?: boolean;
  onBad?: (path: string, error: Error) => void;
}

/** Messages between BatchLoader and decode-worker.ts. */
export interface DecodeRequest {
  id: number;
  path: string;
  augment: AugmentOptions;
  seed: number;
}
export interface DecodeReply {
  id: number;
  pixels?: Float32Array;
  error?: string;
}

// Distinct first words keep the shuffle and per-sample random streams apart.
const SHUFFLE_STREAM = 1;
const SAMPLE_STREAM = 2;

export class BatchLoader {
  private readonly pool: DecodePool;
  private readonly bad = new Set<number>();
  private readonly order: readonly number[];

  constructor(
    private readonly samples: readonly Sample[],
    private readonly opts: LoaderOptions,
  ) {
    this.pool = new DecodePool(opts.workers ?? Math.min(4, availableParallelism()));
    this.order = opts.indices ?? [...samples.keys()];
  }

  get batchesPerEpoch(): number {
    const n = this.order.length / this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The batches of one epoch, in order; the shuffle depends on (seed, epoch) only. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    const { batchSize, seed = 0, prefetch = 2 } = this.opts;
    const order = [...this.order];
    if (this.opts.shuffle) new Rng(hashSeed(SHUFFLE_STREAM, seed, epoch)).shuffle(order);
    const end = Math.min(order.length, this.batchesPerEpoch * batchSize);
    const pending: Promise<Batch | undefined>[] = [];
    let next = 0;
    const fill = () => {
      for (; pending.length <= prefetch && next < end; next += batchSize) {
        const batch = this.batch(epoch, order, next, Math.min(next + batchSize, end));
        // Failures surface when this batch's turn comes; until then the rejection must not count as unhandled.
        batch.catch(() => {});
        pending.push(batch);
      }
    };
    fill();
    while (pending.length > 0) {
      const batch = await pending.shift()!;
      fill();
      if (batch) yield batch;
    }
  }

  /** Ends the worker threads; the loader can still be used and starts new ones on demand. */
  close(): Promise<void> {
    return this.pool.close();
  }

  private async batch(epoch: number, order: number[], from: number, to: number): Promise<Batch | undefined> {
    const { augment, seed = 0 } = this.opts;
    const positions = Array.from({ length: to - from }, (_, k) => from + k).filter((p) => !this.bad.has(order[p]));
    const decoded = await Promise.allSettled(
      positions.map((p) => this.pool.decode({ path: this.samples[order[p]].path, augment, seed: hashSeed(SAMPLE_STREAM, seed, epoch, p) })),
    );
    const rows: { index: number; pixels: Float32Array }[] = [];
    decoded.forEach((result, k) => {
      const index = order[positions[k]];
      if (result.status === 'fulfilled') return void rows.push({ index, pixels: result.value });
      const { path } = this.samples[index];
      const error = new Error(`cannot decode ${path}: ${(result.reason as Error).message}`);
      if (!this.opts.skipBad) throw error;
      if (!this.bad.has(index)) this.opts.onBad?.(path, error);
      this.bad.add(index);
    });
    if (rows.length === 0) return undefined;
    const plane = 3 * augment.size * augment.size;
    const classes = this.samples[0].labels.length;
    const images = new Float32Array(rows.length * plane);
    const labels = new Float32Array(rows.length * classes);
    rows.forEach((row, b) => {
      images.set(row.pixels, b * plane);
      labels.set(this.samples[row.index].labels, b * classes);
    });
    return { images, labels, indices: rows.map((r) => r.index) };
  }
}

interface Slot {
  worker: Worker;
  jobs: Set<number>;
}

/** Worker threads that decode on request; each request goes to the least busy worker. */
class DecodePool {
  private slots: Slot[] = [];
  private readonly jobs = new Map<number, { resolve: (pixels: Float32Array) => void; reject: (error: Error) => void }>();
  private nextId = 0;

  constructor(private readonly size: number) {}

  decode(request: Omit<DecodeRequest, 'id'>): Promise<Float32Array> {
    if (this.size === 0) return loadSample(request.path, request.augment, request.seed);
    const slot = this.slots.length < this.size ? this.spawn() : this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    const id = this.nextId++;
    slot.jobs.add(id);
    // Workers are unref'd while idle so a forgotten close() never keeps the process alive.
    slot.worker.ref();
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      slot.worker.postMessage({ ...request, id } satisfies DecodeRequest);
    });
  }

  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const slot: Slot = { worker: spawnModuleWorker(new URL('./decode-worker.js', import.meta.url)), jobs: new Set() };
    const settle = (id: number) => {
      const job = this.jobs.get(id)!;
      this.jobs.delete(id);
      slot.jobs.delete(id);
      if (slot.jobs.size === 0) slot.worker.unref();
      return job;
    };
    slot.worker.on('message', ({ id, pixels, error }: DecodeReply) => {
      const job = settle(id);
      if (pixels) job.resolve(pixels);
      else job.reject(new Error(error));
    });
    // A crashed worker fails its own requests and is replaced on the next request.
    const fail = (error: Error) => {
      this.slots = this.slots.filter((s) => s !== slot);
      for (const id of [...slot.jobs]) settle(id).reject(new Error(`decode worker failed: ${error.message}`));
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }
}
