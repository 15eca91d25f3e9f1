// Index ops against float64 references: indexSelect (gather along an axis) and indexAdd (scatter-add)
// forward and backward, the GPU-built inverse index (CSR), and bitwise determinism of scatter-add.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy } from '../kernels/index.js';
import { randArr, rng, indexSelectMap, gatherRef, scatterRef, runGrad, expectClose, numel } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-5;

function randIndex(n: number, limit: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * limit));
}

/** Largest Σ|g| over the elements scattered into one target: the scale of a scatter-add. */
function scatterScale(g: ArrayLike<number>, src: Int32Array, n: number): number {
  return Math.max(...scatterRef(Float64Array.from(g, Math.abs), src, n));
}

const CASES: { shape: number[]; axis: number; j: number }[] = [
  { shape: [7], axis: 0, j: 12 },
  { shape: [5, 3], axis: 0, j: 9 },
  { shape: [5, 3], axis: 1, j: 1 },
  { shape: [2, 6, 4], axis: 1, j: 15 },
  { shape: [2, 6, 4], axis: -1, j: 5 },
  { shape: [3, 1, 2], axis: 1, j: 4 },
  { shape: [40, 9], axis: 0, j: 300 },
];

describe('indexSelect', () => {
  it('gathers along every axis with repeated indices; the gradient scatter-adds back', async () => {
    for (const [k, c] of CASES.entries()) {
      const ax = c.axis < 0 ? c.axis + c.shape.length : c.axis;
      const x = randArr(c.shape, k);
      const index = randIndex(c.j, c.shape[ax], 10 + k);
      const m = indexSelectMap(c.shape, ax, index);
      for (const asTensor of [false, true]) {
        const r = await runGrad([{ data: x, shape: c.shape }], (t) =>
          F.indexSelect(t, c.axis, asTensor ? Tensor.from(index, [index.length]) : index),
        );
        const what = `index_select ${JSON.stringify(c.shape)} axis ${c.axis} j ${c.j} (${asTensor ? 'tensor' : 'array'})`;
        expect(r.shape, what).toEqual(m.shape);
        expectClose(r.out, gatherRef(x, m.src), 0, what);
        expectClose(r.grads[0], scatterRef(r.w, m.src, x.length), TOL, `${what} backward`, scatterScale(r.w, m.src, x.length));
      }
    }
  });

  it('an index tensor of any shape counts as a flat list', async () => {
    const x = randArr([6, 2], 3);
    const idx = Int32Array.from([5, 0, 0, 3, 2, 5]);
    const r = await runGrad([{ data: x, shape: [6, 2] }], (t) => F.indexSelect(t, 0, Tensor.from(idx, [2, 3])));
    const m = indexSelectMap([6, 2], 0, idx);
    expect(r.shape).toEqual([6, 2]);
    expectClose(r.out, gatherRef(x, m.src), 0, 'index_select with a [2,3] index');
  });

  it('an out-of-range entry of an index tensor yields NaN (documented: no stall to check it)', async () => {
    const x = Tensor.from([1, 2, 3, 4], [2, 2]);
    const idx = Tensor.from(Int32Array.from([1, 7, -1]), [3]);
    const y = tidy(() => F.indexSelect(x, 0, idx));
    const v = await y.toArray();
    expect(Array.from(v.slice(0, 2))).toEqual([3, 4]);
    expect(Array.from(v.slice(2)).every(Number.isNaN)).toBe(true);
    for (const t of [x, idx, y]) t.release();
  });
});

describe('indexAdd', () => {
  it('scatter-adds along every axis with many duplicates; the gradient gathers back', async () => {
    for (const [k, c] of CASES.entries()) {
      const ax = c.axis < 0 ? c.axis + c.shape.length : c.axis;
      const size = c.shape[ax];
      // src has j rows on the axis; out has `size`.
      const srcShape = [...c.shape];
      srcShape[ax] = c.j;
      const src = randArr(srcShape, 50 + k);
      const index = randIndex(c.j, size, 60 + k);
      const m = indexSelectMap(c.shape, ax, index); // out[src map] is where each source element lands
      const r = await runGrad([{ data: src, shape: srcShape }], (t) => F.indexAdd(t, c.axis, index, size));
      const what = `index_add ${JSON.stringify(srcShape)} axis ${c.axis} into ${size}`;
      expect(r.shape, what).toEqual(c.shape);
      expectClose(r.out, scatterRef(src, m.src, numel(c.shape)), TOL, what, scatterScale(src, m.src, numel(c.shape)));
      expectClose(r.grads[0], gatherRef(r.w, m.src), 0, `${what} backward`);
    }
  });

  it('targets no index names are zero; an empty index gives zeros', async () => {
    const src = Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]);
    const y = tidy(() => F.indexAdd(src, 0, [4, 0, 4], 6));
    expect(Array.from(await y.toArray())).toEqual([3, 4, 0, 0, 0, 0, 0, 0, 6, 8, 0, 0]);
    const e = Tensor.from(new Float32Array(0), [0, 2]);
    const z = tidy(() => F.indexAdd(e, 0, [], 3));
    expect(Array.from(await z.toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    for (const t of [src, y, e, z]) t.release();
  });

  it('is bitwise deterministic and sums each target in ascending source order', async () => {
    // 3000 sources into 7 targets: ~430 duplicates each, values spanning magnitudes so that the
    // summation order changes the float32 result.
    const j = 3000;
    const inner = 3;
    const r = rng(5);
    const src = Float32Array.from({ length: j * inner }, () => (r() - 0.5) * 10 ** Math.floor(r() * 8 - 4));
    const index = randIndex(j, 7, 6);
    const s = Tensor.from(src, [j, inner]);
    const idx = Tensor.from(index, [j]);
    const runs: Uint32Array[] = [];
    for (let k = 0; k < 3; k++) {
      const y = tidy(() => F.indexAdd(s, 0, idx, 7));
      runs.push(new Uint32Array((await y.toArray()).buffer));
      y.release();
    }
    expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
    expect(Array.from(runs[2])).toEqual(Array.from(runs[0]));
    // Sequential float32 sums in ascending source order, exactly.
    const want = new Float32Array(7 * inner);
    for (let t = 0; t < j; t++) {
      for (let i = 0; i < inner; i++) want[index[t] * inner + i] = Math.fround(want[index[t] * inner + i] + src[t * inner + i]);
    }
    expect(Array.from(runs[0])).toEqual(Array.from(new Uint32Array(want.buffer)));
    s.release();
    idx.release();
  });
});

describe('inverseIndex (CSR)', () => {
  async function checkCsr(index: Int32Array, d: number, what: string) {
    const idx = Tensor.from(index, [index.length]);
    const inv = tidy(() => F.inverseIndex(idx, d));
    const offsets = Array.from(await inv.offsets.toInt32Array());
    const list = Array.from(await inv.list.toInt32Array());
    const wantOffsets = [0];
    const wantList: number[] = [];
    for (let t = 0; t < d; t++) {
      index.forEach((v, p) => v === t && wantList.push(p));
      wantOffsets.push(wantList.length);
    }
    expect(inv.d).toBe(d);
    expect(inv.j).toBe(index.length);
    expect(offsets, `${what} offsets`).toEqual(wantOffsets);
    expect(list.slice(0, wantList.length), `${what} list`).toEqual(wantList);
    for (const t of [idx, inv.offsets, inv.list]) t.release();
  }

  it('groups positions by value, ascending, for small and large d (scan past one workgroup)', async () => {
    await checkCsr(Int32Array.from([2, 0, 2, 2, 1, 0]), 4, 'tiny');
    await checkCsr(randIndex(500, 3, 1), 3, 'heavy duplicates');
    await checkCsr(randIndex(3000, 1000, 2), 1000, 'd = 1000');
    await checkCsr(randIndex(70, 700, 3), 700, 'sparse targets');
  });

  it('leaves out-of-range entries out', async () => {
    await checkCsr(Int32Array.from([3, -1, 0, 9, 3, 4, -7, 0]), 5, 'with out-of-range entries');
  });
});

describe('inverseIndexRows (a CSR per row, one dispatch)', () => {
  async function checkRows(index: Int32Array, rows: number, d: number, what: string) {
    const j = index.length / rows;
    const idx = Tensor.from(index, [rows, j]);
    const inv = tidy(() => F.inverseIndexRows(idx, d));
    const offsets = Array.from(await inv.offsets.toInt32Array());
    const list = Array.from(await inv.list.toInt32Array());
    for (let r = 0; r < rows; r++) {
      const wantOffsets = [r * j];
      const wantList: number[] = [];
      for (let t = 0; t < d; t++) {
        for (let i = 0; i < j; i++) if (index[r * j + i] === t) wantList.push(r * j + i);
        wantOffsets.push(r * j + wantList.length);
      }
      expect(offsets.slice(r * (d + 1), (r + 1) * (d + 1)), `${what} row ${r} offsets`).toEqual(wantOffsets);
      expect(list.slice(r * j, r * j + wantList.length), `${what} row ${r} list`).toEqual(wantList);
    }
    for (const t of [idx, inv.offsets, inv.list]) t.release();
  }

  it('groups each row\'s positions by value, ascending (duplicates, more targets than lanes)', async () => {
    await checkRows(Int32Array.from([2, 0, 2, 2, 1, 0]), 2, 3, 'tiny');
    await checkRows(randIndex(3 * 400, 3, 4), 3, 3, 'heavy duplicates');
    await checkRows(randIndex(5 * 300, 150, 5), 5, 150, 'd = 150');
    await checkRows(randIndex(4 * 10, 200, 6), 4, 200, 'sparse targets');
    // Many indices per target: the row splits into blocks of indices (here the most, 64; and 9).
    await checkRows(randIndex(2 * 4000, 25, 7), 2, 25, '160 per target');
    await checkRows(randIndex(3 * 9 * 130, 130, 8), 3, 130, '9 per target');
  });

  it('leaves out-of-range entries out', async () => {
    await checkRows(Int32Array.from([3, -1, 0, 9, 3, 4, -7, 0, 5, 5]), 2, 5, 'with out-of-range entries');
  });
});
