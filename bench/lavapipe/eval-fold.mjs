// Eval forward with and without eval({ foldBatchNorm: true }), alternating: median / min ms,
// dispatches, and the largest logit difference. The second and later forwards take the first one's
// KNN neighbours (the tracer's injection), so that a flipped near-tie does not hide the fold's own
// rounding. Usage: MODEL=gkgnet-tiny SIZE=64 B=16 ITERS=8 node bench/lavapipe/eval-fold.mjs
import { init, Tensor, noGrad, device, beginScope, endScope, keep } from '../../dist/kernels/index.js';
import { buildModel } from '../../dist/models/index.js';
await init();
const name = process.env.MODEL ?? 'gkgnet-tiny';
const size = +(process.env.SIZE ?? 64);
const B = +(process.env.B ?? 16);
const iters = +(process.env.ITERS ?? 8);
const model = buildModel(name, { size, numLabels: 80 });
// Running statistics away from (0, 1): two train-mode forwards.
model.train();
for (let i = 0; i < 2; i++) {
  beginScope();
  noGrad(() => model.forward(Tensor.randn([B, 3, size, size], 10 + i)));
  endScope();
}
const x = Tensor.randn([B, 3, size, size], 1);
const neighbours = new Map();
model.setTracer({
  neighbours: (path) => neighbours.get(path) ?? null,
  ownNeighbours: (path, idx) => void (neighbours.has(path) || neighbours.set(path, keep(idx.view(idx.shape)))),
});
async function run(foldBatchNorm) {
  model.eval({ foldBatchNorm });
  const ms = [];
  let logits;
  let dispatches;
  for (let i = 0; i < iters; i++) {
    beginScope();
    const d0 = device().stats.dispatches;
    const t0 = performance.now();
    logits = await noGrad(() => model.forward(x)).toArray();
    ms.push(performance.now() - t0);
    dispatches = device().stats.dispatches - d0;
    endScope();
  }
  ms.sort((a, b) => a - b);
  return { median: ms[ms.length >> 1], min: ms[0], dispatches, logits };
}
const rounds = [];
for (let r = 0; r < 3; r++) rounds.push(['plain', await run(false)], ['folded', await run(true)]);
for (const [label, v] of rounds) console.log(`${label.padEnd(6)} ${v.median.toFixed(1)} ms (min ${v.min.toFixed(1)}), ${v.dispatches} dispatches`);
const [a, b] = [rounds[0][1].logits, rounds[1][1].logits];
let diff = 0;
let top = 0;
for (let i = 0; i < a.length; i++) {
  diff = Math.max(diff, Math.abs(a[i] - b[i]));
  top = Math.max(top, Math.abs(a[i]));
}
console.log(`${name} @${size} batch ${B}: max |folded − plain| ${diff.toExponential(2)}, max |logit| ${top.toFixed(2)}`);
process.exit(0);
