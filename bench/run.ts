// The benchmark suites behind `webvig bench` (train/commands/bench.ts).
//
// SUITES below is the registry: a suite is a set of families, a family is one module
// bench/<family>.ts exporting `bench: Family` (bench/common.ts) that runs its cases through
// ctx.measure(). Families are imported only when they run.
//   - A new kernel family (conv, knn, maxrel, bn, adamw, …): write bench/conv.ts modelled on
//     bench/softmax.ts, then add one line to SUITES.kernels.families:
//         conv: () => import('./conv.js'),
//   - A new suite (the training engineer's `--suite train`, contract `npm run bench -- --suite train
//     --json`): add one entry, e.g.
//         train: { help: 'training steps per model', families: { step: () => import('./train.js') } },
//     --suite accepts exactly the keys of SUITES, and its --help lists them.
// Every result is `{ suite, name, shape, ms, minMs, gflops?, gbps?, ...extra, method }` (`extra`: the
// numbers a family adds, e.g. knn's memory, train's images/s and per-step counters); with --json stdout
// carries exactly one JSON object `{ device, suite, config, results }` (Dawn's own notes go to stderr).
import { init } from '../engine/context.js';
import { timeGpu, type TimingMethod } from '../engine/timing.js';
import { UsageError, PROGRAM } from '../train/args.js';
import { usePrecision, resetPrecision, activationsNote, type Precision } from '../train/precision.js';
import { deviceReport, type DeviceReport } from '../train/commands/info.js';
import { parseTrainCase } from './train.js';
import { type BenchContext, type BenchResult, type BenchSize, type Family } from './common.js';

interface Suite {
  help: string;
  families: Record<string, () => Promise<{ bench: Family }>>;
}

export const SUITES: Record<string, Suite> = {
  kernels: {
    help: 'one engine kernel per case: matmul, elementwise, reductions, softmax, dispatch overhead, conv, knn, max-relative, batch norm, AdamW',
    families: {
      matmul: () => import('./matmul.js'),
      elementwise: () => import('./elementwise.js'),
      reduce: () => import('./reduce.js'),
      softmax: () => import('./softmax.js'),
      dispatch: () => import('./dispatch.js'),
      conv: () => import('./conv.js'),
      knn: () => import('./knn.js'),
      maxrel: () => import('./maxrel.js'),
      bn: () => import('./bn.js'),
      adamw: () => import('./adamw.js'),
    },
  },
  train: { help: 'one training step per model: forward, loss, backward, AdamW', families: { step: () => import('./train.js') } },
};

export interface SuiteOptions {
  suite: string;
  size?: BenchSize;
  warmup?: number;
  iters?: number;
  timer?: TimingMethod | 'auto';
  /** Families to run (default: all of the suite's). */
  only?: string[];
  /** --precision (train/precision.ts; default 'fp32'): the kernels' operands, and loss scaling in the train suite. */
  precision?: Precision;
  /** Train suite: one case `MODEL@SIZE:BATCH` instead of the size's (bench/train.ts). */
  trainCase?: string;
  /** Called as each result arrives (the text table prints rows as they come). */
  onResult?: (r: BenchResult) => void;
  log?: (message: string) => void;
}

export interface BenchReport {
  device: DeviceReport;
  suite: string;
  config: { size: BenchSize; warmup: number; iters: number; timer: TimingMethod | 'auto' };
  results: BenchResult[];
}

/** The families of `suite` to run (all, or those named in `only`); UsageError for unknown names. */
export function suiteFamilies(suite: string, only?: string[]): string[] {
  const prog = `${PROGRAM} bench`;
  if (!Object.hasOwn(SUITES, suite)) {
    throw new UsageError(`${prog}: unknown suite '${suite}'; known suites: ${Object.keys(SUITES).join(', ')}`);
  }
  const known = Object.keys(SUITES[suite].families);
  const unknown = (only ?? []).filter((n) => !known.includes(n));
  if (unknown.length) throw new UsageError(`${prog}: --only: no family ${unknown.join(', ')} in suite ${suite}; it has ${known.join(', ')}`);
  return only ?? known;
}

/** UsageError unless `trainCase` is absent, or a well-formed case for the train suite. */
export function checkTrainCase(suite: string, trainCase: string | undefined): void {
  if (trainCase === undefined) return;
  if (suite !== 'train') throw new UsageError(`${PROGRAM} bench: --case is for --suite train, not ${suite}`);
  parseTrainCase(trainCase);
}

/** Run one suite on the current device (init() first, or it opens the default one). */
export async function runSuite(o: SuiteOptions): Promise<BenchReport> {
  const names = suiteFamilies(o.suite, o.only);
  checkTrainCase(o.suite, o.trainCase);
  const suite = SUITES[o.suite];
  const config = { size: o.size ?? 'small', warmup: o.warmup ?? 3, iters: o.iters ?? 10, timer: o.timer ?? 'auto' };
  const precision = o.precision ?? 'fp32';
  const dev = await init();
  const log = o.log ?? ((m: string) => void process.stderr.write(`${m}\n`));
  const tiles = await usePrecision(precision, dev, `${PROGRAM} bench`);
  if (precision === 'mixed') log(`mixed precision: f16 convolution operands on ${tiles}, ${activationsNote()}`);
  const results: BenchResult[] = [];
  const ctx: BenchContext = {
    suite: o.suite,
    size: config.size,
    warmup: config.warmup,
    iters: config.iters,
    precision,
    trainCase: o.trainCase,
    record(c, t, method) {
      const s = t.medianMs * 1e6; // ms → FLOP/s·1e-9 and B/s·1e-9 in one factor
      const r: BenchResult = {
        suite: o.suite,
        name: c.name,
        shape: c.shape,
        ms: t.medianMs,
        minMs: t.minMs,
        ...(c.flops !== undefined ? { gflops: c.flops / s } : {}),
        ...(c.bytes !== undefined ? { gbps: c.bytes / s } : {}),
        ...c.extra,
        precision,
        method,
      };
      results.push(r);
      o.onResult?.(r);
      return r;
    },
    async measure(c, fn) {
      const t = await timeGpu(fn, { warmup: config.warmup, iters: config.iters, method: config.timer });
      return ctx.record(c, t, t.method);
    },
    log,
  };
  try {
    for (const name of names) {
      const { bench } = await suite.families[name]();
      await bench(ctx);
    }
  } finally {
    resetPrecision();
  }
  return { device: deviceReport(dev), suite: o.suite, config, results };
}
