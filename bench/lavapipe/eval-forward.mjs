// Wall time per batch of the trainer's evaluation forward (gkgnet-tiny, 64 px, 10 labels, BN folded,
// batch B): encoded each time and waited for (serial), with one batch in flight, and replayed
// (train/eval-replay.ts) with one in flight. Usage: B=32 N=10 node bench/lavapipe/eval-forward.mjs
import { init, Tensor, F, beginScope, endScope, noGrad } from '../../dist/kernels/index.js';
import { buildModel } from '../../dist/models/factory.js';
import { EvalReplay } from '../../dist/train/eval-replay.js';
await init();
const B = +(process.env.B ?? 32), N = +(process.env.N ?? 10);
const model = buildModel('gkgnet-tiny', { size: 64, numLabels: 10, seed: 0 });
model.eval({ foldBatchNorm: true });
const x = Float32Array.from({ length: B * 3 * 64 * 64 }, (_, i) => Math.sin(i));
const encoded = () => { beginScope(); const r = noGrad(() => F.sigmoid(model.forward(Tensor.from(x, [B, 3, 64, 64])))).toArray(); endScope(); return r; };
const replay = new EvalReplay();
const replayed = () => { const s = noGrad(() => replay.run(model, x, [B, 3, 64, 64], 10)); const r = s.toArray(); s.release(); return r; };
const perBatch = async (fn, inFlight) => {
  const t0 = performance.now();
  let prev = null;
  for (let i = 0; i < N; i++) { const r = fn(); if (inFlight) { await prev; prev = r; } else await r; }
  await prev;
  return ((performance.now() - t0) / N).toFixed(1);
};
for (let r = 0; r < 4; r++) {
  console.log(`B ${B}, ms per batch: serial ${await perBatch(encoded, false)}, one in flight ${await perBatch(encoded, true)}, replayed ${await perBatch(replayed, true)}`);
}
process.exit(0);
