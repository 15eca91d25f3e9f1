// ML-ViG (spec §5): the factory variants build and run, backward reaches every trainable parameter,
// the label-embedding gradient agrees with finite differences, the parameter counts follow from
// the architecture (and the spec's ViG-S trunk count), and the MLG block's PLG step computes
// h + [h ‖ max_j (h − x_j)]·W with the paper's sign over the cosine-nearest patches.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, backward, noGrad, tidy, keep } from '../kernels/index.js';
import { buildModel, parameterCounts, tinyMlVigConfig } from '../models/factory.js';
import { MlVig, MlgBlock, mlVigConfig, type MlVigConfig } from '../models/ml-vig.js';
import { randArr, expectClose } from './ref.js';

beforeAll(async () => {
  await init();
});

const S = 5;
const B = 2;
const input = () => Tensor.from(randArr([B, 3, 64, 64], 3, -2, 2), [B, 3, 64, 64]);
const weights = () => Tensor.from(randArr([B, S], 4), [B, S]);

/** Σ logits ⊙ G, a loss whose gradient reaches every logit with a fixed random weight. */
function lossOf(model: MlVig): Tensor {
  return F.sum(F.mul(model.forward(input()), weights()));
}

/** Trainable parameters of ML-ViG by the architecture, given the trunk's count (spec §5). */
function expectedCount(cfg: MlVigConfig, trunk: number): number {
  const ch = cfg.channels;
  const S_ = cfg.numLabels;
  let n = trunk + S_ * ch[0];
  ch.forEach((C, i) => {
    // plg Linear(2C, C), llg_adj S×S, FFN: conv C→4C + BN(4C), conv 4C→C + BN(C).
    const mlg = 2 * C * C + C + S_ * S_ + (4 * C * C + 4 * C + 8 * C) + (4 * C * C + C + 2 * C);
    n += cfg.mlgBlocks[i] * mlg;
    if (i < 3) n += C * ch[i + 1] + ch[i + 1];
  });
  return n + 2 * (ch[3] * S_ + S_);
}

describe('ML-ViG', () => {
  it('mlvig-tiny builds, gives B×S logits, and backward reaches every trainable parameter', async () => {
    const m = buildModel('mlvig-tiny', { size: 64, numLabels: S, seed: 1 }) as MlVig;
    expect(m).toBeInstanceOf(MlVig);
    expect(m.config).toMatchObject({ channels: [8, 16, 32, 48], blocks: [1, 1, 1, 1], k: 4, maxDilation: 1, kPlg: 4, mlgBlocks: [1, 1, 1, 1], groups: 1 });
    const names = m.trainableParameters().map(([n]) => n);
    for (const k of ['label_embed', 'mlg.3.0.plg.weight', 'mlg.0.0.llg_adj', 'mlg.2.0.llg_ffn.fc2.1.bias', 'label_proj.2.weight', 'head.fc1.weight', 'head.fc2.bias', 'pos_embed']) {
      expect(names, k).toContain(k);
    }
    for (const mode of ['eval', 'train'] as const) {
      m.train(mode === 'train');
      tidy(() => {
        const out = m.forward(input());
        expect(out.shape).toEqual([B, S]);
        backward(F.sum(F.mul(out, weights())));
      });
      for (const [n, p] of m.trainableParameters()) {
        expect(p.grad, `${mode}: ${n}`).not.toBeNull();
        const g = await p.grad!.toArray();
        expect(g.every(Number.isFinite), `${mode}: ${n} finite`).toBe(true);
        // In train mode a conv bias right before a BatchNorm has an analytically zero gradient.
        if (mode === 'eval') expect(Math.max(...Array.from(g, Math.abs)), `${n} non-zero`).toBeGreaterThan(0);
        p.grad!.release();
        p.grad = null;
      }
    }
    m.release();
  });

  it('d loss / d label_embed agrees with central finite differences (float32, eps 1e-2, within 5e-3)', async () => {
    // Train mode (batch statistics keep the activations at their working scale; no drop path).
    const m = (buildModel('mlvig-tiny', { size: 64, numLabels: S, seed: 2 }) as MlVig).train();
    // Neighbour choices are piecewise constant: record them at the unperturbed point and replay them
    // in every forward, so that the differences see the smooth function autograd differentiates
    // (the PLG max itself, max_j (h − x_j), keeps its argmax when only h moves).
    const chosen = new Map<string, Tensor>();
    m.setTracer({ ownNeighbours: (path, indices) => chosen.set(path, keep(indices.view(indices.shape))) });
    tidy(() => backward(lossOf(m)));
    m.setTracer(null);
    expect([...chosen.keys()]).toContain('mlg.0.0.plg_knn');
    const grad = await m.labelEmbed.grad!.toArray();
    const table = await m.labelEmbed.toArray();
    const eps = 1e-2;
    const lossAt = async (entry: number, delta: number) => {
      const t = Float32Array.from(table);
      t[entry] += delta;
      m.labelEmbed.write(t);
      const l = tidy(() => noGrad(() => lossOf(m)));
      const v = await l.item();
      l.release();
      return v;
    };
    m.setTracer({ neighbours: (path) => chosen.get(path) ?? null });
    try {
      const C0 = m.labelEmbed.shape[1];
      const scale = Math.max(...Array.from(grad, Math.abs));
      // Entries of three labels, first, middle and last channels.
      for (const entry of [0, 1 * C0 + 3, 2 * C0 + 4, (S - 1) * C0 + C0 - 1]) {
        const fd = ((await lossAt(entry, eps)) - (await lossAt(entry, -eps))) / (2 * eps);
        const err = Math.abs(fd - grad[entry]) / Math.max(Math.abs(grad[entry]), 0.1 * scale);
        expect(err, `entry ${entry}: finite difference ${fd} vs autograd ${grad[entry]}`).toBeLessThan(5e-3);
      }
    } finally {
      m.setTracer(null);
      for (const t of chosen.values()) t.release();
    }
    m.labelEmbed.write(table);
    m.release();
  });

  it('parameter counts follow from the architecture (tiny: own trunk; S at 224: the spec’s ViG-S trunk)', () => {
    const tiny = buildModel('mlvig-tiny', { size: 64, numLabels: S });
    // The tiny trunk's own count: every trainable tensor outside the label stream and head.
    const trunkCount = tiny.trainableParameters().filter(([n]) => /^(stem|pos_embed|backbone)\b/.test(n)).reduce((a, [, t]) => a + t.size, 0);
    expect(parameterCounts(tiny).trainable).toBe(expectedCount(tinyMlVigConfig(64, S), trunkCount));
    tiny.release();
    // ML-ViG-S at 224, 80 labels: the spec's Pyramid ViG-S count (27 251 912) without its ImageNet head.
    const s = buildModel('mlvig-s', { size: 224, numLabels: 80 });
    const vigHead = 640 * 1024 + 1024 + 2 * 1024 + 1024 * 1000 + 1000;
    const counts = parameterCounts(s);
    expect(counts.trainable).toBe(expectedCount(mlVigConfig(224, 80), 27_251_912 - vigHead));
    expect(counts.frozen).toBe(1_771_938);
    expect(counts.trainable).toBe(40_298_800);
    s.release();
  });
});

describe('MLG block', () => {
  /** An MLG block reduced to h + PLG: plg = [0 | I] (the relative part), A = 0, FFN output BN zeroed. */
  async function plgOnly(C: number, k: number): Promise<MlgBlock> {
    const blk = new MlgBlock(C, 2, k, 0);
    const w = new Float32Array(C * 2 * C);
    for (let c = 0; c < C; c++) w[c * 2 * C + C + c] = 1;
    blk.plg.weight.write(w);
    blk.plg.bias.write(new Float32Array(C));
    blk.adj.write(new Float32Array(4));
    const bn = blk.ffn.fc2.layers[1] as unknown as { weight: Tensor; bias: Tensor };
    bn.weight.write(new Float32Array(C));
    bn.bias.write(new Float32Array(C));
    return blk.eval();
  }

  async function run(blk: MlgBlock, h: number[][], patches: number[][]): Promise<Float32Array> {
    const C = h[0].length;
    const N = patches.length;
    const chw = new Float32Array(C * N);
    patches.forEach((p, j) => p.forEach((v, c) => (chw[c * N + j] = v)));
    // The block runs channels first (B×C×S); h and the result are S×C.
    const out = tidy(() =>
      noGrad(() => F.transpose(blk.forward(F.transpose(Tensor.from(h.flat(), [1, h.length, C]), 1, 2), Tensor.from(chw, [1, C, N, 1])), 1, 2)),
    );
    const v = await out.toArray();
    out.release();
    return v;
  }

  it('LLG: H̄ = A·H + H, labels mixed by the learnable S×S matrix (row s of A weighs the labels t)', async () => {
    const S = 3;
    const C = 4;
    const blk = new MlgBlock(C, S, 2, 0);
    blk.plg.weight.write(new Float32Array(C * 2 * C)); // PLG adds nothing
    blk.plg.bias.write(new Float32Array(C));
    const A = [[0.5, -1, 2], [0, 0.25, 0], [3, 0, -0.5]]; // not symmetric: Aᵀ would give another result
    blk.adj.write(Float32Array.from(A.flat()));
    const bn = blk.ffn.fc2.layers[1] as unknown as { weight: Tensor; bias: Tensor };
    bn.weight.write(new Float32Array(C)); // the FFN adds nothing
    bn.bias.write(new Float32Array(C));
    blk.eval();
    const h = [[1, -2, 0.5, 3], [0, 1, -1, 2], [2, 0, 1, -1]];
    const got = await run(blk, h, [[0.5, 1, 2, -1], [2, -3, 0, 1], [-1, 0, 1, 4]]);
    const want = h.flatMap((row, s) => row.map((v, c) => v + A[s].reduce((acc, a, t) => acc + a * h[t][c], 0)));
    expectClose(got, want, 1e-6, 'h + A·h');
    blk.release();
  });

  it('PLG: R = max_j (h − x_j) over the label’s cosine-nearest patches (centre minus neighbour)', async () => {
    // Every patch a neighbour (k = N = 3): R = h − min_j x_j.
    const h = [[1, -2, 0.5, 3], [0, 1, -1, 2]];
    const x = [[0.5, 1, 2, -1], [2, -3, 0, 1], [-1, 0, 1, 4]];
    const all = await run(await plgOnly(4, 3), h, x);
    const want = h.flat().map((v, i) => {
      const c = i % 4;
      return v + Math.max(...x.map((p) => v - p[c]));
    });
    expectClose(all, want, 1e-6, 'h + max_j (h − x_j)');
    // The code's ViG sign (neighbour minus centre) would give something else.
    const other = h.flat().map((v, i) => v + Math.max(...x.map((p) => p[i % 4] - v)));
    expect(Math.max(...all.map((v, i) => Math.abs(v - other[i])))).toBeGreaterThan(0.5);

    // k = 2 of 6 patches: label 0 ∥ e0 picks p0, p1; label 1 ∥ e2 + e3 picks p3, p5.
    const pats = [[2, 0, 0, 0], [0.5, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 3]];
    const hk = [[1, 0, 0, 0], [0, 0, 1, 1]];
    const got = await run(await plgOnly(4, 2), hk, pats);
    const near = [[0, 1], [3, 5]];
    const wantK = hk.flatMap((hv, s) => hv.map((v, c) => v + Math.max(...near[s].map((j) => v - pats[j][c]))));
    expect(Array.from(got)).toEqual(wantK.map(Math.fround));
    expect(wantK).toEqual([1.5, 0, 0, 0, 0, 0, 2, 2]);
  });
});
