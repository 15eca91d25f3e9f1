// The trainer's evaluation of the built-in validation set (gkgnet-tiny, 64 px, batch 32), timed in
// one process, alternating: each batch encoded and its scores awaited before the next (as before
// evaluate() kept a batch in flight), evaluate() with a replay of its own, and with one kept across
// evaluations (as the trainer does).
// Usage: ROUNDS=4 node bench/lavapipe/eval-epoch.mjs  (needs the synthetic set: run `npm run train` once)
import { init, Tensor, F, beginScope, endScope, noGrad } from '../../dist/kernels/index.js';
import { MetricAccumulator } from '../../dist/train/metrics.js';
import { buildModel } from '../../dist/models/factory.js';
import { evaluate } from '../../dist/train/trainer.js';
import { EvalReplay } from '../../dist/train/eval-replay.js';
import { openDataset } from '../../dist/train/data/dataset.js';
import { BatchLoader } from '../../dist/train/data/loader.js';
import { PRESET_AUGMENT } from '../../dist/train/data/transforms.js';
await init();
const data = await openDataset(undefined, { root: process.cwd(), seed: 0 });
const S = data.classes.length;
const model = buildModel('gkgnet-tiny', { size: 64, numLabels: S, seed: 0 });
const loader = new BatchLoader(data.val, { batchSize: 32, augment: { ...PRESET_AUGMENT.none, size: 64 } });
const kept = new EvalReplay();
const serial = async () => {
  model.eval({ foldBatchNorm: true });
  const acc = new MetricAccumulator(S);
  for await (const batch of loader.epoch(0)) {
    const B = batch.indices.length;
    beginScope();
    const p = await noGrad(() => F.sigmoid(model.forward(Tensor.from(batch.images, [B, 3, 64, 64])))).toArray();
    endScope();
    acc.add(p, Int8Array.from(batch.labels), B);
  }
  return { mAP: acc.coco().mAP };
};
for (let r = 0; r < +(process.env.ROUNDS ?? 4); r++) {
  const row = [];
  for (const [name, replay] of [['serial', null], ['one in flight', undefined], ['kept replay', kept]]) {
    const t0 = performance.now();
    const ev = replay === null ? await serial() : await evaluate(model, loader, 64, S, data.hasDifficult, data.val, replay);
    row.push(`${name} ${(performance.now() - t0).toFixed(0)} ms (mAP ${(ev.mAP * 100).toFixed(3)})`);
  }
  console.log(row.join(', '));
}
await loader.close();
process.exit(0);
