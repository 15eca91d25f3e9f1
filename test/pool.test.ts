// avgPool2d and globalAvgPool, forward and backward, against the float64 CPU reference (ref.ts's avgPoolWindowsRef).
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';
import { maxRelErr, avgPoolWindowsRef } from './ref.js';

beforeAll(async () => {
  await init();
});

function rand(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  });
}

async function check(shape: number[], kh: number, kw: number, run: (x: Tensor) => Tensor, seed: number) {
  const [B, C, H, W] = shape;
  const xv = rand(B * C * H * W, seed);
  const gv = rand((B * C * H * W) / (kh * kw), seed + 1);
  const ref = avgPoolWindowsRef(B * C, H, W, kh, kw, xv, gv);
  const x = Tensor.from(xv, shape).param();
  const y = tidy(() => {
    const out = run(x);
    backward(out, Tensor.from(gv, out.shape));
    return out;
  });
  expect(maxRelErr(await y.toArray(), ref.y)).toBeLessThan(1e-6);
  expect(maxRelErr(await x.grad!.toArray(), ref.dx)).toBeLessThan(1e-6);
  return y.shape;
}

describe('pooling vs float64 reference (forward and backward)', () => {
  it('avgPool2d r = 2 and r = 4', async () => {
    expect(await check([2, 3, 8, 12], 2, 2, (x) => F.avgPool2d(x, 2), 1)).toEqual([2, 3, 4, 6]);
    expect(await check([1, 5, 16, 8], 4, 4, (x) => F.avgPool2d(x, 4), 2)).toEqual([1, 5, 4, 2]);
  });
  it('avgPool2d r = 1 is the identity', async () => {
    expect(await check([2, 2, 3, 5], 1, 1, (x) => F.avgPool2d(x, 1), 3)).toEqual([2, 2, 3, 5]);
  });
  it('globalAvgPool [B, C, H, W] → [B, C], odd sizes', async () => {
    expect(await check([3, 7, 5, 9], 5, 9, (x) => F.globalAvgPool(x), 4)).toEqual([3, 7]);
    expect(await check([2, 4, 1, 1], 1, 1, (x) => F.globalAvgPool(x), 5)).toEqual([2, 4]);
  });
  it('errors name the op, the shape and the argument', () => {
    expect(() => F.avgPool2d(Tensor.empty([2, 3, 8, 10]), 4)).toThrow(/avgPool2d \[2,3,8,10\]: r = 4 must divide H = 8 and W = 10/);
    expect(() => F.avgPool2d(Tensor.empty([3, 8, 8]), 2)).toThrow(/avgPool2d: x \[3,8,8\] must be \[B, C, H, W\]/);
    expect(() => F.globalAvgPool(Tensor.empty([2, 3]))).toThrow(/globalAvgPool: x \[2,3\] must be \[B, C, H, W\]/);
  });
});
