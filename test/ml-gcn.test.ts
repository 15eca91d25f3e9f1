// ML-GCN: the label-correlation matrix (hand-computed cases and a float64 matrix re-implementation),
// the two-layer GCN head against a float64 CPU forward and backward, label-embedding files, and the
// `<model>-mlgcn` factory variants wired on ViG (replacing the head) and GKGNet / ML-ViG (added).
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Tensor, F, backward, noGrad, tidy } from '../kernels/index.js';
import { writeSafetensors } from '../engine/safetensors.js';
import { labelCorrelation, readLabelEmbeddings, checkpointLabelEmbeddings, MlGcnHead, VigMlGcn, type LabelEmbeddings } from '../models/ml-gcn.js';
import { buildModel, parameterCounts, tinyGkgnetConfig } from '../models/factory.js';
import { seedInit } from '../models/layers.js';
import type { Module, StateEntry } from '../models/module.js';
import { rng, randArr, matmulRef, expectClose, relErr } from './ref.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-mlgcn-'));

beforeAll(async () => {
  await init();
});

/** Independent float64 formulation with whole matrices: M = YᵀY, P = M / N, binarise, re-weight, normalise. */
function correlationRef(labels: number[][], S: number, tau: number, p: number): Float64Array {
  const Y = labels.map((l) => l.map((v) => (v === 1 ? 1 : 0)));
  const M = Array.from({ length: S }, (_, i) => Array.from({ length: S }, (_, j) => Y.reduce((s, y) => s + y[i] * y[j], 0)));
  const A = M.map((row, i) => row.map((m, j) => (i !== j && M[i][i] > 0 && m / M[i][i] >= tau ? 1 : 0)));
  const Ap = A.map((row, i) => {
    const n = row.reduce((a, b) => a + b, 0);
    return row.map((a, j) => (i === j ? 1 - p : n ? (p * a) / n : 0));
  });
  const d = Ap.map((row) => row.reduce((a, b) => a + b, 0));
  const out = new Float64Array(S * S);
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) out[i * S + j] = (1 / Math.sqrt(d[i])) * Ap[j][i] * (1 / Math.sqrt(d[j]));
  return out;
}

const int8 = (rows: number[][]) => rows.map((r) => Int8Array.from(r));

describe('labelCorrelation', () => {
  // N = (2, 2, 4); P(1|0) = P(2|0) = P(0|1) = 1/2, P(0|2) = 1/4, others 0; −1 (difficult) is absent.
  const labels = [[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [0, -1, 1]];

  it('matches hand-computed matrices (τ binarisation incl. P = τ, p re-weighting, D^-1/2 A′ᵀ D^-1/2)', () => {
    // τ = 0.4, p = 0.2: A′ = [[.8,.1,.1],[.2,.8,0],[0,0,.8]], D = (1, 1, .8).
    const a = labelCorrelation(int8(labels), 3, 0.4, 0.2);
    const want = [0.8, 0.2, 0, 0.1, 0.8, 0, 0.1 / Math.sqrt(0.8), 0, 1];
    expect(relErr(a, want)).toBeLessThan(1e-15);
    // p = 0.3: A′ = [[.7,.15,.15],[.3,.7,0],[0,0,.7]], D = (1, 1, .7).
    expect(relErr(labelCorrelation(int8(labels), 3, 0.4, 0.3), [0.7, 0.3, 0, 0.15, 0.7, 0, 0.15 / Math.sqrt(0.7), 0, 1])).toBeLessThan(1e-15);
    // τ = 0.5 keeps P = 0.5 (≥); τ = 0.51 drops every edge: A′ = 0.8·I, normalised to I.
    expect(relErr(labelCorrelation(int8(labels), 3, 0.5, 0.2), want)).toBeLessThan(1e-15);
    expect(Array.from(labelCorrelation(int8(labels), 3, 0.51, 0.2))).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    // No labels at all: the identity (what a model gets before loadStateDict restores `adj`).
    expect(Array.from(labelCorrelation([], 2))).toEqual([1, 0, 0, 1]);
    // Counting −1 as present would give N1 = 3 and drop edge 1 → 0.
    expect(labelCorrelation(int8(labels.map((l) => l.map((v) => Math.abs(v)))), 3, 0.4, 0.2)[1]).toBe(0);
  });

  it('equals a float64 matrix formulation on random label sets (absent classes, difficult labels)', () => {
    const r = rng(11);
    for (const [S, N, tau, p] of [[7, 40, 0.4, 0.2], [5, 9, 0.3, 0.25], [1, 4, 0.4, 0.2], [12, 100, 0.15, 0.1]]) {
      const rows = Array.from({ length: N }, () => Array.from({ length: S }, (_, c) => (c === S - 1 && S > 1 ? 0 : r() < 0.35 ? 1 : r() < 0.1 ? -1 : 0)));
      expect(relErr(labelCorrelation(int8(rows), S, tau, p), correlationRef(rows, S, tau, p)), `S=${S}`).toBeLessThan(1e-14);
    }
    expect(() => labelCorrelation([Int8Array.of(1, 0)], 3)).toThrow('labelCorrelation: a label vector has 2 entries, expected 3');
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
