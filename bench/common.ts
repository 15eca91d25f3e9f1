// What a benchmark family is given and produces. The registry of suites and families, and how to add
// one, is at the top of bench/run.ts.
import type { TimingMethod } from '../engine/timing.js';
import type { Precision } from '../train/precision.js';
// The suites import single kernels: register the bundled WGSL (kernels/ops.ts does it for `F`).
import '../kernels/sources.js';

/** tiny: for tests (seconds on a CPU adapter); small: CPU adapters (lavapipe); large: real GPUs. */
export const SIZES = ['tiny', 'small', 'large'] as const;
export type BenchSize = (typeof SIZES)[number];

/** 'cpu': host-side time of encoding work (no GPU wait), measured with tinybench. */
export type ResultMethod = TimingMethod | 'cpu';

export interface BenchCase {
  /** Kernel or op, e.g. 'matmul', 'softmax'. */
  name: string;
  /** The shape that defines the work (each family documents its meaning, e.g. matmul [M,K,N]). */
  shape: number[];
  /** Floating-point operations per call, for GFLOP/s. */
  flops?: number;
  /** Bytes a call must read and write at least, for GB/s. */
  bytes?: number;
  /** Further values a family reports per case (e.g. knn's memory, train's images/s and adapter), copied into the result under these keys. */
  extra?: Record<string, number | string>;
}

export interface BenchResult {
  suite: string;
  name: string;
  shape: number[];
  /** Median milliseconds per call. */
  ms: number;
  minMs: number;
  gflops?: number;
  gbps?: number;
  method: ResultMethod;
  /** The case's `extra` numbers. */
  [extra: string]: number | number[] | string | undefined;
}

export interface BenchContext {
  suite: string;
  size: BenchSize;
  warmup: number;
  iters: number;
  /** --precision: the operands were switched already; the train family adds loss scaling for 'mixed'. */
  precision: Precision;
  /** Train suite: one case `MODEL@SIZE:BATCH` (e.g. gkgnet-t@224:4) run instead of the size's cases. */
  trainCase?: string;
  /** Time the GPU work that `fn` encodes (engine/timing.ts; fn runs in tidy()) and record it. */
  measure(c: BenchCase, fn: () => void): Promise<BenchResult>;
  /** Record a case timed some other way. */
  record(c: BenchCase, t: { medianMs: number; minMs: number }, method: ResultMethod): BenchResult;
  /** A note on stderr (never stdout: --json owns it). */
  log(message: string): void;
}

/** A family module (bench/<family>.ts) exports `bench: Family`; it runs its cases through ctx. */
export type Family = (ctx: BenchContext) => Promise<void>;
