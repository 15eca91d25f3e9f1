import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, tidy } from '../kernels/index.js';

beforeAll(async () => {
  await init();
});

describe('smoke', () => {
  it('adds, multiplies, sums and differentiates', async () => {
    const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]).param('a');
    const b = Tensor.from([10, 20, 30], [3]).param('b');
    const y = F.sum(F.mul(F.add(a, b), a));
    expect(await y.item()).toBeCloseTo(11 + 44 + 99 + 56 + 125 + 216);
    backward(y);
    // d/da (a+b)a = 2a + b ; d/db = sum_rows a
    expect(Array.from(await a.grad!.toArray())).toEqual([12, 24, 36, 18, 30, 42]);
    expect(Array.from(await b.grad!.toArray())).toEqual([5, 7, 9]);
  });
  it('matmul', async () => {
    const r = tidy(() => F.matmul(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]), Tensor.from([1, 0, 0, 1, 1, 1], [3, 2])));
    expect(Array.from(await r.toArray())).toEqual([4, 5, 10, 11]);
  });
});
