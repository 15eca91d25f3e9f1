// Dynamic loss scaling (kernels/grad-scaler.ts inside AdamW.step) against a float64 CPU model of
// torch.amp.GradScaler + torch.optim.AdamW written here: scale, growth tracker, per-parameter step
// counts and parameters after every step of a sequence with finite, inf and NaN gradients (skip and
// back off), growth after the (shortened) interval, and clipping of the unscaled gradients.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';
import { GradScaler } from '../kernels/grad-scaler.js';
import { AdamW } from '../train/optim.js';
import { rand } from './ref.js';

beforeAll(async () => {
  await init();
});

const SIZES = [5, 1030, 7]; // the middle one spans two 1024-element chunks
const [B1, B2, EPS, LR, WD, MAX_NORM] = [0.9, 0.999, 1e-8, 1e-2, 0.05, 2];

/** torch.amp.GradScaler.update (_amp_update_scale_) and its defaults' names. */
class ScalerModel {
  tracker = 0;
  constructor(
    public scale: number,
    readonly growth: number,
    readonly backoff: number,
    readonly interval: number,
  ) {}
  update(foundInf: boolean): void {
    if (foundInf) {
      this.scale *= this.backoff;
      this.tracker = 0;
      return;
    }
    if (this.tracker + 1 === this.interval) {
      const grown = Math.fround(this.scale * this.growth);
      if (Number.isFinite(grown)) this.scale = grown;
      this.tracker = 0;
    } else this.tracker++;
  }
}

/** scaler.scale(loss).backward(); scaler.unscale_(opt); clip_grad_norm_; scaler.step(opt); scaler.update(), in float64. */
/** Returns the unscaled gradients' norm (what clipping sees), NaN on a skipped step. */
function modelStep(s: ScalerModel, p: Float64Array[], m: Float64Array[], v: Float64Array[], steps: number[], c: Float32Array[]): number {
  const scaled = c.map((ci) => Float64Array.from(ci, (x) => Math.fround(x * s.scale)));
  const inv = 1 / s.scale;
  const g = scaled.map((gi) => Float64Array.from(gi, (x) => x * inv));
  const found = g.some((gi) => gi.some((x) => !Number.isFinite(x)));
  let norm = NaN;
  if (!found) {
    norm = Math.sqrt(g.reduce((a, gi) => a + gi.reduce((b, x) => b + x * x, 0), 0));
    const clip = Math.min(1, MAX_NORM / (norm + 1e-6));
    p.forEach((pi, k) => {
      steps[k]++;
      const bc1 = 1 - B1 ** steps[k];
      const bc2 = 1 - B2 ** steps[k];
      for (let i = 0; i < pi.length; i++) {
        const gi = g[k][i] * clip;
        pi[i] *= 1 - LR * WD;
        m[k][i] = B1 * m[k][i] + (1 - B1) * gi;
        v[k][i] = B2 * v[k][i] + (1 - B2) * gi * gi;
        pi[i] -= (LR / bc1) * (m[k][i] / (Math.sqrt(v[k][i]) / Math.sqrt(bc2) + EPS));
      }
    });
  }
  s.update(found);
  return norm;
}

describe('GradScaler (on the GPU) vs a CPU model of torch.amp.GradScaler', () => {
  it('skips inf/NaN steps (parameters, moments, step counts), backs off, grows after the interval', async () => {
    const init0 = SIZES.map((n, k) => rand(n, 10 + k));
    const params = init0.map((d, k) => Tensor.from(d, [d.length]).param(`p${k}`));
    const scaler = new GradScaler({ initScale: 1024, growthInterval: 3 });
    const opt = new AdamW(params, { lr: LR, weightDecay: WD, scaler });
    const model = new ScalerModel(1024, 2, 0.5, 3);
    const p = init0.map((d) => Float64Array.from(d));
    const m = SIZES.map((n) => new Float64Array(n));
    const v = SIZES.map((n) => new Float64Array(n));
    const steps = SIZES.map(() => 0);
    // Per step: which gradient element is poisoned (inf, NaN) or none.
    const poison: (number | null)[] = [null, Infinity, null, null, null, -Infinity, NaN, null, null, null, null];
    const scales: number[] = [];
    for (let t = 0; t < poison.length; t++) {
      const c = SIZES.map((n, k) => Float32Array.from(rand(n, 100 * t + k), (x) => 3 * x));
      if (poison[t] !== null) c[1][1029] = poison[t]!;
      tidy(() => {
        const terms = params.map((q, k) => F.sum(F.mul(q, Tensor.from(c[k], [c[k].length]))));
        const loss = terms.reduce((a, b) => F.add(a, b));
        backward(loss, scaler.seed(loss.shape));
      });
      opt.step({ maxGradNorm: MAX_NORM });
      opt.zeroGrad();
      const norm = modelStep(model, p, m, v, steps, c);
      // Adam's update hardly depends on the gradients' scale: the norm shows clipping saw them unscaled.
      const stats = await opt.readStats();
      expect(stats.nonFinite, `step ${t + 1}`).toBe(poison[t] !== null);
      if (poison[t] === null) expect(Math.abs(stats.gradNorm / norm - 1), `step ${t + 1} norm`).toBeLessThan(1e-5);
      const got = await scaler.read();
      expect(got, `step ${t + 1}`).toEqual({ scale: model.scale, growthTracker: model.tracker });
      scales.push(got.scale);
      for (let k = 0; k < params.length; k++) {
        const d = await params[k].toArray();
        for (let i = 0; i < d.length; i++) expect(Math.abs(d[i] - p[k][i]), `step ${t + 1} p${k}[${i}]`).toBeLessThan(2e-5);
      }
    }
    // The sequence the model produced covers backoff, repeated backoff and growth.
    expect(scales).toEqual([1024, 512, 512, 512, 1024, 512, 256, 256, 256, 512, 512]);
    const state = await opt.stateDict();
    params.forEach((q, k) => expect(state.get(`p${k}.step`)!.data[0]).toBe(steps[k]));
    expect(steps[0]).toBe(8);
    expect(state.get('grad_scaler.scale')!.data[0]).toBe(512);
    expect(state.get('grad_scaler.growth_tracker')!.data[0]).toBe(1);

    // The state round-trips into a fresh optimizer and scaler.
    const scaler2 = new GradScaler();
    const opt2 = new AdamW(params.map((q) => q), { lr: LR, weightDecay: WD, scaler: scaler2, arena: false });
    opt2.loadStateDict(state);
    expect(await scaler2.read()).toEqual({ scale: 512, growthTracker: 1 });
    expect((await opt2.stateDict()).get('p1.step')!.data[0]).toBe(steps[1]);
    for (const o of [opt, opt2]) o.release();
    for (const s of [scaler, scaler2]) s.release();
    for (const q of params) q.release();
  });

  it("uses torch's defaults: init scale 65536, growth ×2, backoff ×0.5, interval 2000", () => {
    const s = new GradScaler();
    expect([s.initScale, s.growthFactor, s.backoffFactor, s.growthInterval]).toEqual([65536, 2, 0.5, 2000]);
    s.release();
  });
});
