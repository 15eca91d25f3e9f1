// IA-GCN and GM-MLIC (models/ia-gcn.ts, models/gm-mlic.ts): each head's forward, loss and backward
// on a small trunk map against a plain float64 CPU implementation written here from the models'
// definitions (the concatenated MLP inputs, not the engine's split first layer; explicit edge
// lists), the instance sources and box files, the factory names, checkpoint round trip, and
// learning end to end on a small generated set.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import sharp from 'sharp';
import { main } from '../train/cli.js';
import { readSafetensors } from '../train/safetensors-file.js';
import { gloveTable } from '../train/label-embeddings.js';
import { loadPretrainedBackbone } from '../models/pretrained.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Tensor, F, backward, tidy, noGrad, keep, Rng } from '../kernels/index.js';
import { buildModel, MODEL_NAMES, inputSizeProblem } from '../models/factory.js';
import { GmMlic, weightedBce } from '../models/gm-mlic.js';
import { IaGcn, iaGcnLoss } from '../models/ia-gcn.js';
import { parseRegionModel, batchBoxes, gridBoxes, REGION_MODEL_NAMES } from '../models/regions.js';
import { readBoxFile } from '../train/box-file.js';
import { labelCorrelation } from '../models/ml-gcn.js';
import type { Module } from '../models/module.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { PRESETS } from '../train/presets.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { loadModelForInference } from '../train/inference.js';
import { syntheticLabels, SYNTHETIC_CLASSES } from '../train/data/synthetic.js';
import { randArr, rng, expectClose, type Arr } from './ref.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-regions-'));

beforeAll(async () => {
  await init();
});

// ------------------------------------------------------------------ float64 building blocks

type Params = Map<string, { shape: number[]; data: Arr }>;

async function readParams(m: Module): Promise<Params> {
  const out: Params = new Map();
  for (const [n, t] of [...m.namedParameters(), ...m.namedBuffers()]) out.set(n, { shape: [...t.shape], data: Float64Array.from(await t.toArray()) });
  return out;
}

const get = (P: Params, k: string) => {
  const v = P.get(k);
  if (!v) throw new Error(`no parameter ${k}`);
  return v;
};

/** y = W x + b for W [out, in]. */
function lin(W: { shape: number[]; data: Arr }, b: Arr | null, x: ArrayLike<number>): Arr {
  const [o, i] = W.shape;
  const y = new Float64Array(o);
  for (let r = 0; r < o; r++) {
    let s = b ? b[r] : 0;
    for (let c = 0; c < i; c++) s += W.data[r * i + c] * x[c];
    y[r] = s;
  }
  return y;
}

function layerNorm(x: Arr, g: Arr, b: Arr): Arr {
  const n = x.length;
  const mu = x.reduce((a, v) => a + v, 0) / n;
  const v = x.reduce((a, t) => a + (t - mu) ** 2, 0) / n;
  return x.map((t, i) => ((t - mu) / Math.sqrt(v + 1e-5)) * g[i] + b[i]);
}

const relu = (x: Arr) => x.map((v) => Math.max(v, 0));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const cat = (...xs: ArrayLike<number>[]) => Float64Array.from(xs.flatMap((x) => Array.from(x)));

/**
 * ML-SGM's MLP on the concatenated input x = [src; dst; edge]: the first weight is the column blocks
 * [fc1.weight | fc1.weight_dst | fc1.weight_edge] of one Linear, applied block by block.
 */
function mlp(P: Params, prefix: string, x: Arr): Arr {
  const parts = ['fc1.weight', 'fc1.weight_dst', 'fc1.weight_edge'].map((k) => P.get(`${prefix}.${k}`)).filter((v) => v !== undefined);
  const out = parts[0]!.shape[0];
  const h = Float64Array.from(get(P, `${prefix}.fc1.bias`).data);
  let o = 0;
  for (const p of parts) {
    const n = p!.shape[1];
    for (let r = 0; r < out; r++) {
      let s = 0;
      for (let c = 0; c < n; c++) s += p!.data[r * n + c] * x[o + c];
      h[r] += s;
    }
    o += n;
  }
  if (o !== x.length) throw new Error(`${prefix}: input of ${x.length}, weights for ${o}`);
  let y = layerNorm(relu(h), get(P, `${prefix}.ln1.weight`).data, get(P, `${prefix}.ln1.bias`).data);
  y = lin(get(P, `${prefix}.fc2.weight`), get(P, `${prefix}.fc2.bias`).data, y);
  return layerNorm(relu(y), get(P, `${prefix}.ln2.weight`).data, get(P, `${prefix}.ln2.bias`).data);
}

/** Mean of edge messages onto nodes (0 without edges). */
function meanOnto(n: number, node: number[], msgs: Arr[]): Arr[] {
  const dim = msgs[0].length;
  const acc = Array.from({ length: n }, () => new Float64Array(dim));
  const deg = new Float64Array(n);
  node.forEach((v, e) => {
    deg[v]++;
    for (let c = 0; c < dim; c++) acc[v][c] += msgs[e][c];
  });
  return acc.map((a, i) => a.map((v) => (deg[i] ? v / deg[i] : 0)));
}

function bceTerm(x: number, t: number): number {
  // −[t log σ(x) + (1 − t) log(1 − σ(x))]
  return Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
}

// ------------------------------------------------------------------ GM-MLIC reference (cells)

/** GM-MLIC on a trunk map; `residual`: the tiny trunk's residual block updates. */
function gmMlicRef(P: Params, x: ArrayLike<number>, [B, C, h, w]: number[], S: number, stride: number, target: ArrayLike<number>, residual = true) {
  const add = (old: Arr, y: Arr) => (residual ? old.map((v, i) => v + y[i]) : y);
  const Wc = get(P, 'proj.weight');
  const D = Wc.shape[0];
  const ho = Math.floor((h - 1) / stride) + 1;
  const wo = Math.floor((w - 1) / stride) + 1;
  const N = ho * wo;
  // conv 3×3, padding 1, no bias
  const conv = new Float64Array(B * D * N);
  for (let b = 0; b < B; b++)
    for (let d = 0; d < D; d++)
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let s = 0;
          for (let c = 0; c < C; c++)
            for (let ki = 0; ki < 3; ki++)
              for (let kj = 0; kj < 3; kj++) {
                const y = i * stride + ki - 1;
                const xx = j * stride + kj - 1;
                if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
                s += Wc.data[((d * C + c) * 3 + ki) * 3 + kj] * x[((b * C + c) * h + y) * w + xx];
              }
          conv[(b * D + d) * N + i * wo + j] = s;
        }
  // batch norm (training: batch statistics, biased variance), ReLU
  const g = get(P, 'proj_bn.weight').data;
  const beta = get(P, 'proj_bn.bias').data;
  for (let d = 0; d < D; d++) {
    let m = 0;
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) m += conv[(b * D + d) * N + n];
    m /= B * N;
    let v = 0;
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) v += (conv[(b * D + d) * N + n] - m) ** 2;
    v /= B * N;
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) {
      const k = (b * D + d) * N + n;
      conv[k] = Math.max(((conv[k] - m) / Math.sqrt(v + 1e-5)) * g[d] + beta[d], 0);
    }
  }
  // graphs: 4-neighbour cells (ML-SGM order), complete labels with self loops, instance × label
  const insS: number[] = [];
  const insD: number[] = [];
  for (let i = 0; i < ho; i++)
    for (let j = 0; j < wo; j++)
      for (const [a, c] of [[i + 1, j], [i - 1, j], [i, j + 1], [i, j - 1]]) {
        if (a >= 0 && a < ho && c >= 0 && c < wo) {
          insS.push(i * wo + j);
          insD.push(a * wo + c);
        }
      }
  const labS: number[] = [];
  const labD: number[] = [];
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) {
    labS.push(i);
    labD.push(j);
  }
  const table = get(P, 'label_embeddings');
  const u0 = Array.from({ length: S }, (_, s) => table.data.slice(s * table.shape[1], (s + 1) * table.shape[1]));
  const logits = new Float64Array(B * S);
  for (let b = 0; b < B; b++) {
    const v = Array.from({ length: N }, (_, n) => {
      const f = Float64Array.from({ length: D }, (_, d) => conv[(b * D + d) * N + n]);
      const norm = Math.max(Math.sqrt(f.reduce((a, t) => a + t * t, 0)), 1e-12);
      return f.map((t) => (t / norm) * Math.sqrt(D));
    });
    let ni = v.map((f) => mlp(P, 'red_node_ins', f));
    let ei = insS.map((s, e) => mlp(P, 'red_edge_ins', cat(v[s], v[insD[e]])));
    let nl = u0.map((f) => mlp(P, 'red_node_label', f));
    let el = labS.map((s, e) => mlp(P, 'red_edge_label', cat(u0[s], u0[labD[e]])));
    let ec: Arr[] = [];
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) ec.push(mlp(P, 'red_edge_cross', cat(v[n], u0[s])));
    for (const l of [0, 1]) {
      // ML-SGM's ConvLayer; the decoder reads only the assignment edges of the last one.
      const p = `layers.${l}`;
      ec = ec.map((f, e) => add(f, mlp(P, `${p}.edge_mlp_cross`, cat(ni[Math.floor(e / S)], nl[e % S], f))));
      if (l === 1) break;
      ei = insS.map((s, e) => add(ei[e], mlp(P, `${p}.edge_mlp_ins`, cat(ni[s], ni[insD[e]], ei[e]))));
      el = labS.map((s, e) => add(el[e], mlp(P, `${p}.edge_mlp_label`, cat(nl[s], nl[labD[e]], el[e]))));
      const innerI = meanOnto(N, insD, insS.map((s, e) => mlp(P, `${p}.node_mlp_ins_inner`, cat(ni[s], ei[e]))));
      const interI = meanOnto(N, ec.map((_, e) => Math.floor(e / S)), ec.map((f, e) => mlp(P, `${p}.node_mlp_ins_inter`, cat(nl[e % S], f))));
      ni = ni.map((f, n) => add(f, mlp(P, `${p}.node_mlp_ins`, cat(f, innerI[n], interI[n]))));
      const innerL = meanOnto(S, labD, labS.map((s, e) => mlp(P, `${p}.node_mlp_label_inner`, cat(nl[s], el[e]))));
      const interL = meanOnto(S, ec.map((_, e) => e % S), ec.map((f, e) => mlp(P, `${p}.node_mlp_label_inter`, cat(ni[Math.floor(e / S)], f))));
      nl = nl.map((f, s) => add(f, mlp(P, `${p}.node_mlp_label`, cat(f, innerL[s], interL[s]))));
    }
    for (let s = 0; s < S; s++) {
      let best = -Infinity;
      for (let n = 0; n < N; n++) {
        const z = lin(get(P, 'decoder_out.weight'), get(P, 'decoder_out.bias').data, mlp(P, 'decoder', ec[n * S + s]))[0];
        best = Math.max(best, z);
      }
      logits[b * S + s] = best;
    }
  }
  let loss = 0;
  logits.forEach((z, i) => (loss += bceTerm(z, target[i]) * (target[i] ? 0.8 : 0.2)));
  return { logits, loss: loss / logits.length };
}

// ------------------------------------------------------------------ IA-GCN reference (cells)

function iaGcnRef(P: Params, x: ArrayLike<number>, [B, C, h, w]: number[], S: number, eps: ArrayLike<number>, target: ArrayLike<number>) {
  const R = h * w;
  const logits = new Float64Array(B * S);
  let bce = 0;
  let rough = 0;
  let kl = 0;
  const adj = get(P, 'gcn.adj').data;
  const E = get(P, 'gcn.embeddings');
  const W1 = get(P, 'gcn.gc1.weight');
  const W2 = get(P, 'gcn.gc2.weight');
  const matmul = (a: Arr, b: Arr, M: number, K: number, N: number) => {
    const o = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) o[i * N + j] += a[i * K + k] * b[k * N + j];
    return o;
  };
  for (let b = 0; b < B; b++) {
    const cells = Array.from({ length: R }, (_, r) => Float64Array.from({ length: C }, (_, c) => x[(b * C + c) * R + r]));
    const gap = Float64Array.from({ length: C }, (_, c) => cells.reduce((a, f) => a + f[c], 0) / R);
    const yg = lin(get(P, 'global_fc.weight'), get(P, 'global_fc.bias').data, gap);
    const hs = cells.map((f) => relu(lin(get(P, 'roi_fc.weight'), get(P, 'roi_fc.bias').data, f)));
    const D = hs[0].length;
    const rs = hs.map((f) => lin(get(P, 'rough_fc.weight'), get(P, 'rough_fc.bias').data, f));
    const mv = hs.map((f) => lin(get(P, 'var_fc.weight'), get(P, 'var_fc.bias').data, f));
    const alpha = mv.map(([mu, lv], r) => sigmoid(mu + Math.exp(0.5 * lv) * eps[b * R + r]));
    mv.forEach(([mu, lv]) => (kl += 0.5 * (mu * mu + Math.exp(lv) - lv - 1)));
    const asum = alpha.reduce((a, v) => a + v, 0);
    const A = new Float64Array(S * S);
    for (let s = 0; s < S; s++) {
      const row = new Float64Array(S);
      for (let t = 0; t < S; t++) for (let r = 0; r < R; r++) row[t] += (alpha[r] * sigmoid(rs[r][s]) * sigmoid(rs[r][t])) / asum;
      const rowSum = row.reduce((a, v) => a + v, 0);
      for (let t = 0; t < S; t++) A[s * S + t] = 0.5 * adj[s * S + t] + (0.5 * row[t]) / (rowSum + 1e-6);
    }
    const hid = W1.shape[1];
    let H = matmul(A, matmul(E.data, W1.data, S, E.shape[1], hid), S, S, hid);
    H = H.map((v) => (v > 0 ? v : 0.2 * v));
    const Wc = matmul(A, matmul(H, W2.data, S, hid, D), S, S, D);
    const region = Float64Array.from({ length: D }, (_, d) => Math.max(...hs.map((f) => f[d])));
    for (let s = 0; s < S; s++) {
      let yr = 0;
      for (let d = 0; d < D; d++) yr += Wc[s * D + d] * region[d];
      const z = 0.5 * (yg[s] + yr);
      logits[b * S + s] = z;
      bce += bceTerm(z, target[b * S + s]);
      rough += bceTerm(Math.max(...rs.map((f) => f[s])), target[b * S + s]);
    }
  }
  const loss = bce / (B * S) + rough / (B * S) + kl / (B * R);
  return { logits, loss };
}

// ------------------------------------------------------------------ engine side

/** The targets checkHead draws (rng(9), p = 0.3), for the reference closures. */
const TARGETS = (() => {
  const r = rng(9);
  return Float32Array.from({ length: 64 }, () => (r() < 0.3 ? 1 : 0));
})();

/**
 * Run a head on x with the engine (forward, loss, backward), and the float64 reference with finite
 * differences of its loss for x and a sample of parameter entries.
 */
async function checkHead(
  model: Module,
  shape: number[],
  S: number,
  engineLoss: (x: Tensor, t: Tensor) => { logits: Tensor; loss: Tensor },
  refLoss: (P: Params, x: ArrayLike<number>) => { logits: Arr; loss: number },
  what: string,
) {
  const B = shape[0];
  const xData = randArr(shape, 5, 0, 1);
  const r = rng(9);
  const target = Float32Array.from({ length: B * S }, () => (r() < 0.3 ? 1 : 0));
  const P = await readParams(model);
  const x = Tensor.from(xData, shape).param();
  const { logits, loss } = tidy(() => {
    const t = Tensor.from(target, [B, S]);
    const o = engineLoss(x, t);
    backward(o.loss);
    return { logits: keep(o.logits), loss: keep(o.loss) };
  });
  const got = { logits: await logits.toArray(), loss: await loss.item(), gx: await x.grad!.toArray() };
  logits.release();
  loss.release();
  x.grad!.release();
  x.release();
  const ref = refLoss(P, xData);
  expectClose(got.logits, ref.logits, 2e-4, `${what} logits`);
  expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss), `${what} loss ${got.loss} vs ${ref.loss}`).toBeLessThan(2e-4);
  // d loss / d x by central differences of the float64 reference (a sample of entries).
  const xs = Float64Array.from(xData);
  const step = 1e-5;
  const fd = (data: Arr, i: number, f: () => number) => {
    const v = data[i];
    data[i] = v + step;
    const p = f();
    data[i] = v - step;
    const m = f();
    data[i] = v;
    return (p - m) / (2 * step);
  };
  const pick = rng(3);
  const scale = Math.max(...Array.from(got.gx, Math.abs));
  for (let k = 0; k < 12; k++) {
    const i = Math.floor(pick() * xs.length);
    const want = fd(xs, i, () => refLoss(P, xs).loss);
    expect(Math.abs(got.gx[i] - want), `${what} d loss / d x[${i}]: ${got.gx[i]} vs ${want}`).toBeLessThan(2e-3 * scale + 1e-7);
  }
  // Parameter gradients: a few entries of every trainable tensor.
  for (const [name, t] of model.trainableParameters()) {
    if (name.startsWith('backbone.')) continue;
    expect(t.grad, `${what}: ${name} has a gradient`).toBeTruthy();
    const g = await t.grad!.toArray();
    const p = P.get(name)!;
    const gScale = Math.max(...Array.from(g, Math.abs), 1e-6);
    for (let k = 0; k < 1; k++) {
      const i = Math.floor(pick() * p.data.length);
      const want = fd(p.data, i, () => refLoss(P, xs).loss);
      expect(Math.abs(g[i] - want), `${what} d loss / d ${name}[${i}]: ${g[i]} vs ${want}`).toBeLessThan(2e-3 * gScale + 1e-6);
    }
  }
  for (const [, t] of model.trainableParameters()) {
    t.grad?.release();
    t.grad = null;
  }
}

describe('GM-MLIC', () => {
  it('head forward, weighted BCE and backward match a float64 implementation and finite differences', async () => {
    const S = 3;
    const m = buildModel('gm-mlic', { size: 96, numLabels: S, seed: 2 }) as GmMlic;
    m.train();
    try {
      const shape = [2, 48, 3, 3]; // the 3×3 trunk map of a 96 px input: 9 instances, stride 1
      await checkHead(
        m, shape, S,
        (x, t) => {
          const logits = m.head(x);
          return { logits, loss: weightedBce(logits, t) };
        },
        (P, x) => gmMlicRef(P, x, shape, S, 1, TARGETS.slice(0, 2 * S)),
        'gm-mlic',
      );
    } finally {
      m.release();
    }
  }, 300_000);
});

describe('IA-GCN', () => {
  it('head forward, BCE + rough BCE + KL and backward match a float64 implementation and finite differences', async () => {
    const S = 5;
    const trainLabels = [[1, 1, 0, 0, 1], [1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 0]].map((l) => Int8Array.from(l));
    const m = buildModel('ia-gcn', { size: 64, numLabels: S, seed: 4, trainLabels }) as IaGcn;
    m.train();
    const shape = [2, 48, 2, 2];
    const eps = randArr([2 * 4], 17);
    try {
      // The statistical graph is ML-GCN's.
      expectClose(await m.gcn.adj.toArray(), labelCorrelation(trainLabels, S), 1e-7, 'ia-gcn adj');
      await checkHead(
        m, shape, S,
        (x, t) => {
          const r = m.head(x, Tensor.from(eps, [8]));
          return { logits: r.logits, loss: iaGcnLoss(r.logits, r.rough, r.mu, r.logvar, t).loss };
        },
        (P, x) => iaGcnRef(P, x, shape, S, eps, TARGETS.slice(0, 2 * S)),
        'ia-gcn',
      );
    } finally {
      m.release();
    }
  }, 300_000);

  it('draws its noise from the model generator in training and uses μ in evaluation', () => {
    const m = buildModel('ia-gcn', { size: 64, numLabels: 3 }) as IaGcn;
    try {
      tidy(() => {
        const img = Tensor.from(randArr([1, 3, 64, 64], 1), [1, 3, 64, 64]);
        expect(() => m.forward(img)).toThrow(/generator/);
        m.eval();
        const a = m.forward(img);
        const b = m.forward(img);
        return Promise.all([a.toArray(), b.toArray()]).then(([x, y]) => expect(Array.from(x)).toEqual(Array.from(y)));
      });
    } finally {
      m.release();
    }
  });
});

// ------------------------------------------------------------------ sources, names, boxes

describe('region models: names, instance sources, box files', () => {
  it('every family × trunk × source is a model name; sizes follow the trunk', () => {
    for (const n of ['ia-gcn', 'gm-mlic', 'ia-gcn-grid', 'gm-mlic-boxes', 'gm-mlic-vig-s', 'ia-gcn-gkgnet-s-grid', 'gm-mlic-gkgnet-tiny']) {
      expect(MODEL_NAMES).toContain(n);
      expect(parseRegionModel(n)).toBeDefined();
    }
    expect(REGION_MODEL_NAMES).toHaveLength(2 * 9 * 3);
    expect(parseRegionModel('gm-mlic-vig-x')).toBeUndefined();
    expect(parseRegionModel('ia-gcn-vig-s')).toEqual({ family: 'ia-gcn', trunk: 'vig-s', source: 'cells' });
    expect(inputSizeProblem('gm-mlic', 64)).toBeUndefined();
    expect(inputSizeProblem('gm-mlic', 32)).toMatch(/gm-mlic/);
  });

  it('--pretrained: ImageNet Pyramid ViG weights load into the trunk of a region model', async () => {
    const vig = buildModel('vig-ti', { size: 224, numLabels: 1000, seed: 5 });
    const state = await vig.stateDict();
    vig.release();
    for (const name of ['gm-mlic-vig-ti', 'ia-gcn-vig-ti-grid']) {
      const m = buildModel(name, { size: 224, numLabels: 4 });
      try {
        const r = loadPretrainedBackbone(m, state);
        expect(r.loaded.length, name).toBeGreaterThan(100);
        expect(r.loaded.every((k) => k.startsWith('backbone.'))).toBe(true);
        expect(r.ignored.some((k) => k.startsWith('prediction.'))).toBe(true);
        const w = await m.namedParameters().find(([k]) => k === 'backbone.stem.convs.0.weight')![1].toArray();
        expect(Array.from(w)).toEqual(Array.from(state.get('stem.convs.0.weight')!.data));
      } finally {
        m.release();
      }
    }
  }, 120_000);

  it('grid and file boxes: shapes, padding with the whole image, validation naming the file and entry', async () => {
    expect(gridBoxes().length).toBe(14 * 4);
    const file = join(tmp, 'boxes.json');
    writeFileSync(file, JSON.stringify({ 'a.jpg': [[0, 0, 50, 100], [10, 20, 30, 40]], 'b.jpg': { width: 200, height: 100, boxes: [[100, 0, 200, 50]] } }));
    const table = await readBoxFile(file, async (name) => (name === 'a.jpg' ? { width: 100, height: 100 } : undefined));
    expect(Array.from(table.get('a.jpg')!)).toEqual([0, 0, 0.5, 1, 0.1, 0.2, 0.3, 0.4].map((v) => Math.fround(v)));
    const boxes = batchBoxes('boxes', 3, 64, 2, table, ['/data/x/a.jpg', 'b.jpg', 'c.jpg']);
    expect(Array.from(boxes)).toEqual([
      0, 0, 0, 32, 64, 0, 6.4, 12.8, 19.2, 25.6,
      1, 32, 0, 64, 32, 1, 0, 0, 64, 64,
      2, 0, 0, 64, 64, 2, 0, 0, 64, 64,
    ].map((v) => Math.fround(v)));
    const bad = async (json: unknown, re: RegExp) => {
      writeFileSync(file, JSON.stringify(json));
      await expect(readBoxFile(file, async () => ({ width: 10, height: 10 }))).rejects.toThrow(re);
    };
    await bad([1, 2], /expected an object keyed by image file name/);
    await bad({ 'x.jpg': [[0, 0, 1]] }, /boxes\.json: entry "x\.jpg": box 0 must be \[x0, y0, x1, y1\]/);
    await bad({ 'x.jpg': [[5, 0, 1, 1]] }, /entry "x\.jpg": box 0 .* x1 < x0/);
    await bad({ 'x.jpg': { width: 0, height: 3, boxes: [] } }, /entry "x\.jpg": width and height/);
    await bad({ 'x.jpg': 3 }, /entry "x\.jpg": expected a list/);
    writeFileSync(file, '{');
    await expect(readBoxFile(file, async () => undefined)).rejects.toThrow(/not valid JSON/);
    writeFileSync(file, JSON.stringify({ 'q.jpg': [[0, 0, 1, 1]] }));
    // An entry without a size whose image is not at hand is left out (nothing could read it).
    expect((await readBoxFile(file, async () => undefined)).size).toBe(0);
  });

  it('every source runs forward and backward at 64 px; the box sources need their images', async () => {
    for (const name of ['gm-mlic-grid', 'ia-gcn-grid', 'gm-mlic-boxes', 'ia-gcn-boxes']) {
      const m = buildModel(name, { size: 64, numLabels: 3, boxes: new Map([['a.jpg', Float32Array.of(0, 0, 0.5, 0.5)]]) }) as GmMlic | IaGcn;
      m.setGenerator(new Rng(1));
      try {
        const img = Tensor.from(randArr([2, 3, 64, 64], 2), [2, 3, 64, 64]);
        if (name.endsWith('-boxes')) {
          expect(() => tidy(() => m.forward(img))).toThrow(/setImages/);
          m.setImages(['a.jpg', 'b.jpg']);
        }
        const loss = tidy(() => {
          const y = m.forward(img);
          expect(y.shape).toEqual([2, 3]);
          const { loss } = m.trainingLoss(y, Tensor.from(Float32Array.of(1, 0, 0, 0, 1, 1), [2, 3]));
          backward(loss);
          return keep(loss);
        });
        expect(Number.isFinite(await loss.item()), name).toBe(true);
        loss.release();
        img.release();
        const anyGrad = m.trainableParameters().some(([n, t]) => n.startsWith('backbone.') && t.grad);
        expect(anyGrad, `${name}: gradient reaches the trunk`).toBe(true);
      } finally {
        m.release();
      }
    }
  }, 120_000);
});

// ------------------------------------------------------------------ training, checkpoints

function config(out: string, model: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...PRESETS.tiny, preset: 'tiny', model, epochs: 3, batch: 16, data: undefined, out, seed: 3, workers: 0, skipBad: false,
    root: tmp, logEvery: 2, synthetic: { train: 192, val: 64, size: 64 }, ...extra,
  };
}

describe('region models learn and round-trip through checkpoints', () => {
  for (const model of ['gm-mlic', 'ia-gcn']) {
    it(`${model}: loss falls, val mAP clearly above the label-frequency baseline, eval reloads the checkpoint`, async () => {
      const out = join(tmp, model);
      const synthetic = { train: 192, val: 64, size: 64 };
      await train(config(out, model), () => {});
      const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const val = syntheticLabels(synthetic).val;
      const prevalence = SYNTHETIC_CLASSES.map((_, c) => val.filter((l) => l.includes(c)).length / val.length).filter((p) => p > 0);
      const baseline = prevalence.reduce((a, b) => a + b, 0) / prevalence.length;
      expect(rows[2].train_loss).toBeLessThan(0.97 * rows[0].train_loss);
      expect(Math.max(...rows.map((r) => r.val_map))).toBeGreaterThan(baseline + 0.06);
      // Round trip: the checkpoint loads strictly into a rebuilt model with equal outputs.
      const ck = await loadCheckpoint(join(out, 'last.safetensors'));
      const inf = await loadModelForInference(join(out, 'last.safetensors'));
      try {
        const again = await inf.model.stateDict();
        for (const [k, v] of ck.model) expect(Array.from(again.get(k)!.data), k).toEqual(Array.from(v.data));
        const img = Tensor.from(randArr([1, 3, 64, 64], 4), [1, 3, 64, 64]);
        const y = noGrad(() => inf.model.forward(img));
        expect((await y.toArray()).every(Number.isFinite)).toBe(true);
        img.release();
        y.release();
      } finally {
        inf.model.release();
      }
      // Resume continues the run for one more epoch.
      const s = await train(config(out, model, { resume: out, epochs: 4 }), () => {});
      expect(s.epochs).toBe(4);
    }, 900_000);
  }
});

describe('webvig train / eval / predict with a box file', () => {
  it('gm-mlic-boxes and ia-gcn-boxes: --boxes is required, validated, recorded, and reused by eval and predict; VOC names get GloVe vectors', async () => {
    // A CSV set with VOC class names: 8 train, 4 val images of 64 px; boxes for most images.
    const dir = join(tmp, 'boxset');
    mkdirSync(join(dir, 'img'), { recursive: true });
    const names = ['person', 'sofa', 'tvmonitor'];
    let csv = 'path,labels,split\n';
    const boxes: Record<string, unknown> = {};
    for (let i = 0; i < 12; i++) {
      const file = `img/${i}.png`;
      await sharp({ create: { width: 80, height: 64, channels: 3, background: { r: 40 * (i % 6), g: 20 * i, b: 100 } } }).png().toFile(join(dir, file));
      csv += `${file},${names.filter((_, c) => (i + c) % 3 !== 0).join(';')},${i < 8 ? 'train' : 'val'}\n`;
      if (i % 4 !== 3) boxes[`${i}.png`] = i % 2 ? [[0, 0, 40, 32], [20, 10, 80, 64]] : { width: 80, height: 64, boxes: [[5, 5, 30, 60]] };
    }
    writeFileSync(join(dir, 'set.csv'), csv);
    writeFileSync(join(dir, 'boxes.json'), JSON.stringify(boxes));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ '1.png': [[0, 0, 1]] }));
    const common = ['--batch', '4', '--workers', '0', '--log-every', '1', '--cache-root', tmp, '--epochs', '1'];
    const io = () => {
      const o = { stdout: '', stderr: '' };
      return { o, io: { stdout: (x: string) => void (o.stdout += x), stderr: (x: string) => void (o.stderr += x) } };
    };
    const data = ['--data', `csv:${join(dir, 'set.csv')}`];
    const a = io();
    expect(await main(['train', ...data, '--model', 'gm-mlic-boxes', ...common, '--out', join(tmp, 'nobox')], a.io)).toBe(2);
    expect(a.o.stderr).toMatch(/give --boxes FILE/);
    const b = io();
    expect(await main(['train', ...data, '--model', 'gm-mlic-boxes', '--boxes', join(dir, 'bad.json'), ...common, '--out', join(tmp, 'badbox')], b.io)).toBe(2);
    expect(b.o.stderr).toMatch(/bad\.json: entry "1\.png": box 0 must be/);
    const c = io();
    expect(await main(['train', ...data, '--model', 'gm-mlic', '--boxes', join(dir, 'boxes.json'), ...common, '--out', join(tmp, 'cellbox')], c.io)).toBe(2);
    expect(c.o.stderr).toMatch(/--boxes is read by the \*-boxes region models only/);
    for (const model of ['gm-mlic-boxes', 'ia-gcn-boxes']) {
      const out = join(tmp, `run-${model}`);
      const t = io();
      const code = await main(['train', ...data, '--model', model, '--boxes', join(dir, 'boxes.json'), ...common, '--out', out], t.io);
      expect(t.o.stderr).toBe('');
      expect(code).toBe(0);
      expect(t.o.stdout).toMatch(/training without the preset's flip augmentation/);
      const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      // The tiny preset's region settings: 96 px (3×3 final cells on the tiny trunk).
      expect(cfg).toMatchObject({ model, boxes: join(dir, 'boxes.json'), label_embeddings: 'glove-voc', size: 96, augment: 'flip', schedule: { warmupEpochs: 1 } });
      expect(cfg.schedule.warmupIters).toBeUndefined();
      const ck = await readSafetensors(join(out, 'last.safetensors'));
      const key = model.startsWith('gm') ? 'label_embeddings' : 'gcn.embeddings';
      const voc = gloveTable('voc');
      expect(Array.from(ck.tensors.get(key)!.data)).toEqual(Array.from(Float32Array.from(names.flatMap((n) => voc.vectors[voc.classes.indexOf(n)]))));
      const e = io();
      const ecode = await main(['eval', '--weights', join(out, 'last.safetensors'), ...data, '--json', '--workers', '0', '--cache-root', tmp], e.io);
      expect(e.o.stderr).toBe('');
      expect(ecode).toBe(0);
      expect(JSON.parse(e.o.stdout).images).toBe(4);
      const p = io();
      expect(await main(['predict', '--weights', join(out, 'best.safetensors'), join(dir, 'img/1.png'), join(dir, 'img/3.png'), '--json', '--threshold', '0'], p.io)).toBe(0);
      expect(JSON.parse(p.o.stdout).results).toHaveLength(2);
      const r = io();
      expect(await main(['train', '--resume', out, '--epochs', '2', '--workers', '0', '--cache-root', tmp], r.io)).toBe(0);
      expect(r.o.stderr).toBe('');
    }
  }, 600_000);
});
