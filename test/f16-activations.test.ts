// f16 activations end to end (--precision mixed on the gpu kernel profile): a GKGNet step whose
// convolutions write f16 runs with every op on its feature maps reading f16 natively (casts only
// where an f32 label tensor meets an f16 one), takes less memory, and computes the loss and
// parameter gradients of the same step with f32 activations to within f16 storage rounding; a short
// mixed run on that profile learns. The f16 step uses the f32 step's KNN neighbours: at random
// initialisation many neighbours are near-ties, and rounding features to f16 (as autocast does)
// swaps some, which changes the function itself; the comparison is about storage rounding.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, device, Tensor, F, keep, tidy, backward, setOperandPrecision, setActivationDtype, activationDtype } from '../kernels/index.js';
import type { KernelProfile } from '../engine/device.js';
import { Rng } from '../engine/rng.js';
import { buildModel, trainingLossFor } from '../models/factory.js';
import { iaGcnLoss } from '../models/ia-gcn.js';
import { train } from '../train/trainer.js';
import { PRESETS } from '../train/presets.js';

const LABELS = 10;
let saved: KernelProfile;

beforeAll(async () => {
  await init();
  saved = device().kernelProfile;
  device().kernelProfile = 'gpu';
});

afterAll(() => {
  device().kernelProfile = saved;
  setOperandPrecision('f32');
  setActivationDtype('f32');
});

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  peakLive: number;
  /** Elements of each cast dispatch. */
  casts: number[];
  dtypes: Set<string>;
}

/** Each KNN module's neighbours in the f32 step, by module path, used again by the f16 step. */
const neighbours = new Map<string, Tensor>();

/** One forward + backward of gkgnet-tiny at 64 px, batch 4, with f16 operands and the given activations. */
async function step(activations: 'f32' | 'f16'): Promise<StepResult> {
  setOperandPrecision('f16');
  setActivationDtype(activations);
  const dev = device();
  const model = buildModel('gkgnet-tiny', { size: 64, numLabels: LABELS, dropPath: 0, seed: 0 });
  model.train();
  model.setGenerator(new Rng(1));
  if (activations === 'f32') model.setTracer({ neighbours: () => null, ownNeighbours: (path, idx) => void neighbours.set(path, keep(F.clone(idx))) });
  else model.setTracer({ neighbours: (path) => neighbours.get(path) ?? null });
  const x = Tensor.randn([4, 3, 64, 64], 1);
  const rng = new Rng(2);
  const target = Tensor.from(Float32Array.from({ length: 4 * LABELS }, () => (rng.uniform() < 0.2 ? 1 : 0)), [4, LABELS]);
  const dtypes = new Set<string>();
  const casts: number[] = [];
  const orig = dev.dispatch.bind(dev);
  dev.dispatch = (p, args, params, wg, ctx) => {
    if (ctx.startsWith('cast ')) casts.push((args[0] as Tensor).size);
    for (const a of args) if ((a as Tensor).dtype) dtypes.add((a as Tensor).dtype);
    return orig(p, args, params, wg, ctx);
  };
  await dev.sync();
  dev.pool.resetPeak();
  const base = dev.pool.liveBytes;
  let loss: Tensor;
  try {
    loss = tidy(() => {
      const { loss } = trainingLossFor(model)(model.forward(x), target);
      backward(loss);
      return loss;
    });
  } finally {
    dev.dispatch = orig;
  }
  const peakLive = dev.pool.peakLiveBytes - base;
  const params = model.trainableParameters();
  const grads = new Map<string, Float32Array>();
  for (const [name, t] of params) grads.set(name, await t.grad!.toArray());
  const result = { loss: await loss.item(), grads, peakLive, casts, dtypes };
  for (const [, t] of params) {
    t.grad?.release();
    t.grad = null;
  }
  loss.release();
  x.release();
  target.release();
  model.release();
  return result;
}

describe('f16 activations (gpu kernel profile)', () => {
  let f32: StepResult;
  let f16: StepResult;

  afterAll(() => {
    for (const t of neighbours.values()) t.release();
  });

  it('a GKGNet step with f16 activations reads them natively: no feature map is cast, less memory', async () => {
    f32 = await step('f32');
    f16 = await step('f16');
    expect(neighbours.size).toBeGreaterThan(0);
    expect(f32.dtypes.has('f16')).toBe(false);
    expect(f32.casts).toEqual([]);
    expect(f16.dtypes.has('f16')).toBe(true);
    // The label branch adds f32 label embeddings to f16 features (f32 result, as PyTorch promotes):
    // casts of label-sized tensors only, none of an image's feature map (≥ 8·16·16 per image).
    for (const n of f16.casts) expect(n).toBeLessThan(4 * 8 * 16 * 16);
    expect(f16.peakLive).toBeLessThan(0.75 * f32.peakLive);
  }, 300_000);

  it('its loss and every parameter gradient match the step with f32 activations to within f16 rounding', () => {
    expect(Math.abs(f16.loss - f32.loss)).toBeLessThanOrEqual(1e-3 * Math.abs(f32.loss));
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    const norms = [...f32.grads.values()].map(norm).sort((a, b) => a - b);
    const median = norms[norms.length >> 1];
    for (const [name, want] of f32.grads) {
      const got = f16.grads.get(name)!;
      let dot = 0, nw = 0, ng = 0, diff = 0;
      for (let i = 0; i < want.length; i++) {
        dot += got[i] * want[i];
        nw += want[i] ** 2;
        ng += got[i] ** 2;
        diff += (got[i] - want[i]) ** 2;
      }
      // Gradients that are zero but for rounding (a bias feeding a BatchNorm) are all noise.
      if (Math.sqrt(nw) < 1e-2 * median) continue;
      // f16 rounds each stored activation and gradient by up to 2^-11; ~50 layers back to the stem
      // and the max-relative choices that rounding flips add up to a few percent there.
      const rel = Math.sqrt(diff / nw);
      expect(rel, `${name}: relative error`).toBeLessThan(name.startsWith('head.') ? 2e-2 : 0.15);
      expect(dot / Math.sqrt(nw * ng), `${name}: cosine`).toBeGreaterThan(0.99);
    }
  });

  it('a short mixed run on the gpu profile stores f16 activations and learns', async () => {
    const root = mkdtempSync(join(tmpdir(), 'webvig-f16-'));
    const out = join(root, 'run');
    const lines: string[] = [];
    await train({
      ...PRESETS.tiny, preset: 'tiny', epochs: 3, batch: 16, data: undefined, out, seed: 3, workers: 0, skipBad: false,
      root, logEvery: 2, synthetic: { train: 96, val: 32, size: 64 }, precision: 'mixed',
    }, (l) => lines.push(l));
    expect(lines.find((l) => l.startsWith('device:'))).toMatch(/f16 activations/);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    for (const r of rows) expect(Number.isFinite(r.train_loss)).toBe(true);
    expect(rows[2].train_loss).toBeLessThan(0.97 * rows[0].train_loss);
    expect(activationDtype()).toBe('f32');
  }, 600_000);
});

describe('losses with f16 inputs', () => {
  it("IA-GCN's KL term is computed in f32: finite where f16 would overflow (μ = 300, log σ² = 12)", async () => {
    const mu = Tensor.from([300, 1], [1, 2, 1], 'f16');
    const logvar = Tensor.from([12, 0], [1, 2, 1], 'f16');
    const logits = Tensor.from([0, 0, 0], [1, 3]);
    const rough = Tensor.from([0, 0, 0, 0, 0, 0], [1, 2, 3]);
    const target = Tensor.from([1, 0, 0], [1, 3]);
    const kl = tidy(() => iaGcnLoss(logits, rough, mu, logvar, target).kl);
    // −½ (1 + log σ² − μ² − σ²), averaged over the two ROIs
    const want = 0.5 * ((300 ** 2 + Math.exp(12) - 12 - 1) + (1 + 1 - 0 - 1)) / 2;
    expect(kl.dtype).toBe('f32');
    expect(Math.abs((await kl.item()) - want) / want).toBeLessThan(1e-6);
    for (const t of [mu, logvar, logits, rough, target, kl]) t.release();
  });
});
