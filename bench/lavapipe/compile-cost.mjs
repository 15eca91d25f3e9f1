// How long lavapipe spends compiling each kernel: it compiles a pipeline at its first dispatch, so
// with Mesa's shader cache off the first step's timestamps include the compile. Prints, per kernel
// label, the first dispatch's time minus the fastest one's, over two gkgnet-mini@64 b32 steps.
// Usage: MESA_SHADER_CACHE_DISABLE=true WEBVIG_AUTOTUNE=0 node bench/lavapipe/compile-cost.mjs
import { init, device, Tensor, backward, Rng } from '../../dist/kernels/index.js';
import { buildModel, trainingLossFor } from '../../dist/models/index.js';
import { AdamW } from '../../dist/train/optim.js';
await init();
const dev = device();
dev.enableProfiler();
const model = buildModel('gkgnet-mini', { size: 64, numLabels: 10, seed: 0, dropPath: 0.1 });
model.train(); model.setGenerator(new Rng(1));
const opt = new AdamW(model.trainableParameters().map(([, t]) => t), { lr: 1e-3 });
const x = Tensor.randn([32, 3, 64, 64], 1);
const t = Tensor.from(new Float32Array(320).map((_, i) => (i % 7 === 0 ? 1 : 0)), [32, 10]);
const loss = trainingLossFor(model);
for (let s = 0; s < 2; s++) {
  const { loss: l } = loss(model.forward(x), t);
  backward(l);
  opt.step({ maxGradNorm: 5 });
  opt.zeroGrad();
  await dev.sync();
}
const rows = await dev.profiler.report();
rows.sort((a, b) => (b.maxMs - b.minMs) - (a.maxMs - a.minMs));
let tot = 0;
for (const r of rows) tot += r.maxMs - r.minMs;
console.log('sum of (first - fastest) over kernels', tot.toFixed(0), 'ms');
for (const r of rows.slice(0, 15)) console.log(`${(r.maxMs - r.minMs).toFixed(0).padStart(6)} ms  ${r.kernel}`);
process.exit(0);
