// Shape ops, forward and backward, against float64 gather maps: reshape / flatten, permute, transpose,
// slice, concat, clone. Integer tensors go through the same copies bit for bit.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy } from '../kernels/index.js';
import { randArr, permuteMap, sliceMap, concatRef, gatherRef, scatterRef, numel, runGrad, expectClose, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-5;

/** All permutations of [0, n). */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

// Every case runs with both kernel profiles: copy.wgsl with one element per invocation and a
// uniform rank ('gpu'), and with the rank constant and 8 elements per invocation ('cpu').
forEachKernelProfile((profile) => `${profile} kernel profile`, suite);

function suite() {
  describe('reshape and flatten', () => {
    it('reshape (with -1) is a view whose gradient is reshaped back', async () => {
      const cases: [number[], number[], number[]][] = [
        [[2, 3, 4], [6, -1], [6, 4]],
        [[2, 3, 4], [-1], [24]],
        [[5, 1, 7], [7, 5], [7, 5]],
        [[12], [1, 3, 1, 4], [1, 3, 1, 4]],
        [[1], [], []],
      ];
      for (const [k, [from, spec, to]] of cases.entries()) {
        const x = randArr(from, k);
        const r = await runGrad([{ data: x, shape: from }], (t) => F.reshape(t, spec));
        expect(r.shape).toEqual(to);
        expectClose(r.out, x, 0, `reshape ${from} → ${spec}`);
        expectClose(r.grads[0], r.w, 0, `reshape ${from} → ${spec} backward`);
      }
    });

    it('flatten from a start dim', async () => {
      const x = randArr([2, 3, 4, 5], 1);
      for (const [start, shape] of [[0, [120]], [1, [2, 60]], [2, [2, 3, 20]], [3, [2, 3, 4, 5]]] as const) {
        const r = await runGrad([{ data: x, shape: [2, 3, 4, 5] }], (t) => F.flatten(t, start));
        expect(r.shape).toEqual(shape);
        expectClose(r.out, x, 0, `flatten ${start}`);
        expectClose(r.grads[0], r.w, 0, `flatten ${start} backward`);
      }
    });
  });

  describe('permute and transpose', () => {
    it('every permutation of rank 1–3 and of a rank-4 shape with size-1 dims', async () => {
      const shapes = [[7], [5, 3], [2, 3, 4], [3, 1, 5, 2]];
      let seed = 10;
      for (const shape of shapes) {
        for (const perm of permutations(shape.length)) {
          const x = randArr(shape, seed++);
          const m = permuteMap(shape, perm);
          const r = await runGrad([{ data: x, shape }], (t) => F.permute(t, perm));
          const what = `permute ${JSON.stringify(shape)} by ${perm}`;
          expect(r.shape, what).toEqual(m.shape);
          expectClose(r.out, gatherRef(x, m.src), 0, what);
          expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, `${what} backward`);
        }
      }
    });

    it('rank-6 permutation and a tensor larger than one workgroup', async () => {
      const cases: [number[], number[]][] = [
        [[2, 3, 1, 2, 3, 2], [5, 3, 0, 4, 1, 2]],
        [[17, 33], [1, 0]],
        [[3, 70, 5], [2, 0, 1]],
      ];
      for (const [k, [shape, perm]] of cases.entries()) {
        const x = randArr(shape, 40 + k);
        const m = permuteMap(shape, perm);
        const r = await runGrad([{ data: x, shape }], (t) => F.permute(t, perm));
        expectClose(r.out, gatherRef(x, m.src), 0, `permute ${shape} by ${perm}`);
        expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, `permute ${shape} by ${perm} backward`);
      }
    });

    it('transpose of any two axes, negative axes included', async () => {
      const shape = [2, 3, 4];
      const x = randArr(shape, 50);
      for (const [a, b] of [[0, 1], [0, 2], [1, 2], [-1, -2], [-3, -1], [1, 1]]) {
        const perm = [0, 1, 2];
        const i = a < 0 ? a + 3 : a;
        const j = b < 0 ? b + 3 : b;
        [perm[i], perm[j]] = [perm[j], perm[i]];
        const m = permuteMap(shape, perm);
        const r = await runGrad([{ data: x, shape }], (t) => F.transpose(t, a, b));
        expect(r.shape).toEqual(m.shape);
        expectClose(r.out, gatherRef(x, m.src), 0, `transpose ${a},${b}`);
        expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, `transpose ${a},${b} backward`);
      }
      // Default: the last two axes.
      const r = await runGrad([{ data: x, shape }], (t) => F.transpose(t));
      expect(r.shape).toEqual([2, 4, 3]);
    });
  });

  describe('slice', () => {
    it('every axis, negative start / end, end past the size (clamped), empty and full ranges', async () => {
      const shape = [4, 5, 6];
      let seed = 60;
      for (let axis = -3; axis < 3; axis++) {
        const ax = axis < 0 ? axis + 3 : axis;
        const d = shape[ax];
        for (const [start, end] of [[0, d], [1, 3], [-2, d], [0, -1], [2, 100], [d - 1, d], [2, 2]]) {
          const s = start < 0 ? start + d : start;
          const e = end < 0 ? end + d : Math.min(end, d);
          const x = randArr(shape, seed++);
          const m = sliceMap(shape, ax, s, e);
          const r = await runGrad([{ data: x, shape }], (t) => F.slice(t, axis, start, end));
          const what = `slice axis ${axis} [${start}:${end}]`;
          expect(r.shape, what).toEqual(m.shape);
          expectClose(r.out, gatherRef(x, m.src), 0, what);
          expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, `${what} backward`);
        }
      }
    });

    it('slices of a long axis past one workgroup', async () => {
      const shape = [3, 700];
      const x = randArr(shape, 90);
      const m = sliceMap(shape, 1, 123, 650);
      const r = await runGrad([{ data: x, shape }], (t) => F.slice(t, 1, 123, 650));
      expectClose(r.out, gatherRef(x, m.src), 0, 'slice [3,700] 123:650');
      expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, 'slice [3,700] 123:650 backward');
    });
  });

  describe('concat', () => {
    it('two and three parts of different sizes along every axis, with gradients to each part', async () => {
      const base = [3, 4, 5];
      let seed = 100;
      for (let axis = -3; axis < 3; axis++) {
        const ax = axis < 0 ? axis + 3 : axis;
        for (const sizes of [[2, 3], [1, 4, 2], [base[ax]]]) {
          const parts = sizes.map((n) => {
            const shape = [...base];
            shape[ax] = n;
            return { data: randArr(shape, seed++), shape };
          });
          const ref = concatRef(parts, ax);
          const r = await runGrad(parts, (...ts) => F.concat(ts, axis));
          const what = `concat axis ${axis} sizes ${sizes}`;
          expect(r.shape, what).toEqual(ref.shape);
          expectClose(r.out, ref.data, 0, what);
          ref.positions.forEach((pos, k) => expectClose(r.grads[k], gatherRef(r.w, pos), TOL, `${what} backward part ${k}`));
        }
      }
    });

    it('a part without grad gets none; the others still do', async () => {
      const a = { data: randArr([2, 3], 1), shape: [2, 3] };
      const b = { data: randArr([4, 3], 2), shape: [4, 3], noGrad: true };
      const r = await runGrad([a, b], (x, y) => F.concat([x, y], 0));
      expect(r.grads[1]).toBeNull();
      expectClose(r.grads[0], r.w.slice(0, 6), TOL, 'concat part 0 backward');
    });
  });

  describe('clone and integer tensors', () => {
    it('clone copies values and passes the gradient through', async () => {
      for (const shape of [[1], [300], [2, 3, 4]]) {
        const x = randArr(shape, numel(shape));
        const r = await runGrad([{ data: x, shape }], (t) => F.clone(t));
        expectClose(r.out, x, 0, `clone ${shape}`);
        expectClose(r.grads[0], r.w, 0, `clone ${shape} backward`);
      }
    });

    it('permute / slice / concat / clone keep i32 values and dtype exactly', async () => {
      const shape = [3, 4];
      const v = Int32Array.from({ length: 12 }, (_, i) => (i * 7919) % 1000003 - 500000);
      const x = Tensor.from(v, shape);
      const [p, s, c, k] = tidy(() => [F.permute(x, [1, 0]), F.slice(x, 1, 1, 3), F.concat([x, x], 0), F.clone(x)]);
      const pm = permuteMap(shape, [1, 0]);
      const sm = sliceMap(shape, 1, 1, 3);
      for (const t of [p, s, c, k]) expect(t.dtype).toBe('i32');
      expect(Array.from(await p.toInt32Array())).toEqual(Array.from(pm.src, (i) => v[i]));
      expect(Array.from(await s.toInt32Array())).toEqual(Array.from(sm.src, (i) => v[i]));
      expect(Array.from(await c.toInt32Array())).toEqual([...v, ...v]);
      expect(Array.from(await k.toInt32Array())).toEqual(Array.from(v));
      for (const t of [x, p, s, c, k]) t.release();
    });
  });
}
