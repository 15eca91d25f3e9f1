// Host-side cost of one op launch once everything is cached: shape checks, params packing, the
// pipeline, bind-group and uniform cache look-ups and encoding one dispatch (no submit, no GPU
// wait). A training step issues thousands of these, so this bounds its CPU side. Timed with
// tinybench, a devDependency imported lazily: without it this case is skipped with a note.
import { device, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { add } from '../kernels/elementwise.js';
import type { BenchSize, Family } from './common.js';

/** Time budget (ms) per size: a few thousand encoded dispatches that the GPU then runs. */
const BUDGET_MS: Record<BenchSize, number> = { tiny: 20, small: 200, large: 500 };

export const bench: Family = async (ctx) => {
  let tinybench: typeof import('tinybench');
  try {
    tinybench = await import('tinybench');
  } catch {
    ctx.log('bench dispatch: skipped (tinybench, a devDependency, is not installed)');
    return;
  }
  const x = Tensor.randn([64], 1);
  const y = Tensor.randn([64], 2);
  const b = new tinybench.Bench({ time: BUDGET_MS[ctx.size], iterations: 64, warmupTime: BUDGET_MS[ctx.size] / 4, throws: true });
  b.add('dispatch_encode', () => void tidy(() => add(x, y)));
  await b.run();
  // Run what was encoded, so that the next family times only its own work.
  await device().sync();
  x.release();
  y.release();
  const r = b.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`bench dispatch: tinybench task ended in state ${r.state}`);
  ctx.record({ name: 'dispatch_encode', shape: [64] }, { medianMs: r.latency.p50, minMs: r.latency.min }, 'cpu');
};
