// f16 activations through reductions, shape copies, fills, loss terms, the loss ring, the flat
// gradient buffers and the cpu profile's vec4 elementwise kernel, under both kernel profiles, against
// float64 references of the half-rounded inputs: sums and means come out f32, copies keep f16 bit for
// bit, gradients come in each input's dtype.
import { it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy, type DType } from '../kernels/index.js';
import { gather } from '../kernels/flat-gather.js';
import {
  randArr, reduceRef, maxRef, permuteMap, sliceMap, concatRef, roundHalf, expectClose, sigmoid,
  forEachKernelProfile, runGrad, expectExact, expectNeighbourHalf, type ReduceKind,
} from './ref.js';

beforeAll(async () => {
  await init();
});

/** Half-rounded random values: what an f16 tensor of them holds. */
const halves = (shape: number[], seed: number, lo = -1, hi = 1) => Array.from(randArr(shape, seed, lo, hi), roundHalf);

/** |got − want| ≤ 2⁻¹⁰·|want| + tol·scale per element: f32 math (tol) rounded once to f16. */
function expectHalfClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, scale: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const bound = 2 ** -10 * Math.abs(want[i]) + tol * scale;
    if (!(Math.abs(got[i] - want[i]) <= bound)) expect(`${what}[${i}] = ${got[i]}`).toBe(`${what}[${i}] ≈ ${want[i]} (± ${bound})`);
  }
}

const gather64 = (data: ArrayLike<number>, src: Int32Array) => Array.from(src, (s) => data[s]);

forEachKernelProfile((p) => `f16 reductions (${p} kernels)`, () => {
  const OPS: Record<ReduceKind, (x: Tensor, axes: number[]) => Tensor> = {
    sum: (x, a) => F.sum(x, a),
    mean: (x, a) => F.mean(x, a),
    var: (x, a) => F.variance(x, a),
    varUnbiased: (x, a) => F.variance(x, a, false, true),
  };
  // The thread-per-output loop, and the workgroup tree (a reduction over more than 256 values, whose
  // sums pass f16's 65504).
  const LONG = [3, 700];
  const CASES: [number[], number[]][] = [[[2, 3, 5], [1]], [[2, 3, 5], [0, 2]], [[4, 6], [0, 1]], [LONG, [1]]];

  for (const kind of ['sum', 'mean', 'var', 'varUnbiased'] as ReduceKind[]) {
    it(`${kind} of f16 input is f32, its gradient f16`, async () => {
      for (const [shape, axes] of CASES) {
        const x = halves(shape, 1, -500, 2000);
        const r = await runGrad([{ data: x, shape, dtype: 'f16' }], (t) => OPS[kind](t, axes));
        const what = `${kind} ${shape} over [${axes}]`;
        expect(r.dtype, what).toBe('f32');
        expect(r.gradTypes[0], what).toBe('f16');
        const ref = reduceRef(x, shape, axes, kind, r.w);
        const scale = kind === 'sum' || kind === 'mean' ? Math.max(...reduceRef(x.map(Math.abs), shape, axes, kind).data) : Math.max(...ref.data);
        if (kind === 'sum' && shape === LONG) expect(Math.min(...r.out), what).toBeGreaterThan(65504);
        expectClose(r.out, ref.data, 1e-5, what, scale);
        expectHalfClose(r.grads[0], ref.grad, 1e-5, Math.max(...ref.grad.map(Math.abs)), `${what} grad`);
      }
    });
  }

  it('max of f16 keeps f16 values (exact), first-maximum indices and an f16 gradient', async () => {
    const shape = [3, 4, 5];
    // few distinct halves: ties, where the first maximum must win
    const x = halves(shape, 2, -3, 3).map((v) => Math.round(v * 2) / 2);
    for (const axis of [0, 1, 2]) {
      const leaf = Tensor.from(x, shape, 'f16').param();
      const { values, indices, g } = tidy(() => {
        const m = F.max(leaf, axis);
        const g = Tensor.from(halves(m.values.shape as number[], 3), m.values.shape, 'f16');
        backward(m.values, g);
        return { ...m, g };
      });
      const ref = maxRef(x, shape, axis, await g.toArray());
      expect([values.dtype, indices.dtype, leaf.grad!.dtype]).toEqual(['f16', 'i32', 'f16']);
      expectExact(await values.toArray(), Array.from(ref.values), `max values axis ${axis}`);
      expectExact(await indices.toArray(), Array.from(ref.indices), `argmax axis ${axis}`);
      expectExact(await leaf.grad!.toArray(), Array.from(ref.grad), `max grad axis ${axis}`);
      for (const t of [leaf, leaf.grad!, values, indices, g]) t.release();
    }
  });

  it('sumTo in an elementwise backward: an f16 activation plus an f32 bias gives an f32 bias gradient past 65504', async () => {
    const [B, C, H] = [2, 3, 40];
    const x = halves([B, C, H], 3, -10, 10);
    const bias = Array.from(randArr([C, 1], 4));
    // loss-scaled gradients of one sign: each bias gradient sums 80 of them to well past 65504
    const r = await runGrad([{ data: x, shape: [B, C, H], dtype: 'f16' }, { data: bias, shape: [C, 1], dtype: 'f32' }], (a, b) => F.add(a, b), 5, 1000, 3000);
    expect(r.dtype).toBe('f16');
    expect(r.gradTypes).toEqual(['f16', 'f32']);
    expectExact(r.grads[0], r.w, 'x grad');
    const want = new Float64Array(C);
    r.w.forEach((v, i) => (want[Math.floor(i / H) % C] += v));
    expect(Math.min(...want)).toBeGreaterThan(65504);
    expectClose(r.grads[1], want, 1e-6, 'bias grad');
  });
});

forEachKernelProfile((p) => `f16 shape copies (${p} kernels)`, () => {
  // odd extents: elements at odd half offsets, and halves of one word written by different invocations
  const shape = [3, 5, 7];
  const x = halves(shape, 6, -100, 100);

  it('permute and transpose copy f16 exactly; the gradient is f16, permuted back', async () => {
    for (const perm of [[2, 0, 1], [1, 0, 2], [0, 2, 1]]) {
      const m = permuteMap(shape, perm);
      const r = await runGrad([{ data: x, shape, dtype: 'f16' }], (t) => F.permute(t, perm));
      expect(r.dtype).toBe('f16');
      expect(r.shape).toEqual(m.shape);
      expectExact(r.out, gather64(x, m.src), `permute [${perm}]`);
      expect(r.gradTypes[0]).toBe('f16');
      const want = new Array<number>(x.length);
      m.src.forEach((s, i) => (want[s] = r.w[i]));
      expectExact(r.grads[0], want, `permute [${perm}] grad`);
    }
    const t = await runGrad([{ data: x, shape, dtype: 'f16' }], (v) => F.transpose(v));
    expectExact(t.out, gather64(x, permuteMap(shape, [0, 2, 1]).src), 'transpose');
  });

  it('slice copies f16 exactly; its gradient is f16, zero outside the slice', async () => {
    for (const [axis, start, end] of [[2, 3, 6], [1, 1, 4], [0, 1, 2]]) {
      const m = sliceMap(shape, axis, start, end);
      const r = await runGrad([{ data: x, shape, dtype: 'f16' }], (t) => F.slice(t, axis, start, end));
      expect(r.dtype).toBe('f16');
      expectExact(r.out, gather64(x, m.src), `slice ${axis} [${start}:${end}]`);
      expect(r.gradTypes[0]).toBe('f16');
      const want = new Array<number>(x.length).fill(0);
      m.src.forEach((s, i) => (want[s] = r.w[i]));
      expectExact(r.grads[0], want, `slice ${axis} [${start}:${end}] grad`);
    }
  });

  it('concat of f16 tensors is f16; with an f32 one it is f32, each gradient in its input dtype', async () => {
    const a = { data: halves([3, 2, 7], 7, -100, 100), shape: [3, 2, 7], dtype: 'f16' as DType };
    const b = { data: halves([3, 3, 7], 8, -100, 100), shape: [3, 3, 7], dtype: 'f16' as DType };
    const c = { data: Array.from(randArr([3, 1, 7], 9)), shape: [3, 1, 7], dtype: 'f32' as DType };
    const ref = concatRef([a, b], 1);
    const r = await runGrad([a, b], (u, v) => F.concat([u, v], 1));
    expect(r.dtype).toBe('f16');
    expectExact(r.out, Array.from(ref.data), 'concat f16');
    expect(r.gradTypes).toEqual(['f16', 'f16']);
    ref.positions.forEach((pos, k) => expectExact(r.grads[k], gather64(r.w, pos), `concat f16 grad ${k}`));

    const mixed = concatRef([a, c, b], 1);
    const m = await runGrad([a, c, b], (u, v, w) => F.concat([u, v, w], 1));
    expect(m.dtype).toBe('f32');
    expectExact(m.out, Array.from(mixed.data, Math.fround), 'concat f16 + f32');
    expect(m.gradTypes).toEqual(['f16', 'f32', 'f16']);
    mixed.positions.forEach((pos, k) => {
      const g = gather64(m.w, pos);
      if (k === 1) expectExact(m.grads[k], g, `concat mixed grad ${k}`);
      else expectNeighbourHalf(m.grads[k], g, `concat mixed grad ${k}`); // the f32 gradient cast to f16
    });
  });

  it('clone and reshape keep f16; gradients pass through', async () => {
    const r = await runGrad([{ data: x, shape, dtype: 'f16' }], (t) => F.reshape(F.clone(t), [5, -1]));
    expect(r.dtype).toBe('f16');
    expect(r.shape).toEqual([5, 21]);
    expectExact(r.out, x, 'clone');
    expect(r.gradTypes[0]).toBe('f16');
    expectExact(r.grads[0], r.w, 'clone grad');
  });
});

forEachKernelProfile((p) => `f16 fills, loss terms and the loss ring (${p} kernels)`, () => {
  it('full, zeros, ones and fillInto write a half next to the value (odd sizes, whole vec4s)', async () => {
    for (const n of [1, 7, 6, 16, 40]) {
      for (const v of [1.1, -2.5, 65504, 1e5, 3e-6]) {
        const t = F.full([n], v, 'f16');
        expect(t.dtype).toBe('f16');
        expectNeighbourHalf(await t.toArray(), new Array(n).fill(Math.fround(v)), `full [${n}] ${v}`);
        F.fillInto(t, -v);
        expectNeighbourHalf(await t.toArray(), new Array(n).fill(Math.fround(-v)), `fillInto [${n}] ${-v}`);
        t.release();
      }
      const z = F.zeros([n], 'f16');
      const o = F.ones([n], 'f16');
      expect([z.dtype, o.dtype]).toEqual(['f16', 'f16']);
      expectExact(await z.toArray(), new Array(n).fill(0), `zeros [${n}]`);
      expectExact(await o.toArray(), new Array(n).fill(1), `ones [${n}]`);
      z.release();
      o.release();
    }
  });

  // float64 references of one loss term and its derivative (central differences, away from kinks)
  type Term = (x: number, t: number) => number;
  const asl = (x: number, t: number, gp: number, gn: number, clip: number) => {
    const prob = sigmoid(x);
    const q = clip > 0 ? Math.min(1 - prob + clip, 1) : 1 - prob;
    const pt = q * (1 - t) + prob * t;
    return { prob, q, pt, w: (1 - pt) ** (gp * t + gn * (1 - t)) };
  };
  const KINDS: [string, F.LossTermOptions, Term][] = [
    ['bce', { kind: 'bce' }, (x, t) => (1 - t) * x + Math.log1p(Math.exp(-x))],
    ['bce smoothed', { kind: 'bce', smooth: 0.1 }, (x, t) => {
      const s = t > 0 ? 0.9 : 0.1;
      return (1 - s) * x + Math.log1p(Math.exp(-x));
    }],
    ['mmcls-asl', { kind: 'mmcls-asl', gammaPos: 0, gammaNeg: 4, clip: 0.05, eps: 1e-8 }, (x, t) => {
      const a = asl(x, t, 0, 4, 0.05);
      return -Math.log(Math.max(a.pt, 1e-8)) * a.w;
    }],
    ['alibaba-asl', { kind: 'alibaba-asl', gammaPos: 1, gammaNeg: 4, clip: 0.05, eps: 1e-8 }, (x, t) => {
      const a = asl(x, t, 1, 4, 0.05);
      return (t * Math.log(Math.max(a.prob, 1e-8)) + (1 - t) * Math.log(Math.max(a.q, 1e-8))) * a.w;
    }],
  ];

  for (const [name, o, term] of KINDS) {
    it(`lossTerms (${name}) on f16 logits: f32 terms, an f16 logit gradient`, async () => {
      const shape = [4, 9];
      const x = halves(shape, 12, -5, 5);
      const tgt = Tensor.from(Array.from(randArr(shape, 13), (v) => (v > 0.3 ? 1 : 0)), shape);
      const t = await tgt.toArray();
      const r = await runGrad([{ data: x, shape, dtype: 'f16' }], (v) => F.lossTerms(v, tgt, o), 14);
      tgt.release();
      expect(r.dtype).toBe('f32');
      expect(r.gradTypes[0]).toBe('f16');
      const want = x.map((v, i) => term(v, t[i]));
      const h = 1e-6;
      const grad = x.map((v, i) => ((term(v + h, t[i]) - term(v - h, t[i])) / (2 * h)) * r.w[i]);
      expectClose(r.out, want, 1e-5, `${name} terms`);
      expectHalfClose(r.grads[0], grad, 1e-5, Math.max(...grad.map(Math.abs)), `${name} grad`);
    });
  }

  it('storeAt stores f16 values into the f32 ring as f32', async () => {
    const v = halves([3], 15, -100, 100);
    const src = Tensor.from(v, [3], 'f16');
    const ring = F.zeros([9]);
    const slot = Tensor.from([1], [1], 'u32');
    F.storeAt(ring, src, slot);
    expect(ring.dtype).toBe('f32');
    expectExact(await ring.toArray(), [0, 0, 0, ...v, 0, 0, 0], 'ring');
    for (const t of [src, ring, slot]) t.release();
  });

  it('the flat gradient buffers refuse an f16 gradient, naming it', () => {
    const g = Tensor.from([1, 2, 3], [3], 'f16');
    g.name = 'blocks.0.bias.grad';
    const flat = F.zeros([64]);
    expect(() => gather([{ src: g, chunks: 1, stride: 3, n: 3, dst: flat.pooled, byteOffset: 0, owner: flat }], 'gather')).toThrow(/blocks\.0\.bias\.grad.*f16/);
    g.release();
    flat.release();
  });
});

forEachKernelProfile((p) => `f16 elementwise layouts (${p} kernels; cpu: the vec4 kernel)`, () => {
  it('same-size, one-value and broadcast operands (innermost axis a multiple of 4) read and write f16', async () => {
    const [B, C, H] = [2, 3, 8];
    const n = B * C * H;
    const x = halves([B, C, H], 16, -50, 50);
    const y = halves([1, C, H], 17, -2, 2);
    const bias = Array.from(randArr([C, 1], 18));
    const mask = Array.from({ length: n }, (_, i) => (i % 3 ? 1 : 0));
    const tx = Tensor.from(x, [B, C, H], 'f16');
    const ty = Tensor.from(y, [1, C, H], 'f16');
    const tb = Tensor.from(bias, [C, 1]);
    const tm = Tensor.from(mask, [B, C, H]);
    const outs = tidy(() => [F.add(tx, tb), F.mul(tx, ty), F.where(tm, tx, 0.5), F.affine(tx, 0.5, 1), F.cast(tx, 'f32'), F.mul(F.cast(tx, 'f32'), ty)]);
    // An f16 operand broadcast over an f32 one of the output's shape gives f32.
    expect(outs.map((t) => t.dtype)).toEqual(['f16', 'f16', 'f16', 'f16', 'f32', 'f32']);
    const [add, mul, where, affine, wide, prod] = await Promise.all(outs.map((t) => t.toArray()));
    // f32 results, each stored as one of the two halves next to it.
    expectNeighbourHalf(add, x.map((v, i) => Math.fround(v + Math.fround(bias[Math.floor(i / H) % C]))), 'add f32 bias');
    expectNeighbourHalf(mul, x.map((v, i) => Math.fround(v * y[i % (C * H)])), 'mul broadcast f16');
    expectExact(where, x.map((v, i) => (mask[i] ? v : 0.5)), 'where');
    expectNeighbourHalf(affine, x.map((v) => Math.fround(v * 0.5 + 1)), 'affine');
    expectExact(wide, x, 'cast to f32');
    expectExact(prod, x.map((v, i) => Math.fround(v * y[i % (C * H)])), 'f32 times broadcast f16');
    for (const t of [tx, ty, tb, tm, ...outs]) t.release();
  });
});
