// AdamW and gradient clipping against a float64 CPU transcription of torch.optim.AdamW and
// torch.nn.utils.clip_grad_norm_, plus state-dict round trip and "no GPU objects after warm-up".
import { describe, it, expect, beforeAll } from 'vitest';
import { init, device, Tensor, F, backward, tidy, keep, Rng } from '../kernels/index.js';
import { AdamW, clipGradNorm } from '../train/optim.js';
import { relErr, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

// ---------------------------------------------------------------- float64 reference

interface RefGroup { lr: number; wd: number }

class RefAdamW {
  p: Float64Array[];
  m: Float64Array[];
  v: Float64Array[];
  steps: number[];
  constructor(init: Float32Array[], readonly groups: RefGroup[], readonly groupOf: number[], readonly betas = [0.9, 0.999], readonly eps = 1e-8) {
    this.p = init.map((a) => Float64Array.from(a));
    this.m = init.map((a) => new Float64Array(a.length));
    this.v = init.map((a) => new Float64Array(a.length));
    this.steps = init.map(() => 0);
  }

  step(grads: (Float32Array | null)[], maxNorm?: number): number {
    const norm = refNorm(grads);
    const scale = maxNorm === undefined ? 1 : Math.min(1, maxNorm / (norm + 1e-6));
    const [b1, b2] = this.betas;
    grads.forEach((g, i) => {
      if (!g) return;
      const t = ++this.steps[i];
      const { lr, wd } = this.groups[this.groupOf[i]];
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      const p = this.p[i], m = this.m[i], v = this.v[i];
      for (let k = 0; k < g.length; k++) {
        const gk = g[k] * scale;
        p[k] *= 1 - lr * wd;
        m[k] = b1 * m[k] + (1 - b1) * gk;
        v[k] = b2 * v[k] + (1 - b2) * gk * gk;
        p[k] -= (lr / bc1) * m[k] / (Math.sqrt(v[k]) / Math.sqrt(bc2) + this.eps);
      }
    });
    return norm;
  }
}

function refNorm(grads: (Float32Array | null)[]): number {
  let s = 0;
  for (const g of grads) if (g) for (const x of g) s += x * x;
  return Math.sqrt(s);
}

function randArray(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

// ---------------------------------------------------------------- fixtures

// Odd sizes: 1 element, a chunk crossing (1500), one over two chunks (2049), 2-D shapes.
const SHAPES: number[][] = [[7], [30, 50], [2049], [1], [3, 5]];
const GROUP_OF = [0, 0, 0, 1, 1];

function makeParams(seed: number): { params: Tensor[]; init: Float32Array[] } {
  const rng = new Rng(seed);
  const init = SHAPES.map((s) => randArray(s.reduce((a, b) => a * b, 1), rng));
  const params = init.map((a, i) => Tensor.from(a, SHAPES[i]).param(`w${i}`));
  return { params, init };
}

function gradsFor(step: number, seed = 99): Float32Array[] {
  const rng = new Rng(seed + step * 7919);
  return SHAPES.map((s, i) => randArray(s.reduce((a, b) => a * b, 1), rng, 0.1 * (i + 1)));
}

function setGrads(params: Tensor[], grads: (Float32Array | null)[]): void {
  params.forEach((p, i) => {
    p.grad?.release();
    const g = grads[i];
    p.grad = g ? keep(Tensor.from(g, p.shape)) : null;
  });
}

function makeOpt(params: Tensor[], bucketElements?: number): AdamW {
  return new AdamW(
    [
      { params: params.filter((_, i) => GROUP_OF[i] === 0), weightDecay: 0.05, lr: 2e-3 },
      { params: params.filter((_, i) => GROUP_OF[i] === 1), weightDecay: 0 },
    ],
    { lr: 1e-3, weightDecay: 0.01, bucketElements },
  );
}

function release(...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) t?.release();
}

function releaseParams(params: Tensor[]): void {
  for (const p of params) release(p.grad, p);
}

// ---------------------------------------------------------------- tests

forEachKernelProfile((profile) => `AdamW (${profile} kernels)`, () => {
  for (const bucketElements of [undefined, 4096]) {
    it(`matches torch's AdamW over several steps (two groups, a step without one gradient, lr changes${bucketElements ? ', 3 buckets' : ''})`, async () => {
      const { params, init } = makeParams(1);
      const frozen = Tensor.from([1, 2, 3], [3]).param('relative_pos');
      frozen.requiresGrad = false;
      frozen.grad = keep(Tensor.from([5, 5, 5], [3]));
      const opt = new AdamW(
        [
          { params: [params[0], frozen, params[1], params[2]], weightDecay: 0.05, lr: 2e-3 },
          { params: [params[3], params[4]], weightDecay: 0 },
        ],
        { lr: 1e-3, weightDecay: 0.01, bucketElements },
      );
      const ref = new RefAdamW(init, [{ lr: 2e-3, wd: 0.05 }, { lr: 1e-3, wd: 0 }], GROUP_OF);
      for (let step = 1; step <= 5; step++) {
        const grads: (Float32Array | null)[] = gradsFor(step);
        if (step === 2) grads[1] = null;
        if (step === 4) {
          opt.lr = 5e-4;
          ref.groups.forEach((g) => (g.lr = 5e-4));
        }
        setGrads(params, grads);
        opt.step();
        ref.step(grads);
        opt.zeroGrad();
        expect(params.every((p) => p.grad === null)).toBe(true);
      }
      for (let i = 0; i < params.length; i++) {
        expect(relErr(await params[i].toArray(), ref.p[i])).toBeLessThanOrEqual(1e-5);
        expect(opt.stepCount(params[i])).toBe(ref.steps[i]);
      }
      expect(opt.stepCount(params[1])).toBe(4);
      // Moments through the state dict.
      const state = await opt.stateDict();
      for (let i = 0; i < params.length; i++) {
        expect(relErr(state.get(`w${i}.exp_avg`)!.data, ref.m[i])).toBeLessThanOrEqual(1e-5);
        expect(relErr(state.get(`w${i}.exp_avg_sq`)!.data, ref.v[i])).toBeLessThanOrEqual(1e-5);
        expect(state.get(`w${i}.exp_avg`)!.shape).toEqual(SHAPES[i]);
        expect(state.get(`w${i}.step`)!.data[0]).toBe(ref.steps[i]);
      }
      // The frozen tensor: no state, never touched (even though it had a gradient).
      expect([...state.keys()].some((k) => k.startsWith('relative_pos'))).toBe(false);
      expect(Array.from(await frozen.toArray())).toEqual([1, 2, 3]);
      opt.release();
      releaseParams(params);
      release(frozen.grad, frozen);
    });
  }

  it('takes a plain parameter list and PyTorch defaults', async () => {
    const { params, init } = makeParams(2);
    const opt = new AdamW(params);
    const ref = new RefAdamW(init, [{ lr: 1e-3, wd: 0.01 }], params.map(() => 0));
    for (let step = 1; step <= 3; step++) {
      const grads = gradsFor(step, 5);
      setGrads(params, grads);
      opt.step();
      ref.step(grads);
    }
    for (let i = 0; i < params.length; i++) expect(relErr(await params[i].toArray(), ref.p[i])).toBeLessThanOrEqual(1e-5);
    opt.release();
    releaseParams(params);
  });

  it('clips the global gradient norm inside the step (norm above and below the max)', async () => {
    const { params, init } = makeParams(3);
    const opt = makeOpt(params);
    const ref = new RefAdamW(init, [{ lr: 2e-3, wd: 0.05 }, { lr: 1e-3, wd: 0 }], GROUP_OF);
    for (const [step, maxNorm] of [[1, 0.5], [2, 1000], [3, 2]] as const) {
      const grads = gradsFor(step);
      setGrads(params, grads);
      opt.step({ maxGradNorm: maxNorm });
      const norm = ref.step(grads, maxNorm);
      const s = await opt.readStats();
      expect(Math.abs(s.gradNorm - norm) / norm).toBeLessThanOrEqual(1e-5);
      const scale = Math.min(1, maxNorm / (norm + 1e-6));
      expect(Math.abs(s.clipScale - scale) / scale).toBeLessThanOrEqual(1e-5);
      expect(s.clipScale < 1).toBe(norm > maxNorm);
      expect(s.nonFinite).toBe(false);
    }
    for (let i = 0; i < params.length; i++) expect(relErr(await params[i].toArray(), ref.p[i])).toBeLessThanOrEqual(1e-5);
    opt.release();
    releaseParams(params);
  });

  it('flags a non-finite gradient without stalling and skips that step', async () => {
    const { params, init } = makeParams(4);
    const opt = makeOpt(params);
    const ref = new RefAdamW(init, [{ lr: 2e-3, wd: 0.05 }, { lr: 1e-3, wd: 0 }], GROUP_OF);
    const good = gradsFor(1);
    setGrads(params, good);
    opt.step({ maxGradNorm: 5 });
    ref.step(good, 5);
    expect((await opt.readStats()).nonFinite).toBe(false);
    const bad = gradsFor(2);
    bad[2][17] = NaN;
    setGrads(params, bad);
    opt.step({ maxGradNorm: 5 });
    const s = await opt.readStats();
    expect(s.nonFinite).toBe(true);
    expect(Number.isNaN(s.gradNorm)).toBe(true);
    for (let i = 0; i < params.length; i++) expect(relErr(await params[i].toArray(), ref.p[i])).toBeLessThanOrEqual(1e-5);
    bad[2][17] = Infinity;
    setGrads(params, bad);
    opt.step();
    expect((await opt.readStats()).nonFinite).toBe(true);
    for (let i = 0; i < params.length; i++) expect(relErr(await params[i].toArray(), ref.p[i])).toBeLessThanOrEqual(1e-5);
    opt.release();
    releaseParams(params);
  });

  it('continues identically after a state-dict round trip', async () => {
    const a = makeParams(5);
    const b = makeParams(5);
    const optA = makeOpt(a.params);
    for (let step = 1; step <= 3; step++) {
      const grads: (Float32Array | null)[] = gradsFor(step);
      if (step === 2) grads[3] = null;
      setGrads(a.params, grads);
      optA.step({ maxGradNorm: 1 });
    }
    // b: the same parameter values, a fresh optimizer loaded from a's state.
    for (let i = 0; i < b.params.length; i++) b.params[i].write(await a.params[i].toArray());
    const optB = makeOpt(b.params, 4096);
    const state = await optA.stateDict();
    expect(optB.loadStateDict(state)).toEqual({ missing: [], unexpected: [] });
    expect(optB.stepCount(b.params[3])).toBe(2);
    for (let step = 4; step <= 6; step++) {
      const grads = gradsFor(step);
      for (const [opt, ps] of [[optA, a.params], [optB, b.params]] as const) {
        setGrads(ps, grads);
        opt.step({ maxGradNorm: 1 });
      }
    }
    for (let i = 0; i < a.params.length; i++) {
      expect(Array.from(await b.params[i].toArray())).toEqual(Array.from(await a.params[i].toArray()));
    }
    const stateB = await optB.stateDict();
    for (const [k, e] of await optA.stateDict()) expect(Array.from(stateB.get(k)!.data)).toEqual(Array.from(e.data));
    // Strictness: a missing parameter and a stray key are reported.
    state.delete('w0.exp_avg');
    state.set('nope.exp_avg', { shape: [1], data: new Float32Array(1) });
    expect(() => optB.loadStateDict(state)).toThrow(/missing \[w0\.exp_avg\] unexpected \[nope\.exp_avg\]/);
    optA.release();
    optB.release();
    releaseParams(a.params);
    releaseParams(b.params);
  });

  it('creates no GPU objects and submits nothing per step after warm-up', async () => {
    const { params } = makeParams(6);
    const weights = SHAPES.map((s, i) => keep(Tensor.randn(s, 50 + i)));
    const opt = makeOpt(params);
    const dev = device();
    const keys = ['allocations', 'pipelinesCreated', 'bindGroupsCreated', 'uniformBuffersCreated', 'submits'] as const;
    const created = Object.fromEntries(keys.map((k) => [k, 0])) as Record<(typeof keys)[number], number>;
    for (let step = 1; step <= 5; step++) {
      const loss = tidy(() => {
        let l = F.sum(F.mul(F.mul(params[0], params[0]), weights[0]));
        for (let i = 1; i < params.length; i++) l = F.add(l, F.sum(F.mul(F.mul(params[i], params[i]), weights[i])));
        backward(l);
        return l;
      });
      await loss.item();
      loss.release();
      // Only the optimizer's part is measured: the forward/backward above may bind pooled buffers in
      // a different order from step to step (an engine matter, not the optimizer's).
      const before = dev.memoryStats();
      opt.step({ maxGradNorm: 1 });
      opt.zeroGrad();
      const after = dev.memoryStats();
      if (step >= 3) for (const k of keys) created[k] += after[k] - before[k];
    }
    await opt.readStats();
    expect(created).toEqual({ allocations: 0, pipelinesCreated: 0, bindGroupsCreated: 0, uniformBuffersCreated: 0, submits: 0 });
    opt.release();
    releaseParams(params);
    release(...weights);
  });

  it('parameter arena: the parameters move into the flat buffers (aligned views, values kept), and the steps are bit-identical to copying them in and out', async () => {
    const run = async (arena: boolean, bucketElements?: number) => {
      const { params, init } = makeParams(1);
      // A parameter another view shares stays where it is (its view would keep the old values).
      const shared = params[4].view([15]);
      const opt = new AdamW(
        [
          { params: params.filter((_, i) => GROUP_OF[i] === 0), weightDecay: 0.05, lr: 2e-3 },
          { params: params.filter((_, i) => GROUP_OF[i] === 1), weightDecay: 0 },
        ],
        { lr: 1e-3, weightDecay: 0.01, bucketElements, arena },
      );
      const places = params.map((p) => ({ buffer: p.pooled, offset: p.byteOffset }));
      for (let i = 0; i < params.length; i++) expect(await params[i].toArray()).toEqual(init[i]);
      for (let step = 1; step <= 4; step++) {
        const grads: (Float32Array | null)[] = gradsFor(step);
        if (step === 2) grads[1] = null;
        opt.lr = 1e-3 * step;
        setGrads(params, grads);
        opt.step({ maxGradNorm: 1 });
        opt.zeroGrad();
      }
      const values = await Promise.all(params.map((p) => p.toArray()));
      const moments = await opt.stateDict();
      shared.release();
      opt.release();
      // The parameters outlive the optimizer that holds their storage.
      expect(await params[0].toArray()).toEqual(values[0]);
      releaseParams(params);
      return { places, values, moments };
    };
    const inPlace = await run(true);
    const align = device().limits.minStorageBufferOffsetAlignment;
    expect(new Set(inPlace.places.slice(0, 4).map((p) => p.buffer)).size).toBe(1);
    for (const p of inPlace.places.slice(0, 4)) expect(p.offset % align).toBe(0);
    expect(inPlace.places.slice(0, 4).map((p) => p.offset)).toEqual([0, 4096, 4096 * 3, 4096 * 6]);
    expect(inPlace.places[4].buffer).not.toBe(inPlace.places[0].buffer);
    expect(inPlace.places[4].offset).toBe(0);
    const bits = (v: Float32Array | Int32Array) => [...new Uint32Array(v.buffer, v.byteOffset, v.length)];
    for (const other of [await run(false), await run(true, 4096)]) {
      inPlace.values.forEach((v, i) => expect(bits(v)).toEqual(bits(other.values[i])));
      for (const [k, e] of inPlace.moments) expect(bits(e.data as Float32Array), k).toEqual(bits(other.moments.get(k)!.data as Float32Array));
    }
  });

  it('gradient homes: conv and BN backward write their parameters\' gradients into the flat buffer, and the steps are bit-identical to gathering them', async () => {
    // 1×1 conv (16 ← 8 channels: dw unsplit) + BN, loss Σ y ⊙ r; step 2 accumulates two backward
    // passes (the second one cannot use the homes: the gradients already exist).
    const run = async (arena: boolean) => {
      const rnd = new Rng(7);
      const data = (n: number) => Float32Array.from({ length: n }, () => rnd.normal());
      const w = Tensor.from(data(16 * 8), [16, 8, 1, 1]).param('w');
      const b = Tensor.from(data(16), [16]).param('b');
      const gamma = Tensor.from(data(16), [16]).param('gamma');
      const beta = Tensor.from(data(16), [16]).param('beta');
      const stats = [keep(Tensor.from(new Float32Array(16), [16])), keep(Tensor.from(new Float32Array(16).fill(1), [16]))];
      const x = keep(Tensor.from(data(2 * 8 * 36), [2, 8, 6, 6]));
      const r = keep(Tensor.from(data(2 * 16 * 36), [2, 16, 6, 6]));
      const params = [w, b, gamma, beta];
      const opt = new AdamW(params, { lr: 1e-2, arena });
      const pass = () => tidy(() => backward(F.sum(F.mul(F.batchNorm2d(F.conv2d(x, w, b, { impl: 'pointwise' }), gamma, beta, stats[0], stats[1], { training: true }), r))));
      let homed = false;
      for (let step = 1; step <= 3; step++) {
        pass();
        if (step === 1) homed = params.every((p) => p.grad!.pooled === w.grad!.pooled);
        if (step === 2) pass();
        opt.step({ maxGradNorm: 1 });
        opt.zeroGrad();
      }
      const values = await Promise.all(params.map((p) => p.toArray()));
      opt.release();
      for (const t of [...params, ...stats, x, r]) t.release();
      return { values, homed };
    };
    const homes = await run(true);
    const gathered = await run(false);
    expect(homes.homed).toBe(true);
    expect(gathered.homed).toBe(false);
    const bits = (v: Float32Array) => [...new Uint32Array(v.buffer, v.byteOffset, v.length)];
    homes.values.forEach((v, i) => expect(bits(v)).toEqual(bits(gathered.values[i])));
  });

  it('split weight gradients: the chunk sums go straight into the homes, in a few gathers, bit-identical to summing and gathering them', async () => {
    // x [4, 8, 16, 16]: K = B·H·W = 1024 splits the GPU GEMM's dw; 4 images split the CPU kernels' dw
    // into image chunks. A 1×1 conv with bias (dw and db from one partial), a 3×3 without, then one
    // weight used twice (its second gradient is added to the first, which must be summed by then).
    const run = async (arena: boolean) => {
      const rnd = new Rng(11);
      const data = (n: number) => Float32Array.from({ length: n }, () => rnd.normal() * 0.2);
      const w1 = Tensor.from(data(16 * 8), [16, 8, 1, 1]).param('w1');
      const b1 = Tensor.from(data(16), [16]).param('b1');
      const w2 = Tensor.from(data(8 * 16 * 9), [8, 16, 3, 3]).param('w2');
      const w3 = Tensor.from(data(8 * 8), [8, 8, 1, 1]).param('w3');
      const x = keep(Tensor.from(data(4 * 8 * 256), [4, 8, 16, 16]));
      const r = keep(Tensor.from(data(4 * 8 * 256), [4, 8, 16, 16]));
      const params = [w1, b1, w2, w3];
      const opt = new AdamW(params, { lr: 1e-2, arena });
      // The pipelines of step 1's backward.
      const labels: string[] = [];
      const pass = (watch = false) =>
        tidy(() => {
          const h = F.conv2d(F.conv2d(x, w1, b1), w2, null, { padding: 1 });
          const loss = F.sum(F.mul(F.conv2d(F.conv2d(h, w3), w3), r));
          const dev = device();
          const dispatch = dev.dispatch.bind(dev);
          if (watch) dev.dispatch = (p, ...rest) => (labels.push(p.label), dispatch(p, ...rest));
          try {
            backward(loss);
          } finally {
            dev.dispatch = dispatch;
          }
        });
      let homed = false;
      for (let step = 1; step <= 3; step++) {
        pass(step === 1);
        if (step === 1) homed = [b1, w2].every((p) => p.grad!.pooled === w1.grad!.pooled);
        // Step 2 accumulates a second pass into gradients that exist (no homes then).
        if (step === 2) pass();
        opt.step({ maxGradNorm: 1 });
        opt.zeroGrad();
      }
      const values = await Promise.all(params.map((p) => p.toArray()));
      opt.release();
      for (const t of [...params, x, r]) t.release();
      return { values, homed, labels };
    };
    const homes = await run(true);
    const gathered = await run(false);
    expect(homes.homed).toBe(true);
    // The split sums ran as gathers into the homes: one reduction kernel is left, for w3's second
    // gradient (its home was taken by the first).
    expect(gathered.labels.filter((l) => l.startsWith('reduce.wgsl')).length).toBeGreaterThan(3);
    expect(homes.labels.filter((l) => l.startsWith('reduce.wgsl')).length).toBe(1);
    expect(homes.labels.some((l) => l.startsWith('flat-gather.wgsl'))).toBe(true);
    const bits = (v: Float32Array) => [...new Uint32Array(v.buffer, v.byteOffset, v.length)];
    homes.values.forEach((v, i) => expect(bits(v)).toEqual(bits(gathered.values[i])));
  });

  it('rejects bad arguments with the parameter at fault', () => {
    const a = Tensor.from([1, 2], [2]).param('a');
    const b = Tensor.from([1], [1]).param('a');
    expect(() => new AdamW([a, a])).toThrow(/parameter 1 .*appears twice/);
    expect(() => new AdamW([a, b])).toThrow(/two parameters are named a/);
    expect(() => new AdamW([a], { betas: [1, 0.9] })).toThrow(/invalid betas/);
    const opt = new AdamW([a]);
    a.grad = keep(Tensor.from([1, 2, 3], [3]));
    expect(() => opt.step()).toThrow(/slot 0 holds 2 f32 elements, got .*\[3\]/);
    opt.release();
    release(a.grad, a, b);
  });
});

forEachKernelProfile((profile) => `clipGradNorm (${profile} kernels)`, () => {
  for (const maxNorm of [0.3, 100]) {
    it(`scales every gradient in place on the GPU (max ${maxNorm})`, async () => {
      const { params } = makeParams(7);
      const grads: (Float32Array | null)[] = gradsFor(1);
      grads[2] = null; // a parameter without gradient is ignored
      setGrads(params, grads);
      const norm = clipGradNorm(params, maxNorm);
      const ref = refNorm(grads);
      expect(norm.shape).toEqual([1]);
      expect(Math.abs((await norm.item()) - ref) / ref).toBeLessThanOrEqual(1e-5);
      const scale = Math.min(1, maxNorm / (ref + 1e-6));
      for (let i = 0; i < params.length; i++) {
        const g = grads[i];
        if (!g) {
          expect(params[i].grad).toBeNull();
          continue;
        }
        expect(relErr(await params[i].grad!.toArray(), Array.from(g, (x) => x * scale))).toBeLessThanOrEqual(1e-6);
      }
      norm.release();
      releaseParams(params);
    });
  }

  it('returns a non-finite norm for a NaN gradient', async () => {
    const g = Tensor.from([1, NaN, 2], [3]).param('g');
    g.grad = keep(Tensor.from([1, NaN, 2], [3]));
    const norm = clipGradNorm([g], 1);
    expect(Number.isFinite(await norm.item())).toBe(false);
    release(norm, g.grad, g);
  });
});
