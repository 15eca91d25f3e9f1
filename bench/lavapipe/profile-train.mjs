// Per-kernel GPU time of the train suite's steps (WEBVIG_PROFILE=1, or =sites per call site), grouped by kernel label; SIZE=small|large, or CASE=MODEL@SIZE:BATCH.
import { runSuite } from '../../dist/bench/run.js';
import { device } from '../../dist/engine/context.js';
process.env.WEBVIG_PROFILE ??= '1';
const rep = await runSuite({ suite: 'train', size: process.env.SIZE ?? 'small', trainCase: process.env.CASE, warmup: 1, iters: +(process.env.ITERS ?? 2), log: () => {} });
console.log(JSON.stringify(rep.results.map((r) => [r.name, r.ms, r.dispatches_per_step])));
const rows = await device().profiler.report();
const total = rows.reduce((s, r) => s + r.ms, 0);
console.log(`total GPU ms ${total.toFixed(0)}`);
for (const r of rows.slice(0, +(process.env.TOP ?? 30))) console.log(`${r.ms.toFixed(1).padStart(9)} ms ${String(r.calls).padStart(6)}  ${(100 * r.ms / total).toFixed(1).padStart(5)}%  min ${r.minMs.toFixed(2).padStart(7)}  max ${r.maxMs.toFixed(2).padStart(7)}  ${r.kernel}`);
process.exit(0);
