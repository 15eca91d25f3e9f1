// Recorded and replayed training steps (engine/replay.ts): a replayed run is bit-identical to the
// normal path over several steps with a changing learning rate, drop path and changing batches
// (weights, optimizer moments and step counts, the loss ring and the drop-path generator compared
// exactly); a smaller batch falls back to the normal path and replay resumes after it; a replayed
// step creates no GPU object; per-step values written as constants are caught, never frozen. The
// evaluation forward (train/eval-replay.ts) replays with the parameters as they are now.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, device, Tensor, Rng, F, backward, keep, noGrad, beginScope, endScope, StepReplay, setOperandPrecision, type StepMode, type StepInput } from '../kernels/index.js';
import { GradScaler } from '../kernels/grad-scaler.js';
import { storeAt } from '../kernels/ring.js';
import { buildModel } from '../models/factory.js';
import { gkgnetLoss } from '../models/losses.js';
import { AdamW } from '../train/optim.js';
import { EvalReplay } from '../train/eval-replay.js';

beforeAll(async () => {
  await init();
});

const SIZE = 64;
const LABELS = 6;
const RING = 4;

interface RunResult {
  modes: StepMode[];
  params: Map<string, Float32Array>;
  optimizer: Map<string, Float32Array | Int32Array>;
  ring: Float32Array;
  rng: number[];
}

/**
 * Train gkgnet-tiny (drop path 0.1) for `batches.length` steps with lr changing every step; `mixed`:
 * as --precision mixed (f16 operands, loss scaling with a 2-step growth interval).
 */
async function run(batches: number[], replay: StepReplay, mixed = false): Promise<RunResult> {
  const scaler = mixed ? new GradScaler({ growthInterval: 2 }) : undefined;
  setOperandPrecision(mixed ? 'f16' : 'f32');
  const model = buildModel('gkgnet-tiny', { size: SIZE, numLabels: LABELS, dropPath: 0.1, seed: 3 });
  model.train();
  const rng = new Rng(11);
  model.setGenerator(rng);
  const trainable = model.trainableParameters().map(([, t]) => t);
  const opt = new AdamW(
    [
      { params: trainable.filter((t) => t.rank > 1), weightDecay: 0.05 },
      { params: trainable.filter((t) => t.rank <= 1), weightDecay: 0 },
    ],
    { lr: 1e-3, scaler },
  );
  const ring = keep(Tensor.empty([RING], 'f32', 'loss ring'));
  const data = new Rng(5);
  const slot = new Uint32Array(1);
  const modes: StepMode[] = [];
  batches.forEach((B, step) => {
    opt.lr = 1e-3 * (1 + Math.cos(step)); // a different learning rate every step
    slot[0] = step % RING;
    const inputs: StepInput[] = [
      { data: Float32Array.from({ length: B * 3 * SIZE * SIZE }, () => data.normal()), shape: [B, 3, SIZE, SIZE] },
      { data: Float32Array.from({ length: B * LABELS }, () => (data.uniform() < 0.3 ? 1 : 0)), shape: [B, LABELS] },
      { data: slot, shape: [1] },
    ];
    modes.push(
      replay.run(inputs, ([x, target, s]) => {
        const { loss } = gkgnetLoss(model.forward(x), target);
        backward(loss, scaler?.seed(loss.shape));
        opt.step({ maxGradNorm: 0.5 });
        opt.zeroGrad();
        storeAt(ring, loss, s);
      }),
    );
  });
  // Every tensor of the state dict (parameters, BatchNorm running stats) and num_batches_tracked.
  const params = new Map<string, Float32Array>();
  for (const [name, e] of await model.stateDict()) params.set(name, Float32Array.from(e.data));
  const optimizer = new Map<string, Float32Array | Int32Array>();
  for (const [k, v] of await opt.stateDict()) optimizer.set(k, v.data as Float32Array | Int32Array);
  const out = { modes, params, optimizer, ring: await ring.toArray(), rng: rng.getState() };
  ring.release();
  opt.release();
  scaler?.release();
  model.release();
  replay.release();
  setOperandPrecision('f32');
  return out;
}

/** The evaluation scores of one batch through `evalReplay` and the normal path. */
async function evalBothWays(evalReplay: EvalReplay, model: ReturnType<typeof buildModel>, images: Float32Array, shape: number[]) {
  const got = await evalReplay.scores(model, images, shape, LABELS);
  beginScope();
  const want = await noGrad(() => F.sigmoid(model.forward(Tensor.from(images, shape)))).toArray();
  endScope();
  return { got, want };
}

function expectBitIdentical(a: RunResult, b: RunResult): void {
  const bits = (v: Float32Array | Int32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  expect([...a.params.keys()]).toEqual([...b.params.keys()]);
  for (const [k, v] of a.params) expect(bits(v), k).toEqual(bits(b.params.get(k)!));
  expect([...a.optimizer.keys()]).toEqual([...b.optimizer.keys()]);
  for (const [k, v] of a.optimizer) expect(bits(v), k).toEqual(bits(b.optimizer.get(k)!));
  expect(bits(a.ring)).toEqual(bits(b.ring));
  expect(a.rng).toEqual(b.rng);
}

describe('step replay', () => {
  it('a replayed run is bit-identical to the normal path (changing lr, batches, drop path, ring slot)', async () => {
    const batches = [2, 2, 2, 2, 2, 2, 2];
    const replayed = await run(batches, new StepReplay({ warmup: 1 }));
    const normal = await run(batches, new StepReplay({ enabled: false }));
    // One warm-up step, two recordings that must agree, then four replayed steps.
    expect(replayed.modes).toEqual(['normal', 'recorded', 'recorded', 'replayed', 'replayed', 'replayed', 'replayed']);
    expect(normal.modes.every((m) => m === 'normal')).toBe(true);
    expectBitIdentical(replayed, normal);
    // The run did train: the ring holds four finite losses, the moments are not all zero.
    expect([...replayed.ring].every(Number.isFinite)).toBe(true);
    expect([...replayed.optimizer.values()].some((v) => v instanceof Float32Array && v.some((x) => x !== 0))).toBe(true);
  }, 240_000);

  it('under --precision mixed (f16 operands, loss scale, found-inf skips on the GPU) too', async () => {
    const batches = [2, 2, 2, 2, 2, 2];
    const replayed = await run(batches, new StepReplay({ warmup: 1 }), true);
    const normal = await run(batches, new StepReplay({ enabled: false }), true);
    expect(replayed.modes).toEqual(['normal', 'recorded', 'recorded', 'replayed', 'replayed', 'replayed']);
    expectBitIdentical(replayed, normal);
    // The scaler's state is part of the optimizer state compared above, and it moved.
    expect(replayed.optimizer.get('grad_scaler.scale')![0]).not.toBe(65536);
    expect([...replayed.ring].every(Number.isFinite)).toBe(true);
  }, 240_000);

  it('falls back to the normal path for a smaller batch and replays again after it', async () => {
    const batches = [2, 2, 2, 2, 1, 2, 2];
    const replayed = await run(batches, new StepReplay({ warmup: 1 }));
    const normal = await run(batches, new StepReplay({ enabled: false }));
    expect(replayed.modes).toEqual(['normal', 'recorded', 'recorded', 'replayed', 'normal', 'replayed', 'replayed']);
    expectBitIdentical(replayed, normal);
  }, 240_000);

  it('a lasting change of batch size is recorded anew (one odd batch is not)', async () => {
    const batches = [2, 2, 2, 2, 1, 2, 1, 1, 1, 1, 1, 1, 1];
    const replayed = await run(batches, new StepReplay({ warmup: 1 }));
    const normal = await run(batches, new StepReplay({ enabled: false }));
    expect(replayed.modes).toEqual([
      'normal', 'recorded', 'recorded', 'replayed', 'normal', 'replayed',
      'normal', 'normal', 'normal', // the third step at batch 1 drops the batch-2 recording, then warms up
      'recorded', 'recorded', 'replayed', 'replayed',
    ]);
    expectBitIdentical(replayed, normal);
  }, 240_000);

  it('a replayed step allocates nothing, creates no bind group, pipeline or uniform, and submits once', async () => {
    const model = buildModel('gkgnet-tiny', { size: SIZE, numLabels: LABELS, dropPath: 0.1, seed: 3 });
    model.train();
    model.setGenerator(new Rng(1));
    const opt = new AdamW(model.trainableParameters().map(([, t]) => t), { lr: 1e-3 });
    const x = new Float32Array(2 * 3 * SIZE * SIZE).fill(0.5);
    const y = new Float32Array(2 * LABELS).fill(1);
    const replay = new StepReplay({ warmup: 1 });
    const step = () =>
      replay.run(
        [
          { data: x, shape: [2, 3, SIZE, SIZE] },
          { data: y, shape: [2, LABELS] },
        ],
        ([xt, yt]) => {
          backward(gkgnetLoss(model.forward(xt), yt).loss);
          opt.step({ maxGradNorm: 5 });
          opt.zeroGrad();
        },
      );
    for (let i = 0; i < 3; i++) step();
    await device().sync();
    const s0 = device().memoryStats();
    expect(step()).toBe('replayed');
    expect(step()).toBe('replayed');
    const s1 = device().memoryStats();
    expect(s1.allocations - s0.allocations).toBe(0);
    // Nothing of the recorded step stays alive: no tensor, no buffer held.
    expect(s1.liveBytes).toBe(s0.liveBytes);
    expect(s1.bindGroupsCreated - s0.bindGroupsCreated).toBe(0);
    expect(s1.pipelinesCreated - s0.pipelinesCreated).toBe(0);
    expect(s1.uniformBuffersCreated - s0.uniformBuffersCreated).toBe(0);
    expect(s1.submits - s0.submits).toBe(2);
    expect(s1.replays - s0.replays).toBe(2);
    const rec = replay.recording!;
    // The inputs and AdamW's hyper go straight into their buffers (drop-path masks may land in a
    // buffer the step used before: those go through the arena, the only copies left). The
    // parameters live in the optimizer's flat buffer and the gradients are gathered by dispatches.
    expect(rec.writeCounts.direct).toBeGreaterThanOrEqual(3);
    expect(rec.ops.filter((o) => o.pipeline === null)).toHaveLength(rec.writeCounts.arena);
    expect(s1.dispatches - s0.dispatches).toBe(2 * rec.dispatches);
    expect(s1.boundBytes - s0.boundBytes).toBe(2 * rec.boundBytes);
    // Trimming the pool destroys buffers the recording names: the recording is dropped, the step runs
    // the normal way (warm-up again: new buffers), is recorded twice and replays again.
    await device().sync();
    device().pool.trim();
    expect(step()).toBe('normal');
    expect(replay.reason).toMatch(/reused, released or destroyed/);
    expect([step(), step(), step()]).toEqual(['recorded', 'recorded', 'replayed']);
    await device().sync();
    replay.release();
    opt.release();
    model.release();
  }, 240_000);

  it('a per-step value written as a constant (no producer) is caught: the step never replays', async () => {
    const w = keep(Tensor.from([1, 2, 3, 4], [4]));
    const out = keep(F.zeros([4]));
    const replay = new StepReplay({ warmup: 1, maxAttempts: 2 });
    const modes: StepMode[] = [];
    for (let step = 0; step < 6; step++) {
      modes.push(
        replay.run([], () => {
          const lr = Tensor.from([step], [1]); // frozen by a recording if it were replayed
          const y = F.mul(w, lr);
          device().copy(y.pooled, 0, out.pooled, 0, 16);
        }),
      );
    }
    expect(modes).not.toContain('replayed');
    expect(replay.reason).toMatch(/no producer/);
    expect([...(await out.toArray())]).toEqual([5, 10, 15, 20]);
    for (const t of [w, out]) t.release();
    replay.release();
  });

  it('the evaluation forward, replayed across batches and parameter changes, gives the scores of the normal path bit for bit', async () => {
    const model = buildModel('gkgnet-tiny', { size: SIZE, numLabels: LABELS, seed: 3 });
    model.eval({ foldBatchNorm: true });
    const evalReplay = new EvalReplay();
    const data = new Rng(7);
    const bits = (v: Float32Array) => [...new Uint32Array(v.buffer, v.byteOffset, v.length)];
    const weight = model.namedParameters().find(([, t]) => t.rank === 4)![1];
    const runningVar = model.namedBuffers().find(([n]) => n.endsWith('running_var'))![1];
    // A smaller batch in the middle (normal path), and the parameters and running statistics
    // changed in place before the last batches, as training does between two evaluations.
    for (const [i, B] of [2, 2, 2, 2, 1, 2, 2].entries()) {
      if (i === 5) {
        weight.write(Float32Array.from({ length: weight.size }, () => data.normal() * 0.1));
        runningVar.write(Float32Array.from({ length: runningVar.size }, () => 0.5 + data.uniform()));
      }
      const images = Float32Array.from({ length: B * 3 * SIZE * SIZE }, () => data.normal());
      const { got, want } = await evalBothWays(evalReplay, model, images, [B, 3, SIZE, SIZE]);
      expect(bits(got), `batch ${i}`).toEqual(bits(want));
    }
    expect(evalReplay.counts.replayed).toBe(3);
    evalReplay.release();
    model.release();
  });

  it('a region model with per-image boxes runs every batch the normal way: its ROI plan is made on the CPU per batch', async () => {
    const boxes = new Map([['a.jpg', Float32Array.of(0.1, 0.2, 0.6, 0.9, 0, 0, 0.5, 0.5)]]);
    const model = buildModel('gm-mlic-boxes', { size: SIZE, numLabels: LABELS, seed: 2, boxes }) as ReturnType<typeof buildModel> & { setImages(p: readonly string[]): void };
    model.eval({ foldBatchNorm: true });
    const evalReplay = new EvalReplay();
    const images = Float32Array.from({ length: 3 * SIZE * SIZE }, (_, i) => Math.sin(i));
    const shape = [1, 3, SIZE, SIZE];
    // Three batches whose images have no boxes (the whole image each time), then one that has them.
    for (const path of ['b.jpg', 'c.jpg', 'd.jpg', 'a.jpg']) {
      model.setImages([path]);
      const { got, want } = await evalBothWays(evalReplay, model, images, shape);
      expect([...got], path).toEqual([...want]);
    }
    expect(evalReplay.counts.replayed).toBe(0);
    evalReplay.release();
    model.release();
  });

  it('IA-GCN (its reparameterisation noise drawn per step) replays, bit-identical to the normal path', async () => {
    const trainLabels = [[1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 0]].map((l) => Int8Array.from(l));
    const train = async (replay: StepReplay) => {
      const model = buildModel('ia-gcn-grid', { size: SIZE, numLabels: LABELS, seed: 6, trainLabels }) as ReturnType<typeof buildModel> & { trainingLoss(y: Tensor, t: Tensor): { loss: Tensor } };
      model.train();
      const rng = new Rng(9);
      model.setGenerator(rng);
      const opt = new AdamW([{ params: model.trainableParameters().map(([, t]) => t), weightDecay: 0.01 }], { lr: 1e-3 });
      const data = new Rng(4);
      const modes: StepMode[] = [];
      for (let step = 0; step < 6; step++) {
        const inputs: StepInput[] = [
          { data: Float32Array.from({ length: 2 * 3 * SIZE * SIZE }, () => data.normal()), shape: [2, 3, SIZE, SIZE] },
          { data: Float32Array.from({ length: 2 * LABELS }, () => (data.uniform() < 0.3 ? 1 : 0)), shape: [2, LABELS] },
        ];
        modes.push(replay.run(inputs, ([x, t]) => {
          backward(model.trainingLoss(model.forward(x), t).loss);
          opt.step();
          opt.zeroGrad();
        }));
      }
      const params = [...(await model.stateDict()).values()].map((e) => [...new Uint32Array(Float32Array.from(e.data).buffer)]);
      opt.release();
      model.release();
      replay.release();
      return { modes, params, rng: rng.getState() };
    };
    const normal = await train(new StepReplay({ enabled: false }));
    const replayed = await train(new StepReplay({ warmup: 1 }));
    expect(replayed.modes).toContain('replayed');
    expect(replayed.params).toEqual(normal.params);
    expect(replayed.rng).toEqual(normal.rng);
  });
});
