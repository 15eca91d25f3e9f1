// The region models' ops against float64 references written here from their definitions: ROIAlign
// (torchvision roi_align semantics, forward and backward, plus central finite differences), the
// fixed-graph edge gather and scatter-mean/sum (forward, backward, finite differences, bitwise
// determinism), and max over the instance axis with its argmax backward.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy } from '../kernels/index.js';
import { FixedGraph, edgeGather, scatterEdges, maxOverAxis } from '../kernels/graph.js';
import { roiAlign, planRoiAlign } from '../kernels/roi-align.js';
import { randArr, rng, runGrad, expectClose, finiteDiff, type Arr } from './ref.js';

beforeAll(async () => {
  await init();
});

// ---------------------------------------------------------------- ROIAlign reference (float64)

/** torchvision's bilinear_interpolate for one plane. */
function bilinear(plane: (y: number, x: number) => number, H: number, W: number, y: number, x: number): number {
  if (y < -1 || y > H || x < -1 || x > W) return 0;
  y = Math.max(y, 0);
  x = Math.max(x, 0);
  let yl = Math.floor(y);
  let xl = Math.floor(x);
  let yh = yl + 1;
  let xh = xl + 1;
  if (yl >= H - 1) { yh = yl = H - 1; y = yl; }
  if (xl >= W - 1) { xh = xl = W - 1; x = xl; }
  const ly = y - yl;
  const lx = x - xl;
  return (1 - ly) * (1 - lx) * plane(yl, xl) + (1 - ly) * lx * plane(yl, xh) + ly * (1 - lx) * plane(yh, xl) + ly * lx * plane(yh, xh);
}

function roiAlignRef(feat: ArrayLike<number>, [B, C, H, W]: number[], boxes: number[][], P: number, scale: number, sr: number, aligned: boolean): Arr {
  void B;
  const out = new Float64Array(boxes.length * C * P * P);
  boxes.forEach(([b, ...xy], r) => {
    const off = aligned ? 0.5 : 0;
    const [x0, y0, x1, y1] = xy.map((v) => v * scale - off);
    const rw = aligned ? x1 - x0 : Math.max(x1 - x0, 1);
    const rh = aligned ? y1 - y0 : Math.max(y1 - y0, 1);
    const gh = sr > 0 ? sr : Math.ceil(rh / P);
    const gw = sr > 0 ? sr : Math.ceil(rw / P);
    const count = Math.max(gh * gw, 1);
    for (let c = 0; c < C; c++) {
      const plane = (y: number, x: number) => feat[((b * C + c) * H + y) * W + x];
      for (let ph = 0; ph < P; ph++)
        for (let pw = 0; pw < P; pw++) {
          let s = 0;
          for (let iy = 0; iy < gh; iy++)
            for (let ix = 0; ix < gw; ix++) {
              const y = y0 + ph * (rh / P) + ((iy + 0.5) * (rh / P)) / gh;
              const x = x0 + pw * (rw / P) + ((ix + 0.5) * (rw / P)) / gw;
              s += bilinear(plane, H, W, y, x);
            }
          out[((r * C + c) * P + ph) * P + pw] = s / count;
        }
    }
  });
  return out;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

describe('roiAlign', () => {
  const CASES = [
    { shape: [2, 3, 6, 7], scale: 0.25, P: 2, sr: 2, aligned: true },
    { shape: [1, 2, 5, 5], scale: 1, P: 3, sr: 0, aligned: true },
    { shape: [2, 4, 4, 6], scale: 0.5, P: 1, sr: 0, aligned: false },
    { shape: [3, 5, 3, 3], scale: 1 / 32, P: 2, sr: 2, aligned: true },
  ];
  it('forward and backward match the float64 torchvision formula and finite differences', async () => {
    for (const [k, c] of CASES.entries()) {
      const [B, , H, W] = c.shape;
      const r = rng(100 + k);
      const boxes: number[][] = [];
      const side = (n: number) => n / c.scale;
      for (let i = 0; i < 7; i++) {
        const x0 = (r() * 1.3 - 0.2) * side(W);
        const y0 = (r() * 1.3 - 0.2) * side(H);
        boxes.push([Math.floor(r() * B), x0, y0, x0 + r() * side(W) * 0.8, y0 + r() * side(H) * 0.8]);
      }
      boxes.push([B - 1, 0, 0, side(W), side(H)]); // the whole map
      boxes.push([0, side(W) * 0.3, side(H) * 0.3, side(W) * 0.3, side(H) * 0.3]); // empty box
      const feat = randArr(c.shape, 10 + k);
      const o = { pooled: c.P, spatialScale: c.scale, samplingRatio: c.sr, aligned: c.aligned };
      const run = await runGrad([{ data: feat, shape: c.shape }], (f) => roiAlign(f, boxes.flat(), o), 20 + k);
      const want = roiAlignRef(feat, c.shape, boxes, c.P, c.scale, c.sr, c.aligned);
      expect(run.shape).toEqual([boxes.length, c.shape[1], c.P, c.P]);
      expectClose(run.out, want, 1e-5, `roiAlign case ${k} forward`);
      const [fd] = finiteDiff(([x]) => dot(roiAlignRef(x, c.shape, boxes, c.P, c.scale, c.sr, c.aligned), run.w), [feat]);
      expectClose(run.grads[0], fd, 1e-5, `roiAlign case ${k} backward vs finite differences`);
    }
  });

  it('refuses bad boxes and a plan made for another map', () => {
    tidy(() => {
      const f = Tensor.from(randArr([1, 1, 4, 4], 1), [1, 1, 4, 4]);
      expect(() => roiAlign(f, [1, 0, 0, 2, 2], { pooled: 1, spatialScale: 1 })).toThrow(/batch index 1/);
      expect(() => roiAlign(f, [0, 0, 0, 2], { pooled: 1, spatialScale: 1 })).toThrow(/\[R, 5\]/);
      const plan = planRoiAlign([0, 0, 0, 2, 2], 1, 5, 5, { pooled: 1, spatialScale: 1 });
      expect(() => roiAlign(f, plan)).toThrow(/plan made for/);
    });
  });
});

// ---------------------------------------------------------------- fixed-graph message passing

function randomGraph(E: number, ns: number, nd: number, seed: number) {
  const r = rng(seed);
  const src = Uint32Array.from({ length: E }, () => Math.floor(r() * ns));
  const dst = Uint32Array.from({ length: E }, () => Math.floor(r() * (nd - 1))); // node nd−1 gets no edge
  return { src, dst };
}

function edgeGatherRef(xs: ArrayLike<number>, xd: ArrayLike<number> | null, xe: ArrayLike<number> | null, src: Uint32Array, dst: Uint32Array, B: number, ns: number, nd: number, C: number): Arr {
  const E = src.length;
  const out = new Float64Array(B * E * C);
  for (let b = 0; b < B; b++)
    for (let e = 0; e < E; e++)
      for (let c = 0; c < C; c++) {
        let v = xs[(b * ns + src[e]) * C + c];
        if (xd) v += xd[(b * nd + dst[e]) * C + c];
        if (xe) v += xe[(b * E + e) * C + c];
        out[(b * E + e) * C + c] = v;
      }
  return out;
}

function scatterRef(x: ArrayLike<number>, node: Uint32Array, n: number, B: number, C: number, mean: boolean): Arr {
  const E = node.length;
  const out = new Float64Array(B * n * C);
  const deg = new Float64Array(n);
  for (const v of node) deg[v]++;
  for (let b = 0; b < B; b++)
    for (let e = 0; e < E; e++)
      for (let c = 0; c < C; c++) out[(b * n + node[e]) * C + c] += x[(b * E + e) * C + c] / (mean ? deg[node[e]] : 1);
  return out;
}

describe('fixed-graph ops', () => {
  const [B, ns, nd, E] = [2, 5, 4, 17];
  const { src, dst } = randomGraph(E, ns, nd, 3);

  // C = 3 walks the channels one by one, C = 8 as vec4s.
  for (const C of [3, 8]) {
  it(`edgeGather, ${C} channels: xs[src] (+ xd[dst]) (+ xe) and its scatter-sum gradients`, async () => {
    const g = new FixedGraph(src, dst, ns, nd, 'test');
    try {
      const xs = randArr([B, ns, C], 1);
      const xd = randArr([B, nd, C], 2);
      const xe = randArr([B, E, C], 3);
      for (const [useD, useE] of [[true, true], [true, false], [false, true], [false, false]]) {
        const inputs = [{ data: xs, shape: [B, ns, C] }, ...(useD ? [{ data: xd, shape: [B, nd, C] }] : []), ...(useE ? [{ data: xe, shape: [B, E, C] }] : [])];
        const run = await runGrad(inputs, (...t) => edgeGather(g, t[0], useD ? t[1] : null, useE ? t[useD ? 2 : 1] : null));
        const ref = (v: Arr[]) => edgeGatherRef(v[0], useD ? v[1] : null, useE ? v[useD ? 2 : 1] : null, src, dst, B, ns, nd, C);
        const what = `edgeGather d=${useD} e=${useE}`;
        expectClose(run.out, ref(inputs.map((i) => Float64Array.from(i.data))), 1e-6, what);
        const fd = finiteDiff((v) => dot(ref(v), run.w), inputs.map((i) => i.data));
        fd.forEach((want, i) => expectClose(run.grads[i], want, 1e-5, `${what} grad ${i}`));
      }
    } finally {
      g.release();
    }
  });

  it(`scatter-mean and scatter-sum onto either side, ${C} channels, with finite-difference gradients and a node without edges`, async () => {
    const g = new FixedGraph(src, dst, ns, nd, 'test');
    try {
      const x = randArr([B, E, C], 9);
      for (const side of ['src', 'dst'] as const) {
        for (const reduce of ['mean', 'sum'] as const) {
          const node = side === 'src' ? src : dst;
          const n = side === 'src' ? ns : nd;
          const run = await runGrad([{ data: x, shape: [B, E, C] }], (t) => scatterEdges(t, g, side, reduce));
          const ref = (v: ArrayLike<number>) => scatterRef(v, node, n, B, C, reduce === 'mean');
          expect(run.shape).toEqual([B, n, C]);
          expectClose(run.out, ref(x), 1e-6, `scatter ${reduce} ${side}`);
          const [fd] = finiteDiff(([v]) => dot(ref(v), run.w), [x]);
          expectClose(run.grads[0], fd, 1e-5, `scatter ${reduce} ${side} grad`);
        }
      }
      // dst node nd − 1 has no edge: mean 0.
      const run = await runGrad([{ data: x, shape: [B, E, C] }], (t) => scatterEdges(t, g, 'dst', 'mean'));
      expect(Array.from(run.out.slice((nd - 1) * C, nd * C))).toEqual(new Array(C).fill(0));
    } finally {
      g.release();
    }
  });
  }

  it('is bitwise deterministic across runs (fixed summation order)', async () => {
    const big = randomGraph(3000, 7, 6, 11);
    const g = new FixedGraph(big.src, big.dst, 7, 6, 'big');
    try {
      const x = randArr([2, 3000, 5], 4, -100, 100);
      const once = async () => {
        const t = Tensor.from(x, [2, 3000, 5]);
        const y = scatterEdges(t, g, 'dst', 'mean');
        const out = await y.toArray();
        t.release();
        y.release();
        return out;
      };
      const a = await once();
      const b = await once();
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    } finally {
      g.release();
    }
  });

  it('refuses edges outside the node sets and mis-shaped features', () => {
    expect(() => new FixedGraph(Uint32Array.of(0, 3), Uint32Array.of(0, 1), 3, 2)).toThrow(/edge 1/);
    const g = new FixedGraph(src, dst, ns, nd, 'test');
    try {
      tidy(() => {
        expect(() => edgeGather(g, Tensor.from(new Float32Array(B * 4 * 3), [B, 4, 3]), null, null)).toThrow(/source features/);
        expect(() => scatterEdges(Tensor.from(new Float32Array(B * 3 * 3), [B, 3, 3]), g, 'dst')).toThrow(/edge features/);
      });
    } finally {
      g.release();
    }
  });
});

describe('maxOverAxis (max over instances)', () => {
  it('takes the best instance per label; the gradient goes to the first maximising instance', async () => {
    const [B, N, S] = [3, 6, 4];
    const x = randArr([B, N, S], 5);
    x[2 * S + 1] = x[4 * S + 1] = 5; // a tie in (b 0, label 1): the first (instance 2) gets the gradient
    const run = await runGrad([{ data: x, shape: [B, N, S] }], (t) => maxOverAxis(t, 1).values);
    const want = new Float64Array(B * S);
    const grad = new Float64Array(B * N * S);
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++) {
        let best = 0;
        for (let n = 1; n < N; n++) if (x[(b * N + n) * S + s] > x[(b * N + best) * S + s]) best = n;
        want[b * S + s] = x[(b * N + best) * S + s];
        grad[(b * N + best) * S + s] = run.w[b * S + s];
      }
    expectClose(run.out, want, 0, 'max over instances');
    expectClose(run.grads[0], grad, 0, 'max over instances grad');
    expect(run.grads[0]![4 * S + 1]).toBe(0);
  });
});
