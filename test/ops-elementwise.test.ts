// Elementwise ops, forward and backward, against float64 references: unary ops over normal, large and
// tiny magnitudes; binary ops with NumPy broadcasting on every axis; where, expand, comparisons.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy, noGrad } from '../kernels/index.js';
import {
  randArr, mapRef, sumToRef, absSumScale, expandMap, scatterRef, gatherRef, numel, erf, gelu, geluGrad, sigmoid, runGrad,
  expectClose, type Input, forEachKernelProfile } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-5;

interface UnaryCase {
  name: string;
  op: (x: Tensor) => Tensor;
  f: (x: number) => number;
  df: (x: number) => number;
  /** Input ranges [lo, hi): the usual one first, then large and tiny magnitudes. */
  ranges: [number, number][];
}

const sym = (m: number): [number, number] => [-m, m];
const pos = (m: number): [number, number] => [m / 100, m];

const UNARY: UnaryCase[] = [
  { name: 'neg', op: F.neg, f: (x) => -x, df: () => -1, ranges: [sym(3), sym(1e30), sym(1e-30)] },
  { name: 'exp', op: F.exp, f: Math.exp, df: Math.exp, ranges: [sym(3), sym(80), sym(1e-30)] },
  { name: 'log', op: F.log, f: Math.log, df: (x) => 1 / x, ranges: [pos(10), pos(1e30), pos(1e-20)] },
  { name: 'sqrt', op: F.sqrt, f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x), ranges: [pos(10), pos(1e30), pos(1e-20)] },
  { name: 'rsqrt', op: F.rsqrt, f: (x) => 1 / Math.sqrt(x), df: (x) => -0.5 * x ** -1.5, ranges: [pos(10), pos(1e20), pos(1e-20)] },
  { name: 'reciprocal', op: F.reciprocal, f: (x) => 1 / x, df: (x) => -1 / (x * x), ranges: [pos(10), pos(1e15), pos(1e-15)] },
  { name: 'abs', op: F.abs, f: Math.abs, df: Math.sign, ranges: [sym(3), sym(1e30), sym(1e-30)] },
  { name: 'relu', op: F.relu, f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0), ranges: [sym(3), sym(1e30), sym(1e-30)] },
  { name: 'gelu', op: F.gelu, f: gelu, df: geluGrad, ranges: [sym(5), sym(1e4), sym(1e-30)] },
  { name: 'sigmoid', op: F.sigmoid, f: sigmoid, df: (x) => sigmoid(x) * (1 - sigmoid(x)), ranges: [sym(5), sym(1e4), sym(1e-30)] },
  { name: 'tanh', op: F.tanh, f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2, ranges: [sym(3), sym(1e4), sym(1e-30)] },
  { name: 'clamp(-0.5,0.7)', op: (x) => F.clamp(x, -0.5, 0.7), f: (x) => Math.min(Math.max(x, -0.5), 0.7), df: (x) => (x >= -0.5 && x <= 0.7 ? 1 : 0), ranges: [sym(2), sym(1e30)] },
  { name: 'clamp(min 0.2)', op: (x) => F.clamp(x, 0.2), f: (x) => Math.max(x, 0.2), df: (x) => (x >= 0.2 ? 1 : 0), ranges: [sym(2), sym(1e30)] },
  { name: 'clamp(max -0.1)', op: (x) => F.clamp(x, -Infinity, -0.1), f: (x) => Math.min(x, -0.1), df: (x) => (x <= -0.1 ? 1 : 0), ranges: [sym(2)] },
  { name: 'affine(2.5,-1)', op: (x) => F.affine(x, 2.5, -1), f: (x) => 2.5 * x - 1, df: () => 2.5, ranges: [sym(3), sym(1e30)] },
  { name: 'scale(-1e-3)', op: (x) => F.scale(x, -1e-3), f: (x) => -1e-3 * x, df: () => -1e-3, ranges: [sym(3), sym(1e-30)] },
];

// powScalar, with the domain each exponent allows (negative bases only for integer exponents).
const POW: [number, [number, number][]][] = [
  [2, [sym(3), sym(1e15)]],
  [3, [sym(3), sym(1e10)]],
  [-1, [pos(5), sym(5)]],
  [-2, [pos(5)]],
  [0.5, [pos(5), pos(1e30)]],
  [1.5, [pos(5), pos(1e20)]],
  [-0.5, [pos(5)]],
  [1, [sym(3)]],
  [0, [sym(3)]],
];

// Shapes not multiples of the 256-wide workgroup, size-1 dims, rank 0.
const UNARY_SHAPES: number[][] = [[257], [3, 1, 5], [1], [], [2, 3, 4, 5]];

function keepAway(data: Float32Array, from: number[], gap: number): Float32Array {
  // Keep inputs off the kinks of non-smooth ops, where the reference derivative is a convention.
  return data.map((v) => (from.some((k) => Math.abs(v - k) < gap) ? v + 3 * gap : v));
}

async function checkUnary(name: string, op: (x: Tensor) => Tensor, f: (x: number) => number, df: (x: number) => number, ranges: [number, number][], seed: number) {
  for (const [ri, [lo, hi]] of ranges.entries()) {
    for (const [si, shape] of (ri === 0 ? UNARY_SHAPES : [[67, 3]]).entries()) {
      const x = keepAway(randArr(shape, seed + 31 * ri + si, lo, hi), [-0.5, 0.7, 0.2, -0.1], 1e-3);
      const r = await runGrad([{ data: x, shape }], op);
      const what = `${name} ${JSON.stringify(shape)} in [${lo},${hi})`;
      expect(r.shape, what).toEqual(shape);
      expectClose(r.out, Float64Array.from(x, f), TOL, `${what} forward`);
      expectClose(r.grads[0], Float64Array.from(x, (v, i) => r.w[i] * df(v)), TOL, `${what} backward`);
    }
  }
}

// Every case runs with both kernel profiles: on 'cpu' (software adapters) same-shape and
// one-value operands take elementwise-vec4.wgsl, on 'gpu' everything takes elementwise.wgsl.
forEachKernelProfile((profile) => `${profile} kernel profile`, suite);

function suite() {
  describe('unary ops', () => {
    for (const [k, c] of UNARY.entries()) {
      it(`${c.name}: forward and backward over normal, large and tiny inputs`, async () => {
        await checkUnary(c.name, c.op, c.f, c.df, c.ranges, 100 * k);
      });
    }

    it('powScalar for integer, fractional, negative and zero exponents', async () => {
      for (const [k, [e, ranges]] of POW.entries()) {
        const f = (x: number) => (e === 0 ? 1 : x ** e);
        const df = (x: number) => (e === 0 ? 0 : e * x ** (e - 1));
        await checkUnary(`pow ${e}`, (x) => F.powScalar(x, e), f, df, ranges, 5000 + 100 * k);
      }
    });

    it('x^0 = 1 and 0^e follow PyTorch (0^0 = 1, 0^-1 = inf)', async () => {
      const x = Tensor.from([0, -2, 3], [3]);
      expect(Array.from(await tidy(() => F.powScalar(x, 0)).toArray())).toEqual([1, 1, 1]);
      const inv = await tidy(() => F.powScalar(x, -1)).toArray();
      expect(inv[0]).toBe(Infinity);
      expectClose(inv.slice(1), [-0.5, 1 / 3], 1e-6, '[-2, 3]^-1');
      expect(Array.from(await tidy(() => F.powScalar(x, 3)).toArray())).toEqual([0, -8, 27]);
    });

    it('saturating ops stay finite at extreme inputs (no NaN from inf/inf)', async () => {
      const xs = [-3e38, -1e4, -100, -20, 0, 20, 100, 1e4, 3e38];
      const x = Tensor.from(xs, [xs.length]);
      for (const [name, op, f] of [
        ['tanh', F.tanh, Math.tanh],
        ['sigmoid', F.sigmoid, sigmoid],
        ['gelu', F.gelu, (v: number) => (v < -10 ? 0 : v > 10 ? v : gelu(v))],
      ] as const) {
        const got = await tidy(() => op(x)).toArray();
        expectClose(got, xs.map(f), TOL, `${name} at extremes`);
      }
    });

    it('erf reference agrees with known values (sanity of the float64 reference itself)', () => {
      expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
      expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 14);
      expect(erf(4)).toBeCloseTo(0.9999999845827421, 14);
    });
  });

  // ------------------------------------------------------------------ binary

  // Broadcasting on every axis, leading-rank broadcasting, rank 0, rank 5, sizes past one workgroup.
  const PAIRS: [number[], number[]][] = [
    [[3, 5], [3, 5]],
    [[2, 3, 4], [1, 3, 4]],
    [[2, 3, 4], [2, 1, 4]],
    [[2, 3, 4], [2, 3, 1]],
    [[2, 1, 4], [1, 3, 1]],
    [[17, 19], [19]],
    [[1], [5, 3]],
    [[], [2, 3]],
    [[3, 1, 2, 1, 2], [1, 4, 1, 3, 1]],
    [[300], [300]],
    [[2, 2, 2, 2, 2, 2, 2, 3], [2, 1, 2, 1, 2, 1, 2, 1]],
  ];

  interface BinaryCase {
    name: string;
    op: (a: Tensor, b: Tensor) => Tensor;
    f: (a: number, b: number) => number;
    da: (a: number, b: number) => number;
    db: (a: number, b: number) => number;
    /** Ranges for a and b: the usual one, then mixed large / tiny magnitudes. */
    ranges: [[number, number], [number, number]][];
  }

  // b in ±[0.5, 2) for div: away from zero.
  const awayFromZero = (v: number) => (v < 0 ? v - 0.5 : v + 0.5);

  const BINARY: BinaryCase[] = [
    { name: 'add', op: F.add, f: (a, b) => a + b, da: () => 1, db: () => 1, ranges: [[sym(2), sym(2)], [sym(1e20), sym(1e-20)]] },
    { name: 'sub', op: F.sub, f: (a, b) => a - b, da: () => 1, db: () => -1, ranges: [[sym(2), sym(2)], [sym(1e-20), sym(1e20)]] },
    { name: 'mul', op: F.mul, f: (a, b) => a * b, da: (_, b) => b, db: (a) => a, ranges: [[sym(2), sym(2)], [sym(1e18), sym(1e-18)]] },
    { name: 'div', op: F.div, f: (a, b) => a / b, da: (_, b) => 1 / b, db: (a, b) => -a / (b * b), ranges: [[sym(2), sym(1.5)], [sym(1e15), sym(1.5)]] },
    { name: 'maximum', op: F.maximum, f: Math.max, da: (a, b) => (a >= b ? 1 : 0), db: (a, b) => (a >= b ? 0 : 1), ranges: [[sym(2), sym(2)], [sym(1e30), sym(1e30)]] },
    { name: 'minimum', op: F.minimum, f: Math.min, da: (a, b) => (a <= b ? 1 : 0), db: (a, b) => (a <= b ? 0 : 1), ranges: [[sym(2), sym(2)], [sym(1e-30), sym(1e-30)]] },
  ];

  async function checkBinary(c: BinaryCase, shapes: [number[], number[]][], seed: number) {
    for (const [ri, [ra, rb]] of c.ranges.entries()) {
      for (const [pi, [sa, sb]] of shapes.entries()) {
        const a = randArr(sa, seed + 17 * pi + ri, ...ra);
        let b = randArr(sb, seed + 17 * pi + ri + 1000, ...rb);
        if (c.name === 'div') b = b.map(awayFromZero);
        for (const [x, y, swapped] of [[a, b, false], [b, a, true]] as const) {
          const [shx, shy] = swapped ? [sb, sa] : [sa, sb];
          const r = await runGrad([{ data: x, shape: shx }, { data: y, shape: shy }], c.op, seed + pi);
          const what = `${c.name} ${JSON.stringify(shx)} ${JSON.stringify(shy)} range ${ri}`;
          const ref = mapRef([shx, shy], [x, y], c.f);
          expect(r.shape, what).toEqual(ref.shape);
          expectClose(r.out, ref.data, TOL, `${what} forward`);
          const ga = mapRef([ref.shape, shx, shy], [r.w, x, y], (w, u, v) => w * c.da(u, v)).data;
          const gb = mapRef([ref.shape, shx, shy], [r.w, x, y], (w, u, v) => w * c.db(u, v)).data;
          expectClose(r.grads[0], sumToRef(ga, ref.shape, shx), TOL, `${what} d/da`, absSumScale(ga, ref.shape, shx));
          expectClose(r.grads[1], sumToRef(gb, ref.shape, shy), TOL, `${what} d/db`, absSumScale(gb, ref.shape, shy));
        }
      }
    }
  }

  describe('binary ops with broadcasting', () => {
    for (const [k, c] of BINARY.entries()) {
      it(`${c.name}: forward and both gradients, broadcasting on every axis, both operand orders`, async () => {
        await checkBinary(c, PAIRS, 700 * k);
      });
    }

    it('scalar operands: add/sub/mul/div with a number on either side', async () => {
      const shape = [4, 33];
      const x = randArr(shape, 11, 0.5, 2);
      const cases: [string, (t: Tensor) => Tensor, (v: number) => number, (v: number) => number][] = [
        ['x + 2', (t) => F.add(t, 2), (v) => v + 2, () => 1],
        ['2 + x', (t) => F.add(2, t), (v) => v + 2, () => 1],
        ['x - 3', (t) => F.sub(t, 3), (v) => v - 3, () => 1],
        ['3 - x', (t) => F.sub(3, t), (v) => 3 - v, () => -1],
        ['x * -4', (t) => F.mul(t, -4), (v) => -4 * v, () => -4],
        ['-4 * x', (t) => F.mul(-4, t), (v) => -4 * v, () => -4],
        ['x / 8', (t) => F.div(t, 8), (v) => v / 8, () => 1 / 8],
        ['2 / x', (t) => F.div(2, t), (v) => 2 / v, (v) => -2 / (v * v)],
      ];
      for (const [what, op, f, df] of cases) {
        const r = await runGrad([{ data: x, shape }], op);
        expectClose(r.out, Float64Array.from(x, f), TOL, `${what} forward`);
        expectClose(r.grads[0], Float64Array.from(x, (v, i) => r.w[i] * df(v)), TOL, `${what} backward`);
      }
    });

    it('a gradient flows only to the inputs that require it', async () => {
      const a = [1, 2, 3];
      const r = await runGrad([{ data: a, shape: [3] }, { data: [4, 5, 6], shape: [3], noGrad: true }], F.mul);
      expect(r.grads[1]).toBeNull();
      expectClose(r.grads[0], [4, 5, 6].map((v, i) => v * r.w[i]), TOL, 'mul d/da');
    });

    it('comparisons gt / eq / gt-scalar broadcast and return 0/1', async () => {
      const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = Tensor.from([2, 2, 7], [3]);
      const [gt, eq, gts] = tidy(() => [F.gt(a, b), F.eq(a, b), F.gt(a, 3.5)]);
      expect(Array.from(await gt.toArray())).toEqual([0, 0, 0, 1, 1, 0]);
      expect(Array.from(await eq.toArray())).toEqual([0, 1, 0, 0, 0, 0]);
      expect(Array.from(await gts.toArray())).toEqual([0, 0, 0, 1, 1, 1]);
    });
  });

  describe('where and expand', () => {
    const TRIPLES: [number[], number[], number[]][] = [
      [[3, 4], [3, 4], [3, 4]],
      [[3, 1], [1, 4], [4]],
      [[2, 1, 5], [3, 1], [2, 3, 1]],
      [[1], [6, 7], [7]],
      [[260], [260], [1]],
    ];

    it('where(cond, a, b): forward and gradients with all three broadcast', async () => {
      for (const [k, [sc, sa, sb]] of TRIPLES.entries()) {
        const cond = randArr(sc, 50 + k).map((v) => (v > 0 ? 1 : 0));
        const a = randArr(sa, 60 + k);
        const b = randArr(sb, 70 + k);
        const inputs: Input[] = [{ data: a, shape: sa }, { data: b, shape: sb }];
        const condT = tidy(() => Tensor.from(cond, sc));
        const r = await runGrad(inputs, (ta, tb) => F.where(condT, ta, tb), k);
        condT.release();
        const ref = mapRef([sc, sa, sb], [cond, a, b], (c, u, v) => (c !== 0 ? u : v));
        const what = `where ${JSON.stringify([sc, sa, sb])}`;
        expect(r.shape, what).toEqual(ref.shape);
        expectClose(r.out, ref.data, 0, `${what} forward`);
        const ga = mapRef([ref.shape, sc], [r.w, cond], (w, c) => (c !== 0 ? w : 0)).data;
        const gb = mapRef([ref.shape, sc], [r.w, cond], (w, c) => (c !== 0 ? 0 : w)).data;
        expectClose(r.grads[0], sumToRef(ga, ref.shape, sa), TOL, `${what} d/da`, absSumScale(ga, ref.shape, sa));
        expectClose(r.grads[1], sumToRef(gb, ref.shape, sb), TOL, `${what} d/db`, absSumScale(gb, ref.shape, sb));
      }
    });

    it('addcmul(x, y, s) = x + y·s: forward and all three gradients, broadcast as a residual and its drop-path mask too', async () => {
      const cases: [number[], number[], number[]][] = [...TRIPLES, [[4, 6, 2, 4], [4, 6, 2, 4], [4, 1, 1, 1]], [[2, 3, 5], [2, 3, 5], [2, 1, 1]]];
      for (const [k, [sx, sy, ss]] of cases.entries()) {
        const [x, y, sc] = [randArr(sx, 80 + k), randArr(sy, 90 + k), randArr(ss, 100 + k)];
        const r = await runGrad([{ data: x, shape: sx }, { data: y, shape: sy }, { data: sc, shape: ss }], (tx, ty, ts) => F.addcmul(tx, ty, ts), k);
        const ref = mapRef([sx, sy, ss], [x, y, sc], (u, v, w) => u + v * w);
        const what = `addcmul ${JSON.stringify([sx, sy, ss])}`;
        expect(r.shape, what).toEqual(ref.shape);
        expectClose(r.out, ref.data, TOL, `${what} forward`);
        const gy = mapRef([ref.shape, ss], [r.w, sc], (g, w) => g * w).data;
        const gs = mapRef([ref.shape, sy], [r.w, y], (g, v) => g * v).data;
        expectClose(r.grads[0], sumToRef(r.w, ref.shape, sx), TOL, `${what} d/dx`, absSumScale(r.w, ref.shape, sx));
        expectClose(r.grads[1], sumToRef(gy, ref.shape, sy), TOL, `${what} d/dy`, absSumScale(gy, ref.shape, sy));
        expectClose(r.grads[2], sumToRef(gs, ref.shape, ss), TOL, `${what} d/ds`, absSumScale(gs, ref.shape, ss));
      }
    });

    it('where with scalar branches', async () => {
      const x = randArr([5, 6], 3);
      const r = await runGrad([{ data: x, shape: [5, 6] }], (t) => F.where(F.gt(t, 0), t, -2));
      expectClose(r.out, Float64Array.from(x, (v) => (v > 0 ? v : -2)), 0, 'where(x>0, x, -2)');
      expectClose(r.grads[0], Float64Array.from(x, (v, i) => (v > 0 ? r.w[i] : 0)), TOL, 'where(x>0, x, -2) backward');
      const c = await tidy(() => F.where(Tensor.from([1, 0, 1], [3]), 5, 7)).toArray();
      expect(Array.from(c)).toEqual([5, 7, 5]);
    });

    it('expand to every broadcastable target; the gradient sums back', async () => {
      const cases: [number[], number[]][] = [
        [[3, 1], [3, 5]],
        [[1, 4], [6, 4]],
        [[4], [2, 3, 4]],
        [[2, 1, 3], [5, 2, 7, 3]],
        [[1], [300]],
        [[], [2, 2]],
        [[3, 4], [3, 4]],
      ];
      for (const [k, [from, to]] of cases.entries()) {
        const x = randArr(from, 90 + k);
        const r = await runGrad([{ data: x, shape: from }], (t) => F.expand(t, to));
        const map = expandMap(from, to);
        const what = `expand ${JSON.stringify(from)} → ${JSON.stringify(to)}`;
        expect(r.shape, what).toEqual(to);
        expectClose(r.out, gatherRef(x, map), 0, `${what} forward`);
        expectClose(r.grads[0], scatterRef(r.w, map, numel(from)), TOL, `${what} backward`, absSumScale(r.w, to, from));
      }
    });
  });

  describe('elementwise plumbing', () => {
    it('ops do not record a graph under noGrad, and do with it', async () => {
      const x = Tensor.from([1, 2], [2]).param('x');
      const [y, z] = tidy(() => [noGrad(() => F.exp(x)), F.exp(x)]);
      expect(y.requiresGrad).toBe(false);
      expect(y.node).toBeNull();
      expect(z.requiresGrad).toBe(true);
      expect(z.node?.op).toBe('exp');
      for (const t of [x, y, z]) t.release();
    });
  });

  describe('same-shape and one-value operands (elementwise-vec4.wgsl on cpu)', () => {
    // Sizes around the 4-wide vectors (tails of 1–3), one invocation's 4 vec4s (16) and one
    // workgroup's 1024 values; one-value operands broadcast from either side and for where.
    const SIZES = [1, 2, 3, 4, 5, 7, 15, 16, 17, 1023, 1024, 1025, 4099];
    it('add, mul, gelu, geluGrad-backed gelu backward over every size', async () => {
      for (const [k, n] of SIZES.entries()) {
        const a = randArr([n], 400 + k);
        const b = randArr([n], 500 + k);
        const add = await runGrad([{ data: a, shape: [n] }, { data: b, shape: [n] }], F.add, k);
        expectClose(add.out, Float64Array.from(a, (v, i) => v + b[i]), TOL, `add n=${n}`);
        expectClose(add.grads[1], add.w, TOL, `add n=${n} d/db`);
        const mul = await runGrad([{ data: a, shape: [n] }, { data: b, shape: [n] }], F.mul, k);
        expectClose(mul.out, Float64Array.from(a, (v, i) => v * b[i]), TOL, `mul n=${n}`);
        expectClose(mul.grads[0], Float64Array.from(b, (v, i) => v * mul.w[i]), TOL, `mul n=${n} d/da`);
        const g = await runGrad([{ data: a, shape: [n] }], F.gelu, k);
        expectClose(g.out, Float64Array.from(a, gelu), TOL, `gelu n=${n}`);
        expectClose(g.grads[0], Float64Array.from(a, (v, i) => g.w[i] * geluGrad(v)), TOL, `gelu n=${n} backward`);
      }
    });
    it('one-value operands: [n] with [1] and [] on either side, where with one-value branches', async () => {
      for (const n of [1, 6, 1025]) {
        const a = randArr([n], 600 + n);
        for (const one of [[1], []]) {
          const s = randArr(one, 700 + n);
          const r = await runGrad([{ data: a, shape: [n] }, { data: s, shape: one }], F.sub, n);
          expectClose(r.out, Float64Array.from(a, (v) => v - s[0]), TOL, `sub [${n}] ${JSON.stringify(one)}`);
          expectClose(r.grads[1], [-r.w.reduce((x, y) => x + y, 0)], TOL, `sub [${n}] ${JSON.stringify(one)} d/db`, r.w.reduce((x, y) => x + Math.abs(y), 0));
          const q = await runGrad([{ data: s, shape: one }, { data: a, shape: [n] }], F.div, n);
          expectClose(q.out, Float64Array.from(a, (v) => s[0] / v), TOL, `div ${JSON.stringify(one)} [${n}]`);
        }
        const cond = randArr([n], 800 + n).map((v) => (v > 0 ? 1 : 0));
        const w = await tidy(() => F.where(Tensor.from(cond, [n]), Tensor.from(a, [n]), -3)).toArray();
        expectClose(w, Float64Array.from(a, (v, i) => (cond[i] ? v : -3)), 0, `where [${n}] a -3`);
      }
    });
    it('broadcasts whose innermost merged axis is a multiple of 4 (the vec4 broadcast layout on cpu), and ones that are not', async () => {
      const pairs: [number[], number[]][] = [
        [[5, 8], [8]],
        [[2, 3, 8], [2, 1, 8]],
        [[4, 12], [4, 1]],
        [[3, 2, 4], [2, 4]],
        [[2, 1, 4], [1, 3, 4]],
        [[3, 4, 4], [3, 1, 1]],
        [[1], [6, 4]],
        [[2, 6], [2, 1]],
        [[7, 5], [5]],
      ];
      for (const [k, c] of BINARY.entries()) await checkBinary(c, pairs, 3000 + 100 * k);
    });
    it('same size, different shapes (only size-1 axes differ): the element order is the same', async () => {
      const a = randArr([3, 1, 5], 900);
      const b = randArr([1, 15], 901);
      const r = await tidy(() => F.add(Tensor.from(a, [3, 1, 5]), Tensor.from(b, [1, 15]).view([3, 1, 5]))).toArray();
      expectClose(r, Float64Array.from(a, (v, i) => v + b[i]), TOL, 'add [3,1,5] [3,1,5]');
    });
  });
}
