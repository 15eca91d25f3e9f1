// ML-GCN: the label-correlation matrix (hand-computed cases and a float64 matrix re-implementation),
// the two-layer GCN head against a float64 CPU forward and backward, label-embedding files, and the
// `<model>-mlgcn` factory variants wired on ViG (replacing the head) and GKGNet / ML-ViG (added).
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { main } from '../train/cli.js';
import { openDataset } from '../train/data/dataset.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Tensor, F, backward, noGrad, tidy } from '../kernels/index.js';
import { writeSafetensors, readSafetensors } from '../train/safetensors-file.js';
import { fileURLToPath } from 'node:url';
import { SYNTHETIC_CLASSES } from '../train/data/synthetic.js';
import {
  labelCorrelation, labelGraph, checkpointLabelEmbeddings, normalizeClassName,
  MlGcnHead, VigMlGcn, ADJACENCY_MODES, DEFAULT_P, type LabelEmbeddings, type AdjacencyMode,
} from '../models/ml-gcn.js';
import { readLabelEmbeddings, defaultLabelEmbeddings, gloveTable } from '../train/label-embeddings.js';
import { buildModel, parameterCounts, tinyGkgnetConfig } from '../models/factory.js';
import { seedInit } from '../models/layers.js';
import type { Module, StateEntry } from '../models/module.js';
import { rng, randArr, matmulRef, expectClose, relErr } from './ref.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-mlgcn-'));

beforeAll(async () => {
  await init();
});

/**
 * Independent float64 formulation with whole matrices: M = YᵀY (diagonal zeroed, as the official
 * statistics), P = M / N, binarise, re-weight each column, normalise.
 */
function correlationRef(labels: number[][], S: number, tau: number, p: number, mode: AdjacencyMode | 'rows'): { A: Float64Array; adj: Float64Array } {
  const Y = labels.map((l) => l.map((v) => (v === 1 ? 1 : 0)));
  const M = Array.from({ length: S }, (_, i) => Array.from({ length: S }, (_, j) => Y.reduce((s, y) => s + y[i] * y[j], 0)));
  const B = M.map((row, i) => row.map((m, j) => (i !== j && M[i][i] > 0 && m / M[i][i] >= tau ? 1 : 0)));
  const col = Array.from({ length: S }, (_, j) => B.reduce((s, row) => s + row[j], 0));
  const Ap = B.map((row, i) =>
    row.map((b, j) => {
      if (i === j) return mode === 'official' ? 1 : 1 - p;
      // Eq. 8 as first printed: row sums.
      if (mode === 'rows') return b ? (p * b) / row.reduce((x, y) => x + y, 0) : 0;
      return mode === 'official' ? (b * p) / (col[j] + 1e-6) : col[j] ? (p * b) / col[j] : 0;
    }),
  );
  const d = Ap.map((row) => row.reduce((a, b) => a + b, 0));
  const adj = new Float64Array(S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) adj[i * S + j] = (1 / Math.sqrt(d[i])) * Ap[j][i] * (1 / Math.sqrt(d[j]));
  return { A: Float64Array.from(Ap.flat()), adj };
}

const int8 = (rows: number[][]) => rows.map((r) => Int8Array.from(r));
const lab2rows = (labels: Int8Array[]) => labels.map((l) => Array.from(l));

describe('labelCorrelation', () => {
  // N = (2, 2, 4); P(1|0) = P(2|0) = P(0|1) = 1/2, P(0|2) = 1/4, others 0; −1 (difficult) is absent.
  // τ = 0.4: binarised A = [[0,1,1],[1,0,0],[0,0,0]]; every column sums to 1.
  const labels = [[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [0, -1, 1]];

  it('official (default): columns scaled by p / (sum + 1e-6), p = 0.25, +1 on the diagonal, then D^-1/2 Aᵀ D^-1/2', () => {
    const q = 0.25 / (1 + 1e-6);
    expect(relErr(labelGraph(int8(labels), 3), [1, q, q, q, 1, 0, 0, 0, 1])).toBeLessThan(1e-15);
    // D = (1 + 2q, 1 + q, 1).
    const d = [1 + 2 * q, 1 + q, 1];
    const want = [1 / d[0], q / Math.sqrt(d[0] * d[1]), 0, q / Math.sqrt(d[0] * d[1]), 1 / d[1], 0, q / Math.sqrt(d[0]), 0, 1];
    expect(relErr(labelCorrelation(int8(labels), 3), want)).toBeLessThan(1e-15);
    expect(relErr(labelCorrelation(int8(labels), 3, { mode: 'official', tau: 0.4, p: 0.25 }), want)).toBeLessThan(1e-15);
    // τ = 0.5 keeps P = 0.5 (≥); τ = 0.51 drops every edge: A′ = I.
    expect(relErr(labelCorrelation(int8(labels), 3, { tau: 0.5 }), want)).toBeLessThan(1e-15);
    expect(Array.from(labelCorrelation(int8(labels), 3, { tau: 0.51 }))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    // No labels at all: the identity (what a model gets before loadStateDict restores `adj`).
    expect(Array.from(labelCorrelation([], 2))).toEqual([1, 0, 0, 1]);
    // Counting −1 as present would give N1 = 3 and drop edge 1 → 0.
    expect(labelGraph(int8(labels.map((l) => l.map((v) => Math.abs(v)))), 3)[3]).toBe(0);
  });

  it("paper: the corrected Eq. 8 (column sums), p = 0.2, 1 − p on the diagonal, the same normalisation", () => {
    // A′ = [[.8,.2,.2],[.2,.8,0],[0,0,.8]] (Eq. 8 as first printed, with row sums, would give .1, .1 in row 0).
    expect(relErr(labelGraph(int8(labels), 3, { mode: 'paper' }), [0.8, 0.2, 0.2, 0.2, 0.8, 0, 0, 0, 0.8])).toBeLessThan(1e-15);
    // D = (1.2, 1, .8).
    const want = [0.8 / 1.2, 0.2 / Math.sqrt(1.2), 0, 0.2 / Math.sqrt(1.2), 0.8, 0, 0.2 / Math.sqrt(0.96), 0, 1];
    expect(relErr(labelCorrelation(int8(labels), 3, { mode: 'paper' }), want)).toBeLessThan(1e-15);
    // p = 0.3: A′ = [[.7,.3,.3],[.3,.7,0],[0,0,.7]], D = (1.3, 1, .7).
    const want3 = [0.7 / 1.3, 0.3 / Math.sqrt(1.3), 0, 0.3 / Math.sqrt(1.3), 0.7, 0, 0.3 / Math.sqrt(0.91), 0, 1];
    expect(relErr(labelCorrelation(int8(labels), 3, { mode: 'paper', p: 0.3 }), want3)).toBeLessThan(1e-15);
    expect(Array.from(labelCorrelation(int8(labels), 3, { mode: 'paper', tau: 0.51 }))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(labelCorrelation([], 2, { mode: 'paper' }))).toEqual([1, 0, 0, 1]);
    expect(() => labelGraph([], 2, { mode: 'rows' as AdjacencyMode })).toThrow('labelGraph: unknown mode "rows" (official, paper)');
  });

  it('both modes equal a float64 matrix formulation on random label sets (absent classes, difficult labels)', () => {
    const r = rng(11);
    for (const mode of ADJACENCY_MODES) {
      for (const [S, N, tau, p] of [[7, 40, 0.4, 0.2], [5, 9, 0.3, 0.25], [1, 4, 0.4, 0.2], [12, 100, 0.15, 0.1], [20, 300, 0.4, DEFAULT_P[mode]]]) {
        const rows = Array.from({ length: N }, () => Array.from({ length: S }, (_, c) => (c === S - 1 && S > 1 ? 0 : r() < 0.35 ? 1 : r() < 0.1 ? -1 : 0)));
        const ref = correlationRef(rows, S, tau, p, mode);
        expect(relErr(labelGraph(int8(rows), S, { mode, tau, p }), ref.A), `${mode} S=${S} A`).toBeLessThan(1e-14);
        expect(relErr(labelCorrelation(int8(rows), S, { mode, tau, p }), ref.adj), `${mode} S=${S}`).toBeLessThan(1e-14);
      }
    }
    expect(() => labelCorrelation([Int8Array.of(1, 0)], 3)).toThrow('labelCorrelation: a label vector has 2 entries, expected 3');
  });

  it("the paper's A′ with p is (1 − p) × the official A′ with p / (1 − p): the same graph once normalised", () => {
    const r = rng(12);
    for (const [S, N, p] of [[9, 60, 0.2], [15, 200, 0.3], [4, 10, 0.1]]) {
      const rows = int8(Array.from({ length: N }, () => Array.from({ length: S }, () => (r() < 0.4 ? 1 : 0))));
      const official = { mode: 'official' as const, p: p / (1 - p) };
      const paper = { mode: 'paper' as const, p };
      expect(relErr(labelGraph(rows, S, paper).map((v) => v / (1 - p)), labelGraph(rows, S, official)), `S=${S} A`).toBeLessThan(1e-5);
      expect(relErr(labelCorrelation(rows, S, paper), labelCorrelation(rows, S, official)), `S=${S}`).toBeLessThan(1e-5);
    }
  });
});

/** state → Float64 arrays by name. */
async function weightsOf(m: Module): Promise<Map<string, Float64Array>> {
  const s = await m.stateDict();
  return new Map([...s].map(([k, v]) => [k, Float64Array.from(v.data)]));
}

describe('MlGcnHead', () => {
  it('forward and backward equal a float64 CPU reference of the two GCN layers and the product', async () => {
    const S = 5, D = 7, Hd = 13, Fd = 10, B = 3;
    const labels = Array.from({ length: 30 }, (_, i) => Int8Array.from({ length: S }, (_, c) => ((i * (c + 3)) % 7 < 3 ? 1 : 0)));
    const adjacency = labelCorrelation(labels, S);
    seedInit(4);
    const emb: LabelEmbeddings = { kind: 'given', vectors: randArr([S, D], 5), dim: D };
    const head = new MlGcnHead(S, Fd, adjacency, emb, Hd);
    const w = await weightsOf(head);
    expect([...w.keys()].sort()).toEqual(['adj', 'embeddings', 'gc1.weight', 'gc2.weight']);
    expect(relErr(w.get('adj')!, Float32Array.from(adjacency))).toBe(0);
    const pooledData = randArr([B, Fd], 6);
    const gData = randArr([B, S], 7);

    // Reference: H = Â(E·W1), A = LeakyReLU_0.2(H), W = Â(A·W2) (S×Fd), logits = pooled·Wᵀ.
    const [adj, E, W1, W2] = ['adj', 'embeddings', 'gc1.weight', 'gc2.weight'].map((k) => w.get(k)!);
    const H = matmulRef(adj, matmulRef(E, W1, S, Hd, D, 1, 1), S, Hd, S, 1, 1);
    const A = H.map((h) => (h > 0 ? h : 0.2 * h));
    const Wc = matmulRef(adj, matmulRef(A, W2, S, Fd, Hd, 1, 1), S, Fd, S, 1, 1);
    const logits = matmulRef(pooledData, Wc, B, S, Fd, 1, 1, false, true);
    // Backward of Σ logits ⊙ G.
    const dWc = matmulRef(gData, pooledData, S, Fd, B, 1, 1, true, false);
    const dAW2 = matmulRef(adj, dWc, S, Fd, S, 1, 1, true, false);
    const dW2 = matmulRef(A, dAW2, Hd, Fd, S, 1, 1, true, false);
    const dA = matmulRef(dAW2, W2, S, Hd, Fd, 1, 1, false, true);
    const dH = dA.map((g, i) => (H[i] > 0 ? g : 0.2 * g));
    const dEW1 = matmulRef(adj, dH, S, Hd, S, 1, 1, true, false);
    const dW1 = matmulRef(E, dEW1, D, Hd, S, 1, 1, true, false);
    const dPooled = matmulRef(gData, Wc, B, Fd, S, 1, 1, false, false);

    const pooled = Tensor.from(pooledData, [B, Fd]);
    pooled.requiresGrad = true;
    const out = head.forward(pooled);
    expect(out.shape).toEqual([B, S]);
    expectClose(await out.toArray(), logits, 1e-5, 'logits');
    backward(F.sum(F.mul(out, Tensor.from(gData, [B, S]))));
    expectClose(await head.gc1.grad!.toArray(), dW1, 1e-5, 'd gc1');
    expectClose(await head.gc2.grad!.toArray(), dW2, 1e-5, 'd gc2');
    expectClose(await pooled.grad!.toArray(), dPooled, 1e-5, 'd pooled');
    // Fixed embeddings and the graph are buffers: no gradient, not trainable, not counted.
    expect(head.trainableParameters().map(([n]) => n)).toEqual(['gc1.weight', 'gc2.weight']);
    expect(head.namedBuffers().map(([n]) => n)).toEqual(['embeddings', 'adj']);
    expect(head.embeddings.grad).toBeNull();
    head.release();
  });

  it('one-hot embeddings are the identity; learnable ones are a trained parameter', async () => {
    const onehot = new MlGcnHead(4, 6, labelCorrelation([], 4), { kind: 'onehot' }, 8);
    expect(Array.from(await onehot.embeddings.toArray())).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(onehot.gc1.shape).toEqual([4, 8]);
    onehot.release();
    const learn = new MlGcnHead(4, 6, labelCorrelation([], 4), { kind: 'learnable', dim: 3 }, 8);
    expect(learn.trainableParameters().map(([n]) => n)).toEqual(['embeddings', 'gc1.weight', 'gc2.weight']);
    backward(F.sum(learn.forward(Tensor.from(randArr([2, 6], 1), [2, 6]))));
    expect(Math.max(...Array.from(await learn.embeddings.grad!.toArray(), Math.abs))).toBeGreaterThan(0);
    learn.release();
  });
});

describe('the official ML-GCN fixture (test/fixtures/mlgcn.safetensors, Megvii-Nanjing/ML-GCN @ 5517d6f)', () => {
  it('A, adj (1e-5), classifiers, logits, loss (1e-4) and gradients (1e-3) equal the official code', async () => {
    const f = await readSafetensors(fileURLToPath(new URL('./fixtures/mlgcn.safetensors', import.meta.url)));
    expect(f.metadata.fixture).toBe('mlgcn');
    const cfg = JSON.parse(f.metadata.config) as { S: number; d: number; hidden: number; D: number; B: number; N: number; t: number; p: number };
    const t = (name: string) => f.tensors.get(name)!;
    const { S, d, hidden, D, B, N } = cfg;
    const lab = t('input.labels').data;
    const labels = Array.from({ length: N }, (_, n) => Int8Array.from(lab.subarray(n * S, (n + 1) * S)));
    const errs: Record<string, number> = {};
    const check = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
      errs[name] = relErr(got, want);
      expect(errs[name], name).toBeLessThan(tol);
    };
    // The defaults are the official ones: τ = 0.4, p = 0.25.
    expect([cfg.t, cfg.p]).toEqual([0.4, DEFAULT_P.official]);
    check('A', labelGraph(labels, S), t('eval.out.A').data, 1e-5);
    const adjacency = labelCorrelation(labels, S);
    check('adj', adjacency, t('eval.out.adj').data, 1e-5);
    // The paper's corrected Eq. 8 (p = 0.2, 1 − p) is 0.8 × the official A′ and the same graph once
    // normalised; Eq. 8 as first printed (row sums, this head's formula before) is not.
    check('paper A / 0.8', labelGraph(labels, S, { mode: 'paper' }).map((v) => v / 0.8), t('eval.out.A').data, 1e-5);
    check('paper adj', labelCorrelation(labels, S, { mode: 'paper' }), t('eval.out.adj').data, 1e-5);
    errs['printed Eq. 8 adj'] = relErr(correlationRef(lab2rows(labels), S, 0.4, 0.2, 'rows').adj, t('eval.out.adj').data);
    expect(errs['printed Eq. 8 adj']).toBeGreaterThan(0.1);

    const head = new MlGcnHead(S, D, adjacency, { kind: 'given', vectors: Float32Array.from(t('input.embeddings').data), dim: d }, hidden);
    const state = await head.stateDict();
    for (const k of ['gc1.weight', 'gc2.weight']) state.set(k, { shape: t(`param.${k}`).shape, data: Float32Array.from(t(`param.${k}`).data) });
    head.loadStateDict(state);
    const features = Tensor.from(Float32Array.from(t('input.features').data), [B, D]);
    features.requiresGrad = true;
    const classifiers = noGrad(() => head.classifiers());
    check('classifiers', await classifiers.toArray(), t('eval.out.classifiers').data, 1e-4);
    classifiers.release();
    const logits = head.forward(features);
    check('logits', await logits.toArray(), t('eval.out.logits').data, 1e-4);
    const loss = F.sum(F.mul(logits, Tensor.from(Float32Array.from(t('loss_weight.logits').data), [B, S])));
    check('loss', await loss.toArray(), t('eval.out.loss').data, 1e-4);
    backward(loss);
    check('grad gc1', await head.gc1.grad!.toArray(), t('eval.grad.param.gc1.weight').data, 1e-3);
    check('grad gc2', await head.gc2.grad!.toArray(), t('eval.grad.param.gc2.weight').data, 1e-3);
    check('grad features', await features.grad!.toArray(), t('eval.grad.input.features').data, 1e-3);
    console.log(`mlgcn fixture rel. errors: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
    head.release();
  });
});

describe('default label embeddings', () => {
  const voc = gloveTable('voc');
  const coco = gloveTable('coco');
  const rowOf = (table: { classes: string[]; vectors: number[][] }, name: string) => table.vectors[table.classes.indexOf(name)];

  it('ships the GloVe tables (80 COCO, 20 VOC names, 300-d)', () => {
    expect([coco.classes.length, voc.classes.length]).toEqual([80, 20]);
    expect(new Set([...coco.vectors, ...voc.vectors].map((v) => v.length))).toEqual(new Set([300]));
    expect(normalizeClassName('Potted_Plant')).toBe('pottedplant');
    expect(normalizeClassName('tv-monitor')).toBe('tvmonitor');
  });

  it("VOC's names (any spelling, any order) → the VOC vectors, in the dataset's order", () => {
    for (const classes of [voc.classes, [...voc.classes].reverse(), voc.classes.map((c) => ({ pottedplant: 'potted plant', tvmonitor: 'TV monitor', diningtable: 'dining_table' })[c] ?? c)]) {
      const e = defaultLabelEmbeddings(classes);
      expect(e.source).toBe('glove-voc');
      expect(e.description).toBe('GloVe 300-d vectors of the VOC class names (shipped, as ML-GCN used them)');
      if (e.embeddings.kind !== 'given') throw new Error('not given');
      expect(e.embeddings.dim).toBe(300);
      classes.forEach((c, i) => {
        const want = rowOf(voc, voc.classes.find((v) => normalizeClassName(v) === normalizeClassName(c))!);
        expect(Array.from(e.embeddings.kind === 'given' ? e.embeddings.vectors.subarray(i * 300, (i + 1) * 300) : []), c).toEqual(Array.from(Float32Array.from(want)));
      });
    }
  });

  it("COCO's names in the annotation (category id) order → the COCO vectors; a subset too; others one-hot", () => {
    // The first categories of instances_*2014.json, by id.
    const byId = ['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light'];
    const rest = coco.classes.filter((c) => !byId.includes(c));
    const classes = [...byId, ...[...rest].reverse()];
    const e = defaultLabelEmbeddings(classes);
    expect(e.source).toBe('glove-coco');
    if (e.embeddings.kind !== 'given') throw new Error('not given');
    expect(e.embeddings.vectors.length).toBe(80 * 300);
    for (const [i, c] of [[0, 'person'], [3, 'motorcycle'], [9, 'traffic light'], [79, rest[0]]] as const) {
      expect(Array.from(e.embeddings.vectors.subarray(i * 300, (i + 1) * 300)), c).toEqual(Array.from(Float32Array.from(rowOf(coco, c))));
    }
    // A subset of COCO's names (here also VOC's: the shared rows are the same vectors) → COCO; 'tvmonitor' only in VOC.
    expect(defaultLabelEmbeddings(['dog', 'cat', 'hot dog']).source).toBe('glove-coco');
    expect(defaultLabelEmbeddings(['dog', 'cat']).source).toBe('glove-coco');
    expect(defaultLabelEmbeddings(['sofa', 'tvmonitor', 'person']).source).toBe('glove-voc');
    // Anything else keeps today's one-hot: unknown names, a mix of COCO-only and VOC-only names, duplicates, nothing.
    for (const c of [[...SYNTHETIC_CLASSES], ['cat', 'unicorn'], ['tv', 'sofa'], ['tv', 'TV'], []]) {
      const o = defaultLabelEmbeddings(c);
      expect(o, c.join(',')).toEqual({ embeddings: { kind: 'onehot' }, source: 'onehot', description: "one-hot (the class names are not COCO's or VOC's)" });
    }
  });
});

describe('readLabelEmbeddings', () => {
  const classes = ['cat', 'dog', 'bird'];
  const vec = { cat: [1, 2], dog: [3, 4], bird: [5, 6] };
  const want = [1, 2, 3, 4, 5, 6];

  it('reads both JSON forms and safetensors, in the dataset class order', async () => {
    const f1 = join(tmp, 'vectors.json');
    writeFileSync(f1, JSON.stringify({ classes: ['bird', 'cat', 'dog'], vectors: [vec.bird, vec.cat, vec.dog] }));
    const f2 = join(tmp, 'plain.json');
    writeFileSync(f2, JSON.stringify({ vectors: [vec.cat, vec.dog, vec.bird] }));
    const f3 = join(tmp, 'map.json');
    writeFileSync(f3, JSON.stringify({ dog: vec.dog, bird: vec.bird, cat: vec.cat, unused: [0, 0] }));
    for (const f of [f1, f2, f3]) {
      const e = await readLabelEmbeddings(f, classes);
      expect(e.kind, f).toBe('given');
      if (e.kind !== 'given') continue;
      expect(e.dim).toBe(2);
      expect(Array.from(e.vectors), f).toEqual(want);
    }
    const s1 = join(tmp, 'named.safetensors');
    await writeSafetensors(s1, [
      { name: 'other', shape: [1], data: Float32Array.of(9) },
      { name: 'embeddings', shape: [3, 2], data: Float32Array.from(want) },
    ]);
    const s2 = join(tmp, 'single.safetensors');
    await writeSafetensors(s2, [{ name: 'glove', shape: [3, 2], data: Float32Array.from(want) }]);
    for (const f of [s1, s2]) {
      const e = await readLabelEmbeddings(f, classes);
      expect(e).toEqual({ kind: 'given', dim: 2, vectors: Float32Array.from(want) });
    }
  });

  it('names the class or shape at fault', async () => {
    const f = join(tmp, 'missing.json');
    writeFileSync(f, JSON.stringify({ cat: [1, 2], dog: [3, 4] }));
    await expect(readLabelEmbeddings(f, classes)).rejects.toThrow(`${f}: no 2-dim vector for class "bird"`);
    const g = join(tmp, 'ragged.json');
    writeFileSync(g, JSON.stringify({ classes: ['cat', 'dog', 'bird'], vectors: [[1, 2], [3], [5, 6]] }));
    await expect(readLabelEmbeddings(g, classes)).rejects.toThrow(`${g}: no 2-dim vector for class "dog"`);
    const s = join(tmp, 'wrong.safetensors');
    await writeSafetensors(s, [{ name: 'embeddings', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }]);
    await expect(readLabelEmbeddings(s, classes)).rejects.toThrow(`${s}: expected a tensor "embeddings" of shape [3, d]`);
  });
});

describe('<model>-mlgcn', () => {
  const S = 6;
  const trainLabels = Array.from({ length: 20 }, (_, i) => Int8Array.from({ length: S }, (_, c) => ((i + 2 * c) % 5 < 2 ? 1 : 0)));
  const img = () => Tensor.from(randArr([2, 3, 64, 64], 21, -2, 2), [2, 3, 64, 64]);

  /** gap·Wᵀ with W from the head's own weights, in float64. */
  function gcnLogits(w: Map<string, Float64Array>, gap: Float32Array, B: number, C: number, hidden: number, D: number): Float64Array {
    const [adj, E, W1, W2] = ['gcn.adj', 'gcn.embeddings', 'gcn.gc1.weight', 'gcn.gc2.weight'].map((k) => w.get(k)!);
    const H = matmulRef(adj, matmulRef(E, W1, S, hidden, D, 1, 1), S, hidden, S, 1, 1).map((h) => (h > 0 ? h : 0.2 * h));
    const Wc = matmulRef(adj, matmulRef(H, W2, S, C, hidden, 1, 1), S, C, S, 1, 1);
    return matmulRef(gap, Wc, B, S, C, 1, 1, false, true);
  }

  it('GKGNet and ML-ViG: the base logits plus gcn(GAP(patches)); the graph comes from the training labels', async () => {
    for (const base of ['gkgnet-tiny', 'mlvig-tiny']) {
      const plain = buildModel(base, { size: 64, numLabels: S, seed: 3 }).eval();
      const withGcn = buildModel(`${base}-mlgcn`, { size: 64, numLabels: S, seed: 3, trainLabels }).eval();
      const pw = await plain.stateDict();
      const w = await weightsOf(withGcn);
      // Same trunk and head (same init order), plus the gcn.* entries.
      expect([...w.keys()].filter((k) => !k.startsWith('gcn.')).sort()).toEqual([...pw.keys()].sort());
      expect([...w.keys()].filter((k) => k.startsWith('gcn.')).sort()).toEqual(['gcn.adj', 'gcn.embeddings', 'gcn.gc1.weight', 'gcn.gc2.weight']);
      for (const [k, v] of pw) expect(relErr(w.get(k)!, v.data), `${base} ${k}`).toBe(0);
      expect(relErr(w.get('gcn.adj')!, Float32Array.from(labelCorrelation(trainLabels, S)))).toBe(0);
      const hidden = 4 * 48;
      expect(w.get('gcn.gc1.weight')!.length).toBe(S * hidden);
      const { base: baseLogits, gap, logits } = await tidy(() =>
        noGrad(() => {
          const x = img();
          const all = (plain as unknown as { forwardAll(t: Tensor): { clsScore: Tensor; gap: Tensor } }).forwardAll(x);
          return { base: all.clsScore, gap: all.gap, logits: withGcn.forward(x) };
        }),
      );
      const want = gcnLogits(w, await gap.toArray(), 2, 48, hidden, S);
      const b = await baseLogits.toArray();
      expect(logits.shape).toEqual([2, S]);
      expectClose(await logits.toArray(), want.map((v, i) => v + b[i]), 1e-5, `${base}-mlgcn logits`);
      for (const t of [baseLogits, gap, logits]) t.release();
      plain.release();
      withGcn.release();
    }
  });

  it('ViG: the ImageNet head is replaced by gcn(GAP(final patch map))', async () => {
    seedInit(8);
    const cfg = { ...tinyGkgnetConfig(64, S), groups: 1 };
    const m = new VigMlGcn(cfg, { trainLabels, hidden: 24 }).eval();
    const w = await weightsOf(m);
    expect([...w.keys()].some((k) => k.startsWith('prediction.'))).toBe(false);
    const { patches, logits } = tidy(() =>
      noGrad(() => {
        const x = img();
        let p = m.embed(x);
        for (const l of m.backbone.layers) p = l.call(p);
        return { patches: p, logits: m.forward(x) };
      }),
    );
    const P = await patches.toArray();
    const [B, C, h, ww] = patches.shape;
    const gap = new Float32Array(B * C);
    for (let i = 0; i < B * C; i++) {
      let s = 0;
      for (let j = 0; j < h * ww; j++) s += P[i * h * ww + j];
      gap[i] = s / (h * ww);
    }
    expectClose(await logits.toArray(), gcnLogits(w, gap, B, C, 24, S), 1e-5, 'vig mlgcn logits');
    patches.release();
    logits.release();
    m.release();
    // The factory's ViG-Ti variant: trunk + gcn, no prediction head; counts add up.
    const big = buildModel('vig-ti-mlgcn', { size: 224, numLabels: 80 });
    const names = big.namedParameters().map(([n]) => n).concat(big.namedBuffers().map(([n]) => n));
    expect(names.some((n) => n.startsWith('prediction.'))).toBe(false);
    expect(names.filter((n) => n.startsWith('gcn.')).sort()).toEqual(['gcn.adj', 'gcn.embeddings', 'gcn.gc1.weight', 'gcn.gc2.weight']);
    // ViG-Ti trunk (spec §3.9: 10 714 376 with the ImageNet head) − head + gc1 (80×1024) + gc2 (1024×384).
    const head = 384 * 1024 + 1024 + 2 * 1024 + 1024 * 1000 + 1000;
    expect(parameterCounts(big)).toEqual({ trainable: 10_714_376 - head + 80 * 1024 + 1024 * 384, frozen: 1_771_938 });
    big.release();
  });

  it("--mlgcn-adj reaches the head: buildModel's mlgcnAdj picks the graph (default official)", async () => {
    const skewed = Array.from({ length: 30 }, (_, i) => Int8Array.from({ length: S }, (_, c) => (c === 0 || (i + c) % 4 === 0 ? 1 : 0)));
    for (const mode of [undefined, ...ADJACENCY_MODES]) {
      const m = buildModel('vig-ti-mlgcn', { size: 64, numLabels: S, trainLabels: skewed, mlgcnAdj: mode });
      const adj = await (m as unknown as { gcn: MlGcnHead }).gcn.adj.toArray();
      expect(relErr(adj, Float32Array.from(labelCorrelation(skewed, S, { mode })))).toBe(0);
      m.release();
    }
  });

  it('a checkpoint restores the graph and the embeddings into a model built without labels', async () => {
    expect(checkpointLabelEmbeddings(await buildModelState('gkgnet-tiny'))).toBeUndefined();
    const emb: LabelEmbeddings = { kind: 'given', vectors: randArr([S, 5], 31), dim: 5 };
    const a = buildModel('gkgnet-tiny-mlgcn', { size: 64, numLabels: S, seed: 1, trainLabels, labelEmbeddings: emb }).eval();
    const state: Map<string, StateEntry> = await a.stateDict();
    // What inference does: embeddings from the checkpoint, identity graph until loaded.
    const restored = checkpointLabelEmbeddings(state);
    expect(restored).toEqual({ kind: 'given', dim: 5, vectors: emb.kind === 'given' ? emb.vectors : null });
    const b = buildModel('gkgnet-tiny-mlgcn', { size: 64, numLabels: S, seed: 2, labelEmbeddings: restored });
    expect(Array.from(await (b as unknown as { gcn: MlGcnHead }).gcn.adj.toArray())).toEqual(Array.from(labelCorrelation([], S), Math.fround));
    b.loadStateDict(state);
    b.eval();
    const [ya, yb] = tidy(() =>
      noGrad(() => {
        const x = img();
        return [a.forward(x), b.forward(x)];
      }),
    );
    expect(Array.from(await yb.toArray())).toEqual(Array.from(await ya.toArray()));
    ya.release();
    yb.release();
    a.release();
    b.release();
  });
});

async function buildModelState(name: string): Promise<Map<string, StateEntry>> {
  const m = buildModel(name, { size: 64, numLabels: 6 });
  const s = await m.stateDict();
  m.release();
  return s;
}

describe('webvig train with an ML-GCN head', () => {
  it('--mlgcn-adj and the default label vectors reach config.json and the checkpoint; resume and eval rebuild the same head', async () => {
    // A CSV set whose class names are VOC's (spelt as VOC spells them): 8 train, 4 val images of 64 px.
    const dir = join(tmp, 'vocnames');
    mkdirSync(join(dir, 'img'), { recursive: true });
    const names = ['person', 'sofa', 'tvmonitor'];
    let csv = 'path,labels,split\n';
    for (let i = 0; i < 12; i++) {
      const file = `img/${i}.png`;
      await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 40 * (i % 6), g: 20 * i, b: 100 } } }).png().toFile(join(dir, file));
      csv += `${file},${names.filter((_, c) => (i + c) % 3 !== 0).join(';')},${i < 8 ? 'train' : 'val'}\n`;
    }
    writeFileSync(join(dir, 'set.csv'), csv);
    const out = join(tmp, 'mlgcn-run');
    const common = ['--batch', '4', '--workers', '0', '--log-every', '1', '--cache-root', tmp];
    const io = () => {
      const o = { stdout: '', stderr: '' };
      return { o, io: { stdout: (x: string) => void (o.stdout += x), stderr: (x: string) => void (o.stderr += x) } };
    };
    const a = io();
    let code = await main(['train', '--data', `csv:${join(dir, 'set.csv')}`, '--model', 'gkgnet-tiny-mlgcn', '--mlgcn-adj', 'paper', '--epochs', '1', ...common, '--out', out], a.io);
    expect(a.o.stderr).toBe('');
    expect(code).toBe(0);
    expect(a.o.stdout).toMatch(/^ml-gcn: paper label graph \(--mlgcn-adj\), label embeddings: GloVe 300-d vectors of the VOC class names \(shipped, as ML-GCN used them\)$/m);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model: 'gkgnet-tiny-mlgcn', mlgcnAdj: 'paper', label_embeddings: 'glove-voc', classes: names });
    const ck = await readSafetensors(join(out, 'last.safetensors'));
    const ds = await openDataset(`csv:${join(dir, 'set.csv')}`, { root: tmp });
    expect(relErr(ck.tensors.get('gcn.adj')!.data, Float32Array.from(labelCorrelation(ds.train.map((x) => x.labels), 3, { mode: 'paper' })))).toBe(0);
    const voc = gloveTable('voc');
    expect(Array.from(ck.tensors.get('gcn.embeddings')!.data)).toEqual(Array.from(Float32Array.from(names.flatMap((n) => voc.vectors[voc.classes.indexOf(n)]))));
    // Resume keeps the run's graph (an --mlgcn-adj that contradicts it is refused) and eval rebuilds it.
    const refused = io();
    expect(await main(['train', '--resume', out, '--epochs', '2', '--mlgcn-adj', 'official', ...common], refused.io)).toBe(2);
    expect(refused.o.stderr).toMatch(/^webvig train: --mlgcn-adj official contradicts the resumed run's mlgcn-adj paper/);
    const b = io();
    code = await main(['train', '--resume', out, '--epochs', '2', ...common], b.io);
    expect(b.o.stderr).toBe('');
    expect(code).toBe(0);
    expect(b.o.stdout).toMatch(/^ml-gcn: paper label graph/m);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({ mlgcnAdj: 'paper', label_embeddings: 'glove-voc' });
    const c = io();
    code = await main(['eval', '--weights', join(out, 'last.safetensors'), '--data', `csv:${join(dir, 'set.csv')}`, '--json', '--workers', '0', '--cache-root', tmp], c.io);
    expect(c.o.stderr).toBe('');
    expect(code).toBe(0);
    // A bad value is a usage error naming the flag.
    const d = io();
    expect(await main(['train', '--mlgcn-adj', 'rows'], d.io)).toBe(2);
    expect(d.o.stderr).toMatch(/--mlgcn-adj must be one of official, paper, got 'rows'/);
  }, 120_000);
});
