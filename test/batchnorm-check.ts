// One batchNorm2d case (forward, backward, running statistics) against the float64 CPU reference
// (ref.ts's batchNormRef), for test/batchnorm.test.ts and test/default-limits.test.ts.
import { expect } from 'vitest';
import { Tensor, F, backward, tidy } from '../kernels/index.js';
import { rand, maxRelErr, batchNormRef } from './ref.js';

export interface BatchNormCase {
  shape: number[];
  training: boolean;
  act?: boolean;
  /** x is a constant: only dweight and dbias are computed. */
  constantX?: boolean;
  /** y = residual + bn(x), the residual requiring grad; `scaled`: bn(x) times a per-image factor (some 0). */
  residual?: boolean;
  scaled?: boolean;
  /** x = offset + scale·U(−1, 1) */
  offset: number;
  scale: number;
  seed: number;
}

export async function checkBatchNorm(k: BatchNormCase): Promise<void> {
  const C = k.shape[1];
  const size = k.shape.reduce((a, v) => a * v, 1);
  const xv = rand(size, k.seed, k.offset - k.scale, k.offset + k.scale);
  const wv = rand(C, k.seed + 1, 0.5, 1.5);
  const bv = rand(C, k.seed + 2, -0.3, 0.3);
  const rmv = rand(C, k.seed + 3, -0.5, 0.5);
  const rvv = rand(C, k.seed + 4, 0.5, 2);
  const gv = rand(size, k.seed + 5);
  const resv = k.residual ? rand(size, k.seed + 6) : undefined;
  const sv = k.scaled ? Array.from({ length: k.shape[0] }, (_, i) => (i % 3 === 1 ? 0 : 1 / 0.9)) : undefined;
  const ref = batchNormRef(k.shape, xv, wv, bv, rmv, rvv, gv, { training: k.training, act: !!k.act, residual: resv, scale: sv });

  const x = k.constantX ? Tensor.from(xv, k.shape) : Tensor.from(xv, k.shape).param();
  const w = Tensor.from(wv, [C]).param();
  const b = Tensor.from(bv, [C]).param();
  const rm = Tensor.from(rmv, [C]);
  const rv = Tensor.from(rvv, [C]);
  const res = resv ? Tensor.from(resv, k.shape).param() : undefined;
  const scale = sv ? Tensor.from(sv, [k.shape[0], ...k.shape.slice(1).map(() => 1)]) : undefined;
  const y = tidy(() => {
    const out = F.batchNorm2d(x, w, b, rm, rv, { training: k.training, activation: k.act ? 'gelu' : 'none', residual: res, branchScale: scale });
    backward(out, Tensor.from(gv, k.shape));
    return out;
  });
  expect(maxRelErr(await y.toArray(), ref.y)).toBeLessThan(1e-5);
  if (res) {
    expect(maxRelErr(await res.grad!.toArray(), ref.dres)).toBe(0);
    res.grad!.release();
    res.release();
  }
  scale?.release();
  if (k.constantX) expect(x.grad).toBeNull();
  else expect(maxRelErr(await x.grad!.toArray(), ref.dx)).toBeLessThan(1e-4);
  expect(maxRelErr(await w.grad!.toArray(), ref.dw)).toBeLessThan(1e-4);
  expect(maxRelErr(await b.grad!.toArray(), ref.db)).toBeLessThan(1e-4);
  expect(maxRelErr(await rm.toArray(), ref.runMean)).toBeLessThan(1e-6);
  expect(maxRelErr(await rv.toArray(), ref.runVar)).toBeLessThan(1e-6);
  for (const t of [x, w, b]) t.grad?.release();
  for (const t of [x, w, b, rm, rv, y]) t.release();
}
