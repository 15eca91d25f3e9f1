import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, tidy, backward, F } from '../kernels/index.js';
import { readSafetensors } from '../train/safetensors-file.js';
import { maxRelative, maxRelativeInterleaved } from '../kernels/max-relative.js';
import { rng, rand, avgPoolRef, forEachKernelProfile, forEachMaxRelative, type GraphDims } from './ref.js';
import { device } from '../engine/context.js';

beforeAll(async () => {
  await init();
});

function randIdx(n: number, seed: number, M: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * M));
}

/** float64 reference: output, and the gradients for an output gradient g. */
function maxRelativeRef(x: Float32Array, y: Float32Array, idx: Int32Array, g: Float32Array, B: number, C: number, N: number, M: number, G: number, k: number) {
  const out = new Float64Array(B * C * N);
  const dx = new Float64Array(B * C * N);
  const dy = new Float64Array(B * C * M);
  forEachMaxRelative(x, y, idx, { B, C, N, M, G, k }, (i, _bc, _n, best, src) => {
    out[i] = best;
    dx[i] = -g[i];
    dy[src] += g[i];
  });
  return { out, dx, dy };
}

function maxRelErr(got: Float32Array, want: Float64Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / Math.max(scale, 1e-30);
}

type Case = GraphDims;

async function runGpu(x: Float32Array, y: Float32Array, idx: Int32Array, g: Float32Array, c: Case) {
  const xt = Tensor.from(x, [c.B, c.C, c.N]).param();
  const yt = Tensor.from(y, [c.B, c.C, c.M]).param();
  const it = Tensor.from(idx, [c.B * c.G, c.N, c.k]);
  const gt = Tensor.from(g, [c.B, c.C, c.N]);
  const out = maxRelative(xt, yt, it, c.G);
  const outArr = await out.toArray();
  backward(out, gt);
  const res = { out: outArr, dx: await xt.grad!.toArray(), dy: await yt.grad!.toArray() };
  for (const t of [xt, yt, it, gt, out, xt.grad!, yt.grad!]) t.release();
  return res;
}

/** Random centres x, sources y and indices of case `c`, from seeds seed, seed + 1, seed + 2. */
function randomInputs(c: Case, seed: number): { x: Float32Array; y: Float32Array; idx: Int32Array } {
  return { x: rand(c.B * c.C * c.N, seed), y: rand(c.B * c.C * c.M, seed + 1), idx: randIdx(c.B * c.G * c.N * c.k, seed + 2, c.M) };
}

async function check(c: Case, x: Float32Array, y: Float32Array, idx: Int32Array, seed: number) {
  const g = rand(c.B * c.C * c.N, seed);
  const ref = maxRelativeRef(x, y, idx, g, c.B, c.C, c.N, c.M, c.G, c.k);
  const got = await runGpu(x, y, idx, g, c);
  expect(got.out.length).toBe(ref.out.length);
  expect(maxRelErr(got.out, ref.out)).toBeLessThanOrEqual(1e-6);
  expect(maxRelErr(got.dx, ref.dx)).toBe(0);
  expect(maxRelErr(got.dy, ref.dy)).toBeLessThanOrEqual(1e-6);
  return got;
}

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));

// Both kernel profiles: the forward pass is forward_lanes on CPU adapters, forward elsewhere.
forEachKernelProfile((profile) => `${profile} kernel profile`, () => {
  describe('maxRelative vs float64 reference', () => {
    const cases: [string, Case][] = [
      ['G = 1, N and M odd', { B: 2, C: 5, N: 37, M: 13, G: 1, k: 4 }],
      ['G = 2, query set ≠ source set', { B: 3, C: 8, N: 20, M: 144, G: 2, k: 9 }],
      ['G = 4, k = 1, size-1 batch', { B: 1, C: 12, N: 300, M: 7, G: 4, k: 1 }],
      ['G = 2, 11 channels per group, B·C not a multiple of 8 (cpu: a partly filled last workgroup)', { B: 1, C: 22, N: 30, M: 17, G: 2, k: 5 }],
    ];
    it.each(cases)('%s', async (_, c) => {
      const { x, y, idx } = randomInputs(c, 1);
      await check(c, x, y, idx, 4);
    });

    it('duplicate indices in a row: the tie goes to the first t and the gradient is routed once', async () => {
      const c: Case = { B: 2, C: 6, N: 25, M: 9, G: 2, k: 6 };
      const { x, y, idx } = randomInputs(c, 11);
      // Every row repeats its neighbours: [a, b, c, a, b, c].
      for (let r = 0; r < c.B * c.G * c.N; r++) for (let t = 3; t < 6; t++) idx[r * 6 + t] = idx[r * 6 + t - 3];
      // and one row points 6 times at the same source
      idx.fill(4, 0, 6);
      const got = await check(c, x, y, idx, 14);
      // the sum of dy over sources equals the sum of g: nothing was counted twice
      const g = rand(c.B * c.C * c.N, 14);
      let sg = 0, sy = 0;
      for (const v of g) sg += v;
      for (const v of got.dy) sy += v;
      expect(sy).toBeCloseTo(sg, 4);
    });

    it('the backward pass is bitwise deterministic', async () => {
      // Few sources, many slots per source: a racy summation order would show up in the bits.
      const c: Case = { B: 2, C: 16, N: 500, M: 5, G: 2, k: 9 };
      const { x, y, idx } = randomInputs(c, 21);
      const a = await check(c, x, y, idx, 24);
      const b = await runGpu(x, y, idx, rand(c.B * c.C * c.N, 24), c);
      expect(new Uint32Array(b.dy.buffer)).toEqual(new Uint32Array(a.dy.buffer));
      expect(new Uint32Array(b.out.buffer)).toEqual(new Uint32Array(a.out.buffer));
    });

    it('marks an out-of-range index with NaN', async () => {
      const out = tidy(() =>
        maxRelative(Tensor.from([1, 2], [1, 1, 2]), Tensor.from([5, 6, 7], [1, 1, 3]), Tensor.from(Int32Array.from([0, 3, 2, 1]), [1, 2, 2])),
      );
      const v = await out.toArray();
      out.release();
      expect(Number.isNaN(v[0])).toBe(true);
      expect(v[1]).toBe(5);
    });

    it('validates its arguments', () => {
      tidy(() => {
        const x = Tensor.empty([2, 8, 10]);
        const y = Tensor.empty([2, 8, 12]);
        expect(() => maxRelative(x, y, Tensor.empty([2, 10, 3], 'i32'), 2)).toThrow(/idx must be i32 \[4, 10, k ≥ 1\]/);
        expect(() => maxRelative(x, y, Tensor.empty([4, 10, 3]), 2)).toThrow(/idx must be i32/);
        expect(() => maxRelative(x, y, Tensor.empty([6, 10, 3], 'i32'), 3)).toThrow(/groups must be a positive divisor of the 8 channels/);
        expect(() => maxRelative(x, Tensor.empty([2, 4, 12]), Tensor.empty([2, 10, 3], 'i32'))).toThrow(/y must have x's batch and channels/);
      });
    });
  });


  describe('maxRelative with stored fixture indices', () => {
    it.each([
      ['gkg_block_xy', 2],
      ['vig_block', 1],
    ] as const)('%s (G = %i)', async (file, G) => {
      const { metadata, tensors } = await readSafetensors(fixture(file), { filter: (n) => n.startsWith('eval.') });
      const { B, C, H, W, r } = JSON.parse(metadata.config!) as Record<string, number>;
      const x = tensors.get('eval.inter.block.0.fc1')!.data as Float32Array;
      const y = avgPoolRef(x, B, C, H, W, r);
      const stored = tensors.get('eval.knn.block.0.graph_conv.dilated_knn_graph')!;
      const c: Case = { B, C, N: H * W, M: (H * W) / (r * r), G, k: stored.shape[2] };
      expect(stored.shape).toEqual([B * G, c.N, c.k]);
      await check(c, x, y, stored.data as Int32Array, 31);
    });
  });

  describe('maxRelativeInterleaved vs float64 reference', () => {
    it('is [B, 2C, N] with channel 2c = x[c], 2c + 1 = R[c]; dx = g[2c] − g[2c + 1], dy from g[2c + 1]', async () => {
      const c: Case = { B: 2, C: 6, N: 19, M: 11, G: 2, k: 3 };
      const { x, y, idx } = randomInputs(c, 51);
      const g = rand(2 * c.B * c.C * c.N, 54);
      // The float64 reference of maxRelative, fed the odd channels' gradient.
      const odd = new Float32Array(c.B * c.C * c.N);
      const at = (i: number, half: 0 | 1) => (2 * Math.floor(i / c.N) + half) * c.N + (i % c.N);
      odd.forEach((_, i) => (odd[i] = g[at(i, 1)]));
      const ref = maxRelativeRef(x, y, idx, odd, c.B, c.C, c.N, c.M, c.G, c.k);
      const wantOut = new Float64Array(g.length);
      const wantDx = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        wantOut[at(i, 0)] = x[i];
        wantOut[at(i, 1)] = ref.out[i];
        wantDx[i] = g[at(i, 0)] - g[at(i, 1)];
      }
      for (const mode of ['argmax', 'chosen'] as const) {
        const xt = Tensor.from(x, [c.B, c.C, c.N]).param();
        const yt = Tensor.from(y, [c.B, c.C, c.M]).param();
        const it = Tensor.from(idx, [c.B * c.G, c.N, c.k]);
        // The argmax slots given back as choices must reproduce the same result.
        const slots = new Int32Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const b = Math.floor(i / (c.C * c.N));
          const row = b * c.G + Math.floor((Math.floor(i / c.N) % c.C) / (c.C / c.G));
          let best = -Infinity;
          for (let t = 0; t < c.k; t++) {
            const v = y[Math.floor(i / c.N) * c.M + idx[(row * c.N + (i % c.N)) * c.k + t]] - x[i];
            if (v > best) [best, slots[i]] = [v, t];
          }
        }
        const choice = mode === 'chosen' ? Tensor.from(slots, [c.B, c.C, c.N]) : undefined;
        const out = maxRelativeInterleaved(xt, yt, it, c.G, choice);
        expect(out.shape).toEqual([c.B, 2 * c.C, c.N]);
        expect(maxRelErr(await out.toArray(), wantOut)).toBeLessThanOrEqual(1e-6);
        backward(out, Tensor.from(g, out.shape));
        expect(maxRelErr(await xt.grad!.toArray(), wantDx)).toBeLessThanOrEqual(1e-7);
        expect(maxRelErr(await yt.grad!.toArray(), ref.dy)).toBeLessThanOrEqual(1e-6);
        for (const t of [xt, yt, it, out, choice, xt.grad, yt.grad]) t?.release();
      }
    });
  });
});

/** The pipeline labels of the dispatches `fn` makes. */
function pipelinesDuring(fn: () => void): string[] {
  const dev = device();
  const dispatch = dev.dispatch.bind(dev);
  const labels: string[] = [];
  dev.dispatch = (p, ...rest) => (labels.push(p.label), dispatch(p, ...rest));
  try {
    fn();
  } finally {
    dev.dispatch = dispatch;
  }
  return labels;
}

/**
 * The graph over the nodes themselves (y is x, one tensor): x's gradient is both dx and dy, summed
 * by backward_x in its store. The interleaved output of a seeded x over its own graph, and what x's
 * gradient is for an output gradient g: g[2c] − g[2c + 1] as centres, plus dy as sources.
 */
function selfGraph(seed: number) {
  const c: Case = { B: 2, C: 6, N: 23, M: 23, G: 2, k: 4 };
  const x = rand(c.B * c.C * c.N, seed);
  const idx = randIdx(c.B * c.G * c.N * c.k, seed + 2, c.N);
  const g = rand(2 * c.B * c.C * c.N, seed + 3);
  const at = (i: number, half: 0 | 1) => (2 * Math.floor(i / c.N) + half) * c.N + (i % c.N);
  const odd = Float32Array.from({ length: x.length }, (_, i) => g[at(i, 1)]);
  const ref = maxRelativeRef(x, x, idx, odd, c.B, c.C, c.N, c.M, c.G, c.k);
  const want = Float64Array.from({ length: x.length }, (_, i) => g[at(i, 0)] - g[at(i, 1)] + ref.dy[i]);
  const xt = Tensor.from(x, [c.B, c.C, c.N]).param();
  const it = Tensor.from(idx, [c.B * c.G, c.N, c.k]);
  return { xt, it, g, want, out: maxRelativeInterleaved(xt, xt, it, c.G) };
}

forEachKernelProfile((profile) => `${profile} kernel profile: maxRelativeInterleaved with y = x`, () => {
  it('one gradient for both roles, no add pass', async () => {
    const { xt, it, g, want, out } = selfGraph(61);
    const labels = pipelinesDuring(() => backward(out, Tensor.from(g, out.shape)));
    expect(labels.filter((l) => l.includes('backward_x'))).toEqual([expect.stringContaining('ADDEND=1')]);
    expect(labels.filter((l) => /binary4?\{.*\bOP=0[,}]/.test(l))).toEqual([]);
    expect(maxRelErr(await xt.grad!.toArray(), want)).toBeLessThanOrEqual(1e-6);
    for (const t of [xt, it, out, xt.grad]) t?.release();
  });

  it('with another use of x as well: its gradient (pending when the rule runs) joins the one store', async () => {
    const { xt, it, g, want, out } = selfGraph(71);
    const loss = F.add(F.sum(F.mul(out, Tensor.from(g, out.shape))), F.sum(F.mul(xt, Tensor.from([5], [1]))));
    backward(loss);
    expect(maxRelErr(await xt.grad!.toArray(), want.map((v) => v + 5))).toBeLessThanOrEqual(1e-6);
    for (const t of [xt, it, out, loss, xt.grad]) t?.release();
  });
});

// Maps as nodes ([B, C, H, W], no reshape), with other uses of both: their gradients reach the kernels
// as addends (the walk meets those uses first), dx and dy as the float64 reference plus them.
forEachKernelProfile((profile) => `${profile} kernel profile: maxRelativeInterleaved on maps whose other gradients it adds`, () => {
  it('x [2, 6, 4, 5] and y [2, 6, 2, 5]: dx + 3 and dy + 2, each in its own kernel', async () => {
    const c: Case = { B: 2, C: 6, N: 20, M: 10, G: 2, k: 3 };
    const { x, y, idx } = randomInputs(c, 81);
    const g = rand(2 * c.B * c.C * c.N, 84);
    const at = (i: number, half: 0 | 1) => (2 * Math.floor(i / c.N) + half) * c.N + (i % c.N);
    const odd = Float32Array.from({ length: x.length }, (_, i) => g[at(i, 1)]);
    const ref = maxRelativeRef(x, y, idx, odd, c.B, c.C, c.N, c.M, c.G, c.k);
    const xt = Tensor.from(x, [c.B, c.C, 4, 5]).param();
    const yt = Tensor.from(y, [c.B, c.C, 2, 5]).param();
    const it = Tensor.from(idx, [c.B * c.G, c.N, c.k]);
    const out = maxRelativeInterleaved(xt, yt, it, c.G);
    expect(out.shape).toEqual([c.B, 2 * c.C, c.N]);
    const other = (t: Tensor, v: number) => F.sum(F.mul(t, Tensor.from([v], [1])));
    const loss = F.add(F.add(F.sum(F.mul(out, Tensor.from(g, out.shape))), other(xt, 3)), other(yt, 2));
    const labels = pipelinesDuring(() => backward(loss));
    expect(labels.filter((l) => /backward_[xy]/.test(l)).every((l) => l.includes('ADDEND=1'))).toBe(true);
    // No add pass for x or y (OP 0 of the elementwise kernels).
    expect(labels.filter((l) => /binary4?\{.*\bOP=0[,}]/.test(l))).toEqual([]);
    const wantDx = Float64Array.from({ length: x.length }, (_, i) => g[at(i, 0)] - g[at(i, 1)] + 3);
    expect(maxRelErr(await xt.grad!.toArray(), wantDx)).toBeLessThanOrEqual(1e-6);
    expect(maxRelErr(await yt.grad!.toArray(), ref.dy.map((v) => v + 2))).toBeLessThanOrEqual(1e-6);
    for (const t of [xt, yt, it, out, loss, xt.grad, yt.grad]) t?.release();
  });
});

// ------------------------------------------------------------------ injected choices (parity with a reference's argmax)

describe('maxRelative with given choices', () => {
  it('uses the given slot per element for the value and both gradients (C = 12, G = 2: not a multiple of 16)', async () => {
    const c: Case = { B: 2, C: 12, N: 37, M: 11, G: 2, k: 5 };
    const { x, y, idx } = randomInputs(c, 41);
    const g = rand(c.B * c.C * c.N, 44);
    const r = rng(45);
    const slot = Int32Array.from({ length: c.B * c.C * c.N }, () => Math.floor(r() * c.k));
    const out = new Float64Array(slot.length);
    const dy = new Float64Array(c.B * c.C * c.M);
    for (let b = 0; b < c.B; b++)
      for (let ch = 0; ch < c.C; ch++)
        for (let n = 0; n < c.N; n++) {
          const i = (b * c.C + ch) * c.N + n;
          const m = idx[((b * c.G + Math.floor(ch / (c.C / c.G))) * c.N + n) * c.k + slot[i]];
          out[i] = y[(b * c.C + ch) * c.M + m] - x[i];
          dy[(b * c.C + ch) * c.M + m] += g[i];
        }
    const xt = Tensor.from(x, [c.B, c.C, c.N]).param();
    const yt = Tensor.from(y, [c.B, c.C, c.M]).param();
    const it = Tensor.from(idx, [c.B * c.G, c.N, c.k]);
    const st = Tensor.from(slot, [c.B, c.C, c.N]);
    const o = maxRelative(xt, yt, it, c.G, st);
    expect(maxRelErr(await o.toArray(), out)).toBeLessThanOrEqual(1e-7);
    backward(o, Tensor.from(g, [c.B, c.C, c.N]));
    expect(maxRelErr(await yt.grad!.toArray(), dy)).toBeLessThanOrEqual(1e-6);
    expect(Array.from(await xt.grad!.toArray())).toEqual(Array.from(g, (v) => -v));
    const bad = Tensor.from(new Int32Array(slot.length).fill(c.k), [c.B, c.C, c.N]);
    expect((await maxRelative(xt, yt, it, c.G, bad).toArray()).every(Number.isNaN)).toBe(true);
    expect(() => maxRelative(xt, yt, it, c.G, Tensor.empty([c.B, c.C, c.N]))).toThrow(/choice must be i32\/u32/);
  });
});

describe('maxRelative across kernel profiles', () => {
  it("the cpu profile's row walk gives the gpu profile's dy bit for bit (the same terms in the same order)", async () => {
    // Many slots per source, so the summation order shows in the bits; B·C = 36 is not a multiple of 8.
    const c: Case = { B: 2, C: 18, N: 400, M: 6, G: 3, k: 9 };
    const { x, y, idx } = randomInputs(c, 51);
    const g = rand(c.B * c.C * c.N, 54);
    const saved = device().kernelProfile;
    const dy: Uint32Array[] = [];
    try {
      for (const profile of ['gpu', 'cpu'] as const) {
        device().kernelProfile = profile;
        dy.push(new Uint32Array((await runGpu(x, y, idx, g, c)).dy.buffer));
      }
    } finally {
      device().kernelProfile = saved;
    }
    expect(dy[1]).toEqual(dy[0]);
  });
});
