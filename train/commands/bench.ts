// `webvig bench` (npm run bench -- --suite kernels|train [--size small|large] [--json]): runs a suite
// of bench/run.ts and prints one row per case, or one JSON object { device, suite, config, results }.
import { init } from '../../engine/context.js';
import type { TimingMethod } from '../../engine/timing.js';
import { defineCommand } from '../args.js';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { SUITES, suiteFamilies, runSuite, checkTrainCase } from '../../bench/run.js';
import { SIZES, type BenchSize } from '../../bench/common.js';
import { PRECISION_FLAG, type Precision } from '../precision.js';

const COLUMNS = ['name', 'shape', 'ms', 'GFLOP/s', 'GB/s', 'method'] as const;
const WIDTHS = [18, 20, 10, 10, 10, 9];

function num(v: number | undefined): string {
  if (v === undefined) return '';
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toPrecision(4) : v.toPrecision(3);
}

function row(cells: readonly string[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(WIDTHS[i]) : c.padStart(WIDTHS[i]))).join(' ').trimEnd() + '\n';
}

export const command = defineCommand({
  name: 'bench',
  summary: `Run a benchmark suite and print one row per case (or one JSON object with --json). Suites: ${Object.entries(SUITES)
    .map(([k, s]) => `${k} (${s.help})`)
    .join('; ')}.`,
  flags: {
    suite: { type: 'string', default: 'kernels', help: `suite to run: ${Object.keys(SUITES).join(', ')}` },
    size: { type: 'string', choices: SIZES, default: 'small', help: 'problem sizes: tiny (tests), small (CPU adapters), large (GPUs)' },
    json: { type: 'boolean', help: 'print one JSON object { device, suite, config, results } and nothing else on stdout' },
    iters: { type: 'number', integer: true, min: 1, max: 2048, default: 10, help: 'timed calls per case (the median is reported)' },
    warmup: { type: 'number', integer: true, min: 0, default: 3, help: 'untimed calls per case first' },
    timer: { type: 'string', choices: ['auto', 'timestamp', 'wallclock'], default: 'auto', help: 'GPU timestamps when available (auto) or wall clock around a sync' },
    only: { type: 'string', help: 'comma-separated families of the suite to run, e.g. matmul,softmax; all when omitted' },
    precision: PRECISION_FLAG,
    case: { type: 'string', help: 'train suite: one case MODEL@SIZE:BATCH (e.g. gkgnet-t@224:4) instead of the size\'s cases' },
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    const only = flags.only?.split(',').map((s) => s.trim()).filter(Boolean);
    suiteFamilies(flags.suite, only);
    checkTrainCase(flags.suite, flags.case);
    const dev = await init({ adapter: adapterOf(flags, 'webvig bench'), backend: flags.backend });
    if (!flags.json) {
      io.stdout(`${dev.describe()} · suite ${flags.suite} · size ${flags.size} · median of ${flags.iters}\n`);
      io.stdout(row(COLUMNS));
    }
    const report = await runSuite({
      suite: flags.suite,
      size: flags.size as BenchSize,
      warmup: flags.warmup,
      iters: flags.iters,
      timer: flags.timer as TimingMethod | 'auto',
      only,
      precision: (flags.precision ?? 'fp32') as Precision,
      trainCase: flags.case,
      onResult: flags.json
        ? undefined
        : (r) => io.stdout(row([r.name, `[${r.shape.join(',')}]`, num(r.ms), num(r.gflops), num(r.gbps), r.method])),
      log: (m) => io.stderr(`${m}\n`),
    });
    if (flags.json) io.stdout(`${JSON.stringify(report)}\n`);
  },
});
