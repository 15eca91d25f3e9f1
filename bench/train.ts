// `--suite train`: one training step per model, as train/trainer.ts encodes it — forward, the model's
// loss (GKGNet's LS-BCE + 10·ASL; a region model's own: models/factory.ts trainingLossFor), backward,
// AdamW with global-norm clipping at 5.0 (no decay on 1-D parameters), zero_grad — on a fixed random
// batch that stays on the GPU (no data loading). Hyperparameters and drop path come from the preset
// that trains that size (train/presets.ts); 80 labels (COCO).
// The step runs through StepReplay as in the trainer: after one warm-up step it is recorded twice
// and then replayed (engine/replay.ts); WEBVIG_REPLAY=0 times the normal path instead.
// Each sample is the wall clock of encoding one step, submitting it and `await device().sync()`
// (a step copies buffers, so GPU timestamps cannot bracket it); `host_ms_per_step` is the part
// before the wait: JS encoding and submitting one step, GPU not waited for.
// The per-step counters are device().memoryStats() deltas over the timed steps divided by their
// number: after warm-up a step should allocate no buffer and create no bind group or pipeline.
// bench/pytorch/train_step.py times the official models the same way.
// Result: { name: '<model>@<size>', shape: [B, 3, S, S], ms, minMs, images_per_s,
//   dispatches_per_step, submits_per_step, allocations_per_step, bind_groups_per_step,
//   host_ms_per_step, pipelines_per_step (pipelines created), bytes_per_step (storage bytes bound by
//   the dispatches, each binding once per dispatch — a span binding whose slots a kernel fills
//   counts the slots — plus 2× the bytes copied), peak_gpu_bytes (the
//   buffer pool's high-water mark: live + pooled bytes, over the case; PyTorch's max_memory_reserved
//   is its counterpart), peak_live_bytes (the most bytes live tensors held at once, in the pool's
//   size classes; PyTorch's max_memory_allocated is its counterpart), replayed_per_step (share of
//   the timed steps that were replays), adapter (the device, in words), precision (--precision: with
//   'mixed' the step is trainer's mixed one, loss scaling included), matrix_tiles (the convolutions'
//   subgroup-matrix shape, e.g. '16×16×16 matrix tiles', or 'none': register tiles), activations
//   ('f16' or 'f32': the dtype convolutions and matmuls wrote their outputs in), loss_after (the
//   model's loss on the bench batch after the timed steps: finite unless a step broke the weights;
//   JSON null for NaN or infinity), loss_scale (with 'mixed': the loss scale the steps left, halved
//   at every overflow), method }.
import { activationDtype, device, noGrad, tidy } from '../engine/context.js';
import { Tensor } from '../engine/tensor.js';
import { Rng } from '../engine/rng.js';
import { StepReplay } from '../engine/replay.js';
import { backward } from '../kernels/backward.js';
import { asRegionModel } from '../models/gm-mlic.js';
import { AdamW, decayGroups } from '../train/optim.js';
import { GradScaler } from '../kernels/grad-scaler.js';
import { matrixTiles, matrixName } from '../kernels/matrix-tiles.js';
import { PRESETS } from '../train/presets.js';
import { buildModel, trainingLossFor, MODEL_NAMES, modelNamesSummary, inputSizeProblem, isCpuModel } from '../models/factory.js';
import { UsageError, PROGRAM } from '../train/args.js';
import { autotuneEnabled, useTuneCache, tuneNewShapes } from '../train/tune-cache.js';
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

/**
 * `--case MODEL@SIZE:BATCH`, e.g. gkgnet-t@224:4 (the CPU comparison case of GKGNet-T); the
 * hyperparameters come from the preset that trains that model (tiny for the CPU models).
 */
export function parseTrainCase(spec: string): TrainCase {
  const prog = `${PROGRAM} bench`;
  const m = /^([a-z0-9-]+)@(\d+):(\d+)$/.exec(spec);
  if (!m) throw new UsageError(`${prog}: --case ${spec}: expected MODEL@SIZE:BATCH, e.g. gkgnet-t@224:4`);
  const [, model, size, batch] = m;
  if (!MODEL_NAMES.includes(model)) throw new UsageError(`${prog}: --case ${spec}: unknown model ${model}; models: ${modelNamesSummary()}`);
  const problem = inputSizeProblem(model, +size);
  if (problem) throw new UsageError(`${prog}: --case ${spec}: size ${size} ${problem}`);
  if (+batch < 1) throw new UsageError(`${prog}: --case ${spec}: the batch must be at least 1`);
  return { model, size: +size, batch: +batch, preset: isCpuModel(model) ? 'tiny' : 'gkgnet-s-576' };
}

/** Warm-up steps added at most so that the timed ones replay (StepReplay's attempts, with room). */
const MAX_RECORDING_STEPS = 8;

const COUNTERS = {
  dispatches_per_step: 'dispatches',
  submits_per_step: 'submits',
  allocations_per_step: 'allocations',
  bind_groups_per_step: 'bindGroupsCreated',
  pipelines_per_step: 'pipelinesCreated',
  bytes_per_step: 'boundBytes',
  replayed_per_step: 'replays',
} as const;

/** `n` normalised boxes (x0, y0, x1, y1), each at least a tenth of the image on a side. */
function randomBoxes(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const [x0, y0] = [rng.uniform() * 0.9, rng.uniform() * 0.9];
    out.set([x0, y0, x0 + 0.1 + rng.uniform() * (0.9 - x0), y0 + 0.1 + rng.uniform() * (0.9 - y0)], 4 * i);
  }
  return out;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function counters() {
  const s = device().memoryStats();
  return Object.fromEntries(Object.entries(COUNTERS).map(([k, v]) => [k, s[v]]));
}

export const bench: Family = async (ctx) => {
  const dev = device();
  const tuning = autotuneEnabled();
  if (tuning) await useTuneCache((m) => process.stderr.write(`warning: ${m}\n`));
  const cases = ctx.trainCase ? [parseTrainCase(ctx.trainCase)] : CASES[ctx.size];
  for (const { model: name, size, batch: B, preset } of cases) {
    dev.pool.resetPeak();
    const p = PRESETS[preset];
    const model = buildModel(name, { size, numLabels: LABELS, dropPath: p.dropPath, seed: 0 });
    model.train();
    model.setGenerator(new Rng(1));
    const scaler = ctx.precision === 'mixed' ? new GradScaler() : undefined;
    // The trainer's groups (spec training.md §5): weight decay on weights only.
    const opt = new AdamW(decayGroups(model.trainableParameters().map(([, t]) => t), p.weightDecay), { lr: p.lr, scaler });
    const x = Tensor.randn([B, 3, size, size], 1);
    const rng = new Rng(2);
    const target = Tensor.from(Float32Array.from({ length: B * LABELS }, () => (rng.uniform() < 0.05 ? 1 : 0)), [B, LABELS]);
    // A `-boxes` region model reads its instances from a box file: four seeded boxes per image. Its
    // ROI plan is made on the CPU per batch, so its steps run the normal way (replayed_per_step 0).
    const region = asRegionModel(model);
    if (region?.spec.source === 'boxes') {
      const names = Array.from({ length: B }, (_, b) => `bench-image-${b}`);
      region.setBoxTable(new Map(names.map((n) => [n, randomBoxes(rng, 4)])));
      region.setImages(names);
    }
    const lossOf = trainingLossFor(model);
    const replay = new StepReplay({ warmup: 1 });
    const step = () =>
      replay.run([], () => {
        const { loss } = lossOf(model.forward(x), target);
        backward(loss, scaler?.seed(loss.shape));
        opt.step({ maxGradNorm: p.maxGradNorm });
        opt.zeroGrad();
      });

    for (let i = 0; i < ctx.warmup; i++) {
      step();
      // As the trainer does: kernels are tuned after the first step, before the step is recorded.
      if (tuning) await tuneNewShapes();
    }
    // The timed steps are replays: warm up through the recording as well (a normal step, then two
    // recorded ones), unless replay is off (WEBVIG_REPLAY=0, the profiler) or keeps failing.
    for (let extra = 0; replay.enabled && !dev.profiler && !replay.recording && extra < MAX_RECORDING_STEPS; extra++) step();
    await dev.sync();
    // Warm-up steps first touch every fresh buffer (page faults on a CPU adapter): not steady state.
    await dev.profiler?.reset();
    const before = counters();
    const samples: number[] = [];
    const host: number[] = [];
    for (let i = 0; i < ctx.iters; i++) {
      const t0 = performance.now();
      step();
      dev.flush();
      const t1 = performance.now();
      await dev.sync();
      samples.push(performance.now() - t0);
      host.push(t1 - t0);
    }
    const after = counters();
    const t = { medianMs: median(samples), minMs: Math.min(...samples), samples, method: 'wallclock' as const };
    const extra: Record<string, number | string> = { images_per_s: (B * 1000) / t.medianMs };
    for (const k of Object.keys(COUNTERS)) extra[k] = (after[k] - before[k]) / ctx.iters;
    extra.host_ms_per_step = median(host);
    extra.peak_gpu_bytes = dev.pool.peakBytes;
    extra.peak_live_bytes = dev.pool.peakLiveBytes;
    extra.adapter = dev.describe();
    // What the convolutions' GEMMs ran on: subgroup matrices (tensor cores) or register tiles.
    const matrix = matrixTiles();
    extra.matrix_tiles = matrix ? matrixName(matrix) : 'none';
    extra.activations = activationDtype();
    // A step that computes garbage still times: what the steps left, read once they are timed.
    const lossAfter = noGrad(() => tidy(() => lossOf(model.forward(x), target).loss));
    extra.loss_after = await lossAfter.item();
    lossAfter.release();
    if (scaler) extra.loss_scale = (await scaler.read()).scale;
    ctx.record({ name: `${name}@${size}`, shape: [B, 3, size, size], extra }, t, t.method);
    replay.release();
    opt.release();
    scaler?.release();
    for (const v of [x, target]) v.release();
    model.release();
    // Pooled buffers sized for this model would stay allocated while the next one runs.
    await device().sync();
    device().pool.trim();
  }
};
