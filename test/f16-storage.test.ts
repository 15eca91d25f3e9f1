// f16 tensors (activations under --precision mixed): upload and read-back, cast both ways, and
// elementwise ops reading and writing f16, against float64 references of IEEE half rounding.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';
import { launch } from '../engine/launch.js';
import { randArr, roundHalf, forEachKernelProfile, expectExact as expectHalf, expectNeighbourHalf } from './ref.js';

beforeAll(async () => {
  await init();
});

/** Values that exercise every corner of the conversion: ties, subnormals, overflow, signed zero. */
function corners(): number[] {
  const v = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2049, 2051, 0.1, -0.3333333, Infinity, -Infinity, 6.1e-5, 5.9e-8];
  return v.map(Math.fround);
}

describe('the neighbouring-half check (test/ref.ts)', () => {
  const accepts = (got: number, x: number) => {
    try {
      expectNeighbourHalf([got], [x], 'v');
      return true;
    } catch {
      return false;
    }
  };
  it('accepts the two halves next to a value and nothing else', () => {
    const x = 1 + 2 ** -11 + 2 ** -20;
    expect([accepts(1, x), accepts(1 + 2 ** -10, x), accepts(1 + 2 ** -9, x), accepts(1 - 2 ** -11, x)]).toEqual([true, true, false, false]);
    // Just below a power of two the lower neighbour is half an ulp away.
    const y = 2 - 2 ** -12;
    expect([accepts(2, y), accepts(2 - 2 ** -10, y), accepts(2 - 2 ** -9, y)]).toEqual([true, true, false]);
    expect([accepts(1.5, 1.5), accepts(1.5 + 2 ** -10, 1.5)]).toEqual([true, false]);
  });
  it('near zero: the smallest subnormal or zero; past 65504: 65504 or infinity', () => {
    for (const x of [1e-8, -1e-8, 2 ** -25]) {
      expect([accepts(Math.sign(x) * 2 ** -24, x), accepts(0, x), accepts(Math.sign(x) * 2 ** -23, x)]).toEqual([true, true, false]);
    }
    expect([accepts(65504, 65510), accepts(Infinity, 65510), accepts(65472, 65510)]).toEqual([true, true, false]);
    expect([accepts(0, 2 ** -14), accepts(2 ** -14, 2 ** -14)]).toEqual([false, true]);
  });
});

describe('f16 tensors', () => {
  it('upload and read back as the nearest half, ties to even (odd sizes too)', async () => {
    const v = corners();
    const t = Tensor.from(v, [v.length], 'f16');
    expect(t.dtype).toBe('f16');
    expect(t.bytes).toBe(2 * v.length);
    expectHalf(await t.toArray(), v.map(roundHalf), 'from f16');
    const nan = Tensor.from([NaN, 1, 2], [3], 'f16');
    expect(Number.isNaN((await nan.toArray())[0])).toBe(true);
    t.release();
    nan.release();
  });

  it('a kernel refuses a tensor whose dtype is not what its array holds, instead of misreading it', () => {
    const h = Tensor.from([1, 2, 3], [3], 'f16');
    const f = Tensor.from([1, 2, 3], [3]);
    const f32Array = '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = 1.0; }\n';
    expect(() => launch({ file: 'f32-array.wgsl', code: f32Array, args: [h], workgroups: [1], context: 'f32 array [3]' }))
      .toThrow(/^f32 array \[3\]: kernel f32-array\.wgsl:main reads o as f32 values, got .*\[3\] f16$/);
    const f16Array = 'enable f16;\nalias o_t = f16;\n@group(0) @binding(0) var<storage, read_write> o: array<vec4<o_t>>;\n@compute @workgroup_size(1) fn main() { o[0] = vec4<o_t>(1.0); }\n';
    expect(() => launch({ file: 'f16-array.wgsl', code: f16Array, args: [f], workgroups: [1], context: 'f16 array [3]' }))
      .toThrow(/^f16 array \[3\]: kernel f16-array\.wgsl:main reads o as f16 values, got .*\[3\] f32$/);
    // A storage map that names the wrong type is caught the same way.
    const out = Tensor.empty([3]);
    expect(() => launch({
      file: 'elementwise.wgsl', entry: 'unary', constants: { OP: 99 }, storage: { a: 'f32', b: 'f32', c: 'f32', out: 'f32' },
      args: [h, out], params: new Array(32).fill(0), workgroups: [1], context: 'mislabelled [3]',
    })).toThrow(/^mislabelled \[3\]: kernel elementwise\.wgsl:unary\{OP=99\} reads a as f32 values, got .*\[3\] f16$/);
    for (const t of [h, f, out]) t.release();
  });

  it('write() and readAll() convert too', async () => {
    const t = Tensor.empty([5], 'f16');
    t.write([1.0001, 2, -3.14159, 1e5, 7e-8]);
    const [a] = await Tensor.readAll([t]);
    expectHalf(a as Float32Array, [1.0001, 2, -3.14159, 1e5, 7e-8].map((x) => roundHalf(Math.fround(x))), 'write');
    t.release();
  });
});

forEachKernelProfile((p) => `f16 elementwise (${p} kernels)`, () => {
  it('cast rounds f32 to a neighbouring half and widens f16 exactly', async () => {
    const v = corners();
    const x = Tensor.from(v, [v.length]);
    const [h, back] = tidy(() => {
      const h = F.cast(x, 'f16');
      return [h, F.cast(h, 'f32')];
    });
    expect(h.dtype).toBe('f16');
    expect(back.dtype).toBe('f32');
    const want = v.map(roundHalf);
    const halves = await h.toArray();
    expectNeighbourHalf(halves, v, 'cast f32→f16');
    expectHalf(await back.toArray(), Array.from(halves), 'cast f16→f32');
    expect(F.cast(x, 'f32')).toBe(x);
    for (const t of [x, h, back]) t.release();
  });

  it('binary ops on f16 operands compute in f32 and round the result to f16', async () => {
    const n = 1001;
    const a = Array.from(randArr([n], 1, -300, 300), roundHalf);
    const b = Array.from(randArr([n], 2, -3, 3), roundHalf);
    const ta = Tensor.from(a, [n], 'f16');
    const tb = Tensor.from(b, [n], 'f16');
    const [sum, prod] = tidy(() => [F.add(ta, tb), F.mul(ta, tb)]);
    expect(sum.dtype).toBe('f16');
    expectNeighbourHalf(await sum.toArray(), a.map((x, i) => Math.fround(x + b[i])), 'add');
    expectNeighbourHalf(await prod.toArray(), a.map((x, i) => Math.fround(x * b[i])), 'mul');
    for (const t of [ta, tb, sum, prod]) t.release();
  });

  it('an f16 operand of the output\'s shape makes it f16 (an f32 bias, mask or full tensor does not promote it); a broadcast f16 one does not', async () => {
    const [B, C, H] = [2, 3, 5];
    const x = Array.from(randArr([B * C * H], 3, -10, 10), roundHalf);
    const bias = Array.from(randArr([C], 4));
    const tx = Tensor.from(x, [B, C, H], 'f16');
    const tb = Tensor.from(bias, [C, 1]);
    const full = Tensor.from(randArr([B, C, H], 5), [B, C, H]);
    // where's condition (an f32 mask) does not count
    const mask = Tensor.from(Array.from({ length: B * C * H }, (_, i) => i % 2), [B, C, H]);
    const small = Tensor.from(bias, [C, 1], 'f16');
    const [y, wide, w, broadcast] = tidy(() => [F.add(tx, tb), F.add(tx, full), F.where(mask, tx, 0), F.add(small, full)]);
    expect(y.dtype).toBe('f16');
    expect(broadcast.dtype).toBe('f32');
    expectNeighbourHalf(await y.toArray(), x.map((v, i) => Math.fround(v + Math.fround(bias[Math.floor(i / H) % C]))), 'add bias');
    expect(wide.dtype).toBe('f16');
    expect(w.dtype).toBe('f16');
    expectHalf(await w.toArray(), x.map((v, i) => (i % 2 ? v : 0)), 'where');
    // The rule does not depend on the batch: one image gives what two do.
    const one = Tensor.from(x.slice(0, C * H), [1, C, H], 'f16');
    const oneFull = Tensor.from(randArr([1, C, H], 6), [1, C, H]);
    const single = tidy(() => F.add(one, oneFull));
    expect(single.dtype).toBe('f16');
    for (const t of [tx, tb, full, mask, y, wide, w, small, broadcast, one, oneFull, single]) t.release();
  });

  it('gradients come back in each input dtype: f16 for an f16 activation, f32 for an f32 parameter', async () => {
    const n = 37;
    const x = Array.from(randArr([n], 6, -4, 4), roundHalf);
    const w = Array.from(randArr([n], 7));
    const g = Array.from(randArr([n], 8));
    const leaf = Tensor.from(x, [n]).param('x');
    const tw = Tensor.from(w, [n]).param('w');
    tidy(() => {
      const y = F.mul(F.cast(leaf, 'f16'), tw);
      expect(y.dtype).toBe('f16');
      backward(y, Tensor.from(g, [n]));
    });
    // The f32 seed enters in y's dtype (f16: rounded); h's gradient g·w is made f16, then passes
    // the cast exactly; w's (an f32 parameter) is made from f32 products.
    const g16 = g.map(roundHalf);
    expect(leaf.grad!.dtype).toBe('f32');
    expectNeighbourHalf(await leaf.grad!.toArray(), g16.map((v, i) => Math.fround(v * Math.fround(w[i]))), 'x.grad');
    expect(tw.grad!.dtype).toBe('f32');
    expectHalf(await tw.grad!.toArray(), g16.map((v, i) => Math.fround(v * x[i])), 'w.grad');
    for (const t of [leaf, tw, leaf.grad!, tw.grad!]) t.release();
  });

  it('an f32 parameter\'s gradient through an f16 product comes from f32 products: none overflows past 65504', async () => {
    const n = 64;
    const a = Tensor.from(new Array(n).fill(400), [n], 'f16');
    const scale = Tensor.from([1], [1]).param('scale');
    tidy(() => {
      const y = F.mul(a, scale);
      expect(y.dtype).toBe('f16');
      backward(y, Tensor.from(new Array(n).fill(400), [n], 'f16'));
    });
    // 400·400 = 160000 per element (an f16 product would be Infinity), summed: 1.024e7
    expect(scale.grad!.dtype).toBe('f32');
    expect(await scale.grad!.item()).toBe(1.024e7);
    for (const t of [a, scale, scale.grad!]) t.release();
  });

  it('exp, log, pow, rsqrt and reciprocal of f16 give f32 (autocast\'s f32 list): exp(12) is past f16\'s range', async () => {
    const x = Tensor.from([12, 0.5], [2], 'f16');
    const [e, l, p, r, q] = tidy(() => [F.exp(x), F.log(x), F.powScalar(x, 5), F.rsqrt(x), F.reciprocal(x)]);
    for (const t of [e, l, p, r, q]) expect(t.dtype).toBe('f32');
    const got = await e.toArray();
    expect(Math.abs(got[0] - Math.exp(12)) / Math.exp(12)).toBeLessThan(1e-6);
    expect((await p.toArray())[0]).toBe(248832);
    for (const t of [x, e, l, p, r, q]) t.release();
  });
});
