// Autograd: finite-difference gradchecks of composed expressions (the differences are taken on a
// float64 CPU implementation of the same expression, then compared with the engine's analytic
// gradients), and the tape's behaviour: accumulation, reuse of a tensor, detach, noGrad, explicit
// output gradients, freed graphs.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy, noGrad, backward, detach, record } from '../kernels/index.js';
import {
  randArr, rng, matmulRef, softmaxRef, reduceRef, gelu, sigmoid, finiteDiff, runGrad, expectClose, type Arr,
} from './ref.js';

beforeAll(async () => {
  await init();
});

// The engine evaluates in float32 (relative rounding ~6e-8 per op, a few dozen ops deep); the float64
// central differences are accurate to ~1e-9. 1e-4 leaves room for the float32 side only.
const TOL = 1e-4;

interface Leaf {
  data: Float32Array;
  shape: number[];
}

/** Analytic gradients of the scalar `f` on the engine, and its value. */
async function engineGrads(leaves: Leaf[], f: (...ts: Tensor[]) => Tensor): Promise<{ value: number; grads: Float32Array[] }> {
  const ts = leaves.map((l) => Tensor.from(l.data, l.shape).param());
  try {
    const loss = tidy(() => {
      const y = f(...ts);
      backward(y);
      return y;
    });
    const value = await loss.item();
    loss.release();
    return { value, grads: await Promise.all(ts.map((t) => t.grad!.toArray())) };
  } finally {
    for (const t of ts) {
      t.grad?.release();
      t.release();
    }
  }
}

async function gradcheck(name: string, leaves: Leaf[], engine: (...ts: Tensor[]) => Tensor, cpu: (xs: Arr[]) => number) {
  const { value, grads } = await engineGrads(leaves, engine);
  const want = cpu(leaves.map((l) => Float64Array.from(l.data)));
  expectClose([value], [want], 1e-5, `${name} value`);
  const fd = finiteDiff(cpu, leaves.map((l) => l.data));
  fd.forEach((g, k) => expectClose(grads[k], g, TOL, `${name} d/d input ${k} ${JSON.stringify(leaves[k].shape)}`));
}

const leaf = (shape: number[], seed: number, lo = -1, hi = 1): Leaf => ({ data: randArr(shape, seed, lo, hi), shape });

// ------------------------------------------------------------------ float64 building blocks

const addRowVec = (m: Arr, v: Arr, cols: number) => m.map((x, i) => x + v[i % cols]);
const sum = (a: ArrayLike<number>) => Array.prototype.reduce.call(a, (s: number, v: number) => s + v, 0) as number;

describe('finite-difference gradchecks of composed expressions', () => {
  it('Σ softmax(x·W + b) ⊙ gelu(y)', async () => {
    const [B, I, O] = [5, 4, 6];
    const leaves = [leaf([B, I], 1), leaf([I, O], 2), leaf([O], 3), leaf([B, O], 4, -2, 2)];
    await gradcheck(
      'softmax(xW+b)·gelu(y)',
      leaves,
      (x, w, b, y) => F.sum(F.mul(F.softmax(F.add(F.matmul(x, w), b), -1), F.gelu(y))),
      ([x, w, b, y]) => {
        const z = addRowVec(matmulRef(x, w, B, O, I, 1, 1), b, O);
        const p = softmaxRef(z, [B, O], 1, false).data;
        return sum(p.map((v, i) => v * gelu(y[i])));
      },
    );
  });

  it('2-layer MLP (fused bias + gelu, then bias) with a mean-squared loss', async () => {
    const [B, I, H, O] = [8, 5, 7, 3];
    const leaves = [leaf([B, I], 10), leaf([I, H], 11), leaf([H], 12), leaf([H, O], 13), leaf([O], 14), leaf([B, O], 15)];
    await gradcheck(
      'MLP + MSE',
      leaves,
      (x, w1, b1, w2, b2, t) => {
        const h = F.matmul(x, w1, { bias: b1, activation: 'gelu' });
        const y = F.matmul(h, w2, { bias: b2 });
        return F.mean(F.powScalar(F.sub(y, t), 2));
      },
      ([x, w1, b1, w2, b2, t]) => {
        const h = addRowVec(matmulRef(x, w1, B, H, I, 1, 1), b1, H).map(gelu);
        const y = addRowVec(matmulRef(h, w2, B, O, H, 1, 1), b2, O);
        return sum(y.map((v, i) => (v - t[i]) ** 2)) / y.length;
      },
    );
  });

  it('BatchNorm-like normalisation from mean / variance ops, then a sigmoid head', async () => {
    const [N, C, L] = [4, 3, 5];
    const eps = 1e-5;
    const leaves = [leaf([N, C, L], 20, -2, 3), leaf([1, C, 1], 21, 0.5, 1.5), leaf([1, C, 1], 22), leaf([N, C, L], 23)];
    await gradcheck(
      'batchnorm',
      leaves,
      (x, gamma, beta, w) => {
        const mu = F.mean(x, [0, 2], true);
        const v = F.variance(x, [0, 2], true);
        const xhat = F.mul(F.sub(x, mu), F.rsqrt(F.add(v, eps)));
        return F.sum(F.mul(F.sigmoid(F.add(F.mul(xhat, gamma), beta)), w));
      },
      ([x, gamma, beta, w]) => {
        const mu = reduceRef(x, [N, C, L], [0, 2], 'mean').data;
        const v = reduceRef(x, [N, C, L], [0, 2], 'var').data;
        let s = 0;
        for (let i = 0; i < x.length; i++) {
          const c = Math.floor(i / L) % C;
          const xhat = (x[i] - mu[c]) / Math.sqrt(v[c] + eps);
          s += sigmoid(xhat * gamma[c] + beta[c]) * w[i];
        }
        return s;
      },
    );
  });

  it('a tensor reused along many paths: broadcasting, division, exp/log, tanh, max, shape and index ops', async () => {
    const leaves = [leaf([3, 4], 30, 0.5, 2), leaf([4], 31, 0.5, 1.5)];
    const idx = [2, 0, 2, 1];
    await gradcheck(
      'kitchen sink',
      leaves,
      (x, v) => {
        const a = F.div(F.exp(F.mul(x, v)), F.add(x, 1)); // [3,4]
        const b = F.log(F.add(F.permute(x, [1, 0]), 3)); // [4,3]
        const c = F.tanh(F.matmul(a, b)); // [3,3]
        const m = F.max(F.concat([c, F.slice(x, 1, 1, 4)], 1), 1).values; // [3]
        const g = F.indexSelect(x, 0, idx); // [4,4]
        const sq = F.sqrt(F.mul(x, x)); // |x|, x > 0
        return F.add(F.add(F.sum(m), F.mean(F.mul(g, v))), F.sum(F.reshape(sq, [12])));
      },
      ([x, v]) => {
        const a = x.map((xv, i) => Math.exp(xv * v[i % 4]) / (xv + 1));
        const b = new Float64Array(12);
        for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) b[j * 3 + i] = Math.log(x[i * 4 + j] + 3);
        const c = matmulRef(a, b, 3, 3, 4, 1, 1).map(Math.tanh);
        let s = 0;
        for (let i = 0; i < 3; i++) s += Math.max(c[i * 3], c[i * 3 + 1], c[i * 3 + 2], x[i * 4 + 1], x[i * 4 + 2], x[i * 4 + 3]);
        let gm = 0;
        idx.forEach((r) => {
          for (let j = 0; j < 4; j++) gm += x[r * 4 + j] * v[j];
        });
        s += gm / 16;
        for (let i = 0; i < 12; i++) s += Math.sqrt(x[i] * x[i]);
        return s;
      },
    );
  });

  it('softmax over a middle axis and logSoftmax cross-entropy through a batched matmul', async () => {
    const [B, N, K] = [2, 3, 4];
    const leaves = [leaf([B, N, K], 40), leaf([B, K, N], 41), leaf([B, N, N], 42, 0, 1)];
    await gradcheck(
      'attention-like',
      leaves,
      (q, k, t) => {
        const att = F.softmax(F.matmul(q, k), 1); // [B, N, N], normalised over axis 1
        return F.neg(F.sum(F.mul(F.logSoftmax(F.scale(att, 3), -1), t)));
      },
      ([q, k, t]) => {
        const s = matmulRef(q, k, N, N, K, B, B);
        const att = softmaxRef(s, [B, N, N], 1, false).data.map((v) => 3 * v);
        const ls = softmaxRef(att, [B, N, N], 2, true).data;
        return -sum(ls.map((v, i) => v * t[i]));
      },
    );
  });
});

describe('the tape', () => {
  it('gradients accumulate over two backward() calls', async () => {
    const x = Tensor.from([1, 2, 3], [3]).param('x');
    for (let k = 0; k < 2; k++) tidy(() => backward(F.sum(F.mul(x, x))));
    expect(Array.from(await x.grad!.toArray())).toEqual([4, 8, 12]);
    x.grad!.release();
    x.release();
  });

  it('a tensor used twice in one op and in several ops gets the sum of its gradients', async () => {
    const x = randArr([2, 5], 3);
    const r = await runGrad([{ data: x, shape: [2, 5] }], (t) => F.add(F.add(F.mul(t, t), t), F.add(t, t)));
    expectClose(r.out, x.map((v) => v * v + 3 * v), 1e-6, 'x² + 3x');
    expectClose(r.grads[0], x.map((v, i) => r.w[i] * (2 * v + 3)), 1e-6, 'd(x² + 3x)');
  });

  it('a rule may take an input\'s pending gradient and return it summed into its own', async () => {
    // 3·x through an op whose rule adds x's gradient from its other uses itself (an engine add
    // here, a kernel epilogue in real ops); x is used by it twice and once more by a plain mul.
    const seen: (number[] | null)[] = [];
    const triple = (a: Tensor, b: Tensor) =>
      record(F.add(F.add(a, b), a), 'triple', [a, b], (g, pending) => {
        const outs: Tensor[] = [];
        for (const i of [0, 1]) {
          const p = pending.take(i);
          seen.push(p ? p.shape : null);
          outs.push(p ? F.add(F.mul(g, Tensor.from([2 - i], [1])), p) : F.mul(g, Tensor.from([2 - i], [1])));
        }
        return outs;
      });
    const x = Tensor.from([1, -2, 3], [3]).param('x');
    tidy(() => backward(F.sum(F.add(triple(x, x), F.mul(x, Tensor.from([5], [1]))))));
    // d/dx (3x + 5x) = 8, whatever was pending where.
    expect(Array.from(await x.grad!.toArray())).toEqual([8, 8, 8]);
    // The mul's gradient was pending for input 0; input 1 is the same tensor, already taken.
    expect(seen).toEqual([[3], null]);
    x.grad!.release();
    x.release();
  });

  it('a rule may write a leaf\'s gradient into its home; other uses of the leaf then add to it', async () => {
    // constant(x) = k·x with a rule that writes d/dx = k (the upstream gradient is ones here)
    // straight into x's home when offered one.
    const k3 = (a: Tensor, k: number) =>
      record(F.mul(a, Tensor.from([k], [1])), 'k3', [a], (g, pending) => {
        const home = pending.home(0);
        if (!home) return [F.mul(g, Tensor.from([k], [1]))];
        F.fillInto(home, k);
        return [home];
      });
    const flat = Tensor.from(new Float32Array(64), [64]);
    const x = Tensor.from([1, 2, 3], [3]).param('x');
    x.gradHome = () => flat.viewAt(0, [3]);
    tidy(() => backward(F.sum(k3(x, 2))));
    expect(x.grad!.pooled).toBe(flat.pooled);
    expect(Array.from(await flat.toArray()).slice(0, 4)).toEqual([2, 2, 2, 0]);
    x.grad!.release();
    x.grad = null;
    // Used twice: one use gets the home, the other's gradient is added as usual.
    tidy(() => backward(F.sum(F.add(k3(x, 2), k3(x, 5)))));
    expect(Array.from(await x.grad!.toArray())).toEqual([7, 7, 7]);
    // A gradient already there (accumulation over backward calls): no home, the sum as usual.
    tidy(() => backward(F.sum(k3(x, 2))));
    expect(Array.from(await x.grad!.toArray())).toEqual([9, 9, 9]);
    x.grad!.release();
    x.release();
    flat.release();
  });

  it('backward(y, grad) with an explicit output gradient equals backward of Σ y ⊙ grad', async () => {
    const xv = randArr([4, 3], 5);
    const wv = randArr([4, 3], 6);
    const grads: Float32Array[] = [];
    for (const explicit of [true, false]) {
      const x = Tensor.from(xv, [4, 3]).param();
      tidy(() => {
        const y = F.tanh(F.mul(x, 3));
        const w = Tensor.from(wv, [4, 3]);
        if (explicit) backward(y, w);
        else backward(F.sum(F.mul(y, w)));
      });
      grads.push(await x.grad!.toArray());
      x.grad!.release();
      x.release();
    }
    expectClose(grads[0], grads[1], 1e-6, 'explicit vs summed');
    expectClose(grads[0], xv.map((v, i) => wv[i] * 3 * (1 - Math.tanh(3 * v) ** 2)), 1e-5, 'explicit vs reference');
  });

  it('detach and noGrad stop gradients; frozen inputs get none; non-leaves keep no .grad', async () => {
    const x = Tensor.from([1, 2, 3], [3]).param('x');
    const c = Tensor.from([5, 6, 7], [3]); // not a parameter
    const inter = tidy(() => {
      const y = F.mul(x, 2);
      const viaDetach = F.mul(detach(y), x); // d/dx = y (detached), not 4x
      const viaNoGrad = noGrad(() => F.mul(x, x)); // a constant
      expect(viaNoGrad.requiresGrad).toBe(false);
      backward(F.sum(F.add(F.add(viaDetach, viaNoGrad), F.mul(c, x))));
      expect(y.grad).toBeNull();
      return y;
    });
    expect(Array.from(await x.grad!.toArray())).toEqual([2 + 5, 4 + 6, 6 + 7]);
    expect(c.grad).toBeNull();
    for (const t of [x.grad!, x, c, inter]) t.release();
  });

  it('a second backward through a freed graph is an error, not silently missing gradients', async () => {
    const x = Tensor.from([1, 2], [2]).param('x');
    tidy(() => {
      const y = F.exp(x);
      const l1 = F.sum(y);
      const l2 = F.sum(F.mul(y, y));
      backward(l1);
      expect(() => backward(l1)).toThrow(/backward:.*already freed/);
      expect(() => backward(l2)).toThrow(/backward:.*\[2\].*already freed/);
    });
    x.grad?.release();
    x.release();
  });

  it('gradients of a deep chain (no recursion limit) and of a wide fan-in', async () => {
    const x = Tensor.from([0.5, -0.25], [2]).param('x');
    tidy(() => {
      let y = x;
      for (let i = 0; i < 3000; i++) y = F.affine(y, 1, 0.001);
      const parts = Array.from({ length: 50 }, (_, i) => F.mul(x, i));
      backward(F.sum(F.add(y, parts.reduce((a, b) => F.add(a, b)))));
    });
    // d/dx = 1 (chain) + Σ i = 1 + 1225
    expect(Array.from(await x.grad!.toArray())).toEqual([1226, 1226]);
    x.grad!.release();
    x.release();
  });

  it('runs deterministically: the same graph gives bitwise the same gradients', async () => {
    const r = rng(3);
    const data = Float32Array.from({ length: 60 }, () => r() * 2 - 1);
    const runs: Uint32Array[] = [];
    for (let k = 0; k < 2; k++) {
      const g = await runGrad([{ data, shape: [6, 10] }], (t) =>
        F.softmax(F.matmul(t, F.transpose(t)), -1),
      );
      runs.push(new Uint32Array(g.grads[0]!.buffer));
    }
    expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
  });
});
