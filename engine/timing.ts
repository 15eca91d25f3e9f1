// GPU timing for benchmarks.
//
// With the `timestamp-query` feature each sample is one compute pass that carries a beginning and an
// end timestamp (Device.timedPass) and holds exactly the dispatches that `fn` encodes; WebGPU defines
// those two timestamps as taken before the pass's first dispatch starts and after its last one ends,
// which is not guaranteed for timestamps of separate (e.g. empty wrapper) passes. The queue is
// drained before every sample, so the beginning timestamp cannot be taken while earlier work still
// runs. The result is GPU execution time only: no encoding, submission or read-back latency.
//
// Without the feature, or when `fn` ends the timed pass itself (a copy, a flush forced by a CPU
// write: the timestamps would then bracket only part of the work), each sample is the wall-clock
// time of encoding `fn`, submitting it and waiting for completion (`await device().sync()`), which
// includes the CPU side and the completion callback's latency.
import { device, tidy } from './context.js';
import type { Device } from './device.js';

export type TimingMethod = 'timestamp' | 'wallclock';

export interface TimeOptions {
  /** Untimed calls first (pipeline creation, buffer pool warm-up). */
  warmup?: number;
  /** Timed calls, one sample each. */
  iters?: number;
  /** 'auto' (default): timestamps when the device has them, else wall clock. */
  method?: TimingMethod | 'auto';
}

export interface Timing {
  medianMs: number;
  minMs: number;
  samples: number[];
  method: TimingMethod;
}

const QUERY_RESOLVE_COPY_SRC = 0x200 /* QUERY_RESOLVE */ | 0x04; /* COPY_SRC */
const MAP_READ_COPY_DST = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */
/** WebGPU's largest query set. */
const MAX_QUERIES = 4096;

/**
 * Time the GPU work that `fn` encodes. `fn` runs inside tidy(): the tensors it creates are released
 * after each call, so repeated calls reuse the same pooled buffers (as a training step does).
 */
export async function timeGpu(fn: () => void, { warmup = 3, iters = 10, method = 'auto' }: TimeOptions = {}): Promise<Timing> {
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`timeGpu: iters must be a positive integer, got ${iters}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`timeGpu: warmup must be a non-negative integer, got ${warmup}`);
  const dev = device();
  const stamps = dev.features.has('timestamp-query') && method !== 'wallclock';
  if (method === 'timestamp' && !stamps) throw new Error('timeGpu: this device lacks the timestamp-query feature; use method wallclock');
  if (stamps && 2 * iters > MAX_QUERIES) throw new Error(`timeGpu: at most ${MAX_QUERIES / 2} timestamp samples, got iters ${iters}`);
  const run = () => tidy(() => void fn());
  for (let i = 0; i < warmup; i++) run();
  await dev.sync();
  if (stamps) {
    const samples = await timestampSamples(dev, run, iters);
    if (typeof samples !== 'string') return summarize(samples, 'timestamp');
    if (method === 'timestamp') throw new Error(`timeGpu: ${samples}; use method wallclock`);
  }
  const samples: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    run();
    await dev.sync();
    samples.push(performance.now() - t0);
  }
  return summarize(samples, 'wallclock');
}

/** Per-sample GPU milliseconds, or why timestamps cannot time this work. */
async function timestampSamples(dev: Device, run: () => void, iters: number): Promise<number[] | string> {
  const gpu = dev.device;
  const bytes = 2 * iters * 8;
  const querySet = gpu.createQuerySet({ type: 'timestamp', count: 2 * iters });
  const resolved = gpu.createBuffer({ size: bytes, usage: QUERY_RESOLVE_COPY_SRC });
  const staging = gpu.createBuffer({ size: bytes, usage: MAP_READ_COPY_DST });
  try {
    for (let i = 0; i < iters; i++) {
      const end = dev.timedPass({ querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 });
      let intact = false;
      try {
        run();
      } finally {
        intact = end();
      }
      await dev.sync();
      if (!intact) return 'the timed work does not stay in one compute pass (it copies, or a CPU write flushes it)';
    }
    const enc = gpu.createCommandEncoder();
    enc.resolveQuerySet(querySet, 0, 2 * iters, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    gpu.queue.submit([enc.finish()]);
    await dev.quietly(staging.mapAsync(1 /* GPUMapMode.READ */));
    const t = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    await dev.checkErrors();
    const samples: number[] = [];
    // Timestamps are nanoseconds; an end before its beginning (a driver resetting its counter)
    // makes the whole measurement untrustworthy.
    for (let i = 0; i < iters; i++) {
      if (t[2 * i + 1] < t[2 * i]) return `timestamp pair ${i} runs backwards (${t[2 * i]} → ${t[2 * i + 1]})`;
      samples.push(Number(t[2 * i + 1] - t[2 * i]) / 1e6);
    }
    return samples;
  } finally {
    dev.flush(); // after a throw, encoded passes may still name the query set
    querySet.destroy();
    resolved.destroy();
    staging.destroy();
  }
}

function summarize(samples: number[], method: TimingMethod): Timing {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const medianMs = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { medianMs, minMs: s[0], samples, method };
}
