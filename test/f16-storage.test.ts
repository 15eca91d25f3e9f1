// f16 tensors (activations under --precision mixed): upload and read-back, cast both ways, and
// elementwise ops reading and writing f16, against float64 references of IEEE half rounding.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';
import { launch } from '../engine/launch.js';
import { randArr, roundHalf, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

/** Values that exercise every corner of the conversion: ties, subnormals, overflow, signed zero. */
function corners(): number[] {
  const v = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2049, 2051, 0.1, -0.3333333, Infinity, -Infinity, 6.1e-5, 5.9e-8];
  return v.map(Math.fround);
}

function expectHalf(got: Float32Array, want: number[], what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) expect(`${what}[${i}] = ${got[i]}`).toBe(`${what}[${i}] = ${want[i]}`);
  }
}

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

  it('a kernel file launched without storage types refuses an f16 tensor instead of misreading it', () => {
    const t = Tensor.from([1, 2, 3], [3], 'f16');
    expect(() => launch({ file: 'adamw.wgsl', entry: 'adamw', args: [t], workgroups: [1], context: 'adamw [3]' })).toThrow(/adamw \[3\]: adamw\.wgsl:adamw reads only f32, got .*\[3\] f16/);
    t.release();
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
  it('cast rounds f32 to the nearest half and widens f16 exactly', async () => {
    const v = corners();
    const x = Tensor.from(v, [v.length]);
    const [h, back] = tidy(() => {
      const h = F.cast(x, 'f16');
      return [h, F.cast(h, 'f32')];
    });
    expect(h.dtype).toBe('f16');
    expect(back.dtype).toBe('f32');
    const want = v.map(roundHalf);
    expectHalf(await h.toArray(), want, 'cast f32→f16');
    expectHalf(await back.toArray(), want, 'cast f16→f32');
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
    expectHalf(await sum.toArray(), a.map((x, i) => roundHalf(Math.fround(x + b[i]))), 'add');
    expectHalf(await prod.toArray(), a.map((x, i) => roundHalf(Math.fround(x * b[i]))), 'mul');
    for (const t of [ta, tb, sum, prod]) t.release();
  });

  it('a smaller f32 operand (bias, scale, mask) keeps the output f16; an f32 operand as large makes it f32', async () => {
    const [B, C, H] = [2, 3, 5];
    const x = Array.from(randArr([B * C * H], 3, -10, 10), roundHalf);
    const bias = Array.from(randArr([C], 4));
    const tx = Tensor.from(x, [B, C, H], 'f16');
    const tb = Tensor.from(bias, [C, 1]);
    const full = Tensor.from(randArr([B, C, H], 5), [B, C, H]);
    // where's condition (an f32 mask) does not count
    const mask = Tensor.from(Array.from({ length: B * C * H }, (_, i) => i % 2), [B, C, H]);
    const [y, wide, w] = tidy(() => [F.add(tx, tb), F.add(tx, full), F.where(mask, tx, 0)]);
    expect(y.dtype).toBe('f16');
    expectHalf(await y.toArray(), x.map((v, i) => roundHalf(Math.fround(v + Math.fround(bias[Math.floor(i / H) % C])))), 'add bias');
    expect(wide.dtype).toBe('f32');
    expect(w.dtype).toBe('f16');
    expectHalf(await w.toArray(), x.map((v, i) => (i % 2 ? v : 0)), 'where');
    for (const t of [tx, tb, full, mask, y, wide, w]) t.release();
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
      expect(y.dtype).toBe('f32');
      backward(y, Tensor.from(g, [n]));
    });
    // h's gradient g·w (f32) becomes f16 on its way back to h, then passes the cast exactly
    expect(leaf.grad!.dtype).toBe('f32');
    expectHalf(await leaf.grad!.toArray(), g.map((v, i) => roundHalf(Math.fround(Math.fround(v) * Math.fround(w[i])))), 'x.grad');
    expect(tw.grad!.dtype).toBe('f32');
    expectHalf(await tw.grad!.toArray(), g.map((v, i) => Math.fround(Math.fround(v) * x[i])), 'w.grad');
    for (const t of [leaf, tw, leaf.grad!, tw.grad!]) t.release();
  });
});
