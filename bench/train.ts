// `--suite train`: one training step per model, as train/trainer.ts encodes it — forward, GKGNet loss
// (LS-BCE + 10·ASL), backward, AdamW with global-norm clipping at 5.0 (no decay on 1-D parameters),
// zero_grad — on a fixed random batch that stays on the GPU (no data loading). Hyperparameters and
// drop path come from the preset that trains that size (train/presets.ts); 80 labels (COCO).
// Each sample is the wall clock of encoding one step, submitting it and `await device().sync()`
// (timeGpu's wall-clock method; a step copies buffers, so GPU timestamps cannot bracket it).
// The per-step counters are device().memoryStats() deltas over the timed steps divided by their
// number: after warm-up a step should allocate no buffer and create no bind group.
// bench/pytorch/train_step.py times the official models the same way.
// Result: { name: '<model>@<size>', shape: [B, 3, S, S], ms, minMs, images_per_s,
//   dispatches_per_step, submits_per_step, allocations_per_step, bind_groups_per_step, method }.
import { device, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { Rng } from '../engine/rng.js';
import { backward } from '../kernels/backward.js';
import { timeGpu } from '../engine/timing.js';
import { buildModel } from '../models/factory.js';
import { gkgnetLoss } from '../models/losses.js';
import { AdamW } from '../train/optim.js';
import { PRESETS } from '../train/presets.js';
import type { BenchSize, Family } from './common.js';

interface TrainCase {
  model: string;
  size: number;
  batch: number;
  preset: keyof typeof PRESETS;
}

const LABELS = 80;

const CASES: Record<BenchSize, TrainCase[]> = {
  tiny: [{ model: 'gkgnet-tiny', size: 64, batch: 2, preset: 'tiny' }],
  small: [{ model: 'gkgnet-tiny', size: 64, batch: 16, preset: 'tiny' }],
  large: [
    { model: 'gkgnet-s', size: 224, batch: 32, preset: 'gkgnet-s-576' },
    { model: 'gkgnet-s', size: 448, batch: 16, preset: 'gkgnet-s-576' },
    { model: 'gkgnet-t', size: 448, batch: 16, preset: 'gkgnet-s-576' },
    { model: 'vig-s', size: 224, batch: 64, preset: 'gkgnet-s-576' },
  ],
};

const COUNTERS = { dispatches_per_step: 'dispatches', submits_per_step: 'submits', allocations_per_step: 'allocations', bind_groups_per_step: 'bindGroupsCreated' } as const;

function counters() {
  const s = device().memoryStats();
  return Object.fromEntries(Object.entries(COUNTERS).map(([k, v]) => [k, s[v]]));
}

export const bench: Family = async (ctx) => {
  for (const { model: name, size, batch: B, preset } of CASES[ctx.size]) {
    const p = PRESETS[preset];
    const model = buildModel(name, { size, numLabels: LABELS, dropPath: p.dropPath, seed: 0 });
    model.train();
    model.setGenerator(new Rng(1));
    const trainable = model.trainableParameters().map(([, t]) => t);
    // The trainer's groups (spec training.md §5): weight decay on weights only.
    const opt = new AdamW(
      [
        { params: trainable.filter((t) => t.rank > 1), weightDecay: p.weightDecay },
        { params: trainable.filter((t) => t.rank <= 1), weightDecay: 0 },
      ],
      { lr: p.lr },
    );
    const x = Tensor.randn([B, 3, size, size], 1);
    const rng = new Rng(2);
    const target = Tensor.from(Float32Array.from({ length: B * LABELS }, () => (rng.uniform() < 0.05 ? 1 : 0)), [B, LABELS]);
    const step = () => {
      backward(gkgnetLoss(model.forward(x), target).loss);
      opt.step({ maxGradNorm: p.maxGradNorm });
      opt.zeroGrad();
    };

    for (let i = 0; i < ctx.warmup; i++) tidy(step);
    await device().sync();
    const before = counters();
    const t = await timeGpu(step, { warmup: 0, iters: ctx.iters, method: 'wallclock' });
    const after = counters();
    const extra: Record<string, number> = { images_per_s: (B * 1000) / t.medianMs };
    for (const k of Object.keys(COUNTERS)) extra[k] = (after[k] - before[k]) / ctx.iters;
    ctx.record({ name: `${name}@${size}`, shape: [B, 3, size, size], extra }, t, t.method);
    opt.release();
    for (const v of [x, target]) v.release();
    model.release();
    // Pooled buffers sized for this model would stay allocated while the next one runs.
    await device().sync();
    device().pool.trim();
  }
};
