// GKGNet's label stream runs channels first (B×C×S, as the patches and every op inside GrapherLabel
// want it): a training step transposes the label embeddings only on the way in and out, where the
// official layout (B×S×C) would transpose around every GrapherLabel and label FFN. The numerics are
// pinned by the PyTorch fixtures (parity.test.ts: gkg_net's intermediates, gkg_cross).
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { init, device, Tensor, Rng, backward, tidy } from '../kernels/index.js';
import { buildModel } from '../models/factory.js';
import { gkgnetLoss } from '../models/losses.js';

beforeAll(async () => {
  await init();
});

afterEach(() => {
  device().disableProfiler();
});

describe('GKGNet label stream', () => {
  it('a training step of gkgnet-tiny permutes the labels twice forward and twice backward, and only the labels', async () => {
    const model = buildModel('gkgnet-tiny', { size: 64, numLabels: 10, dropPath: 0.1, seed: 0 });
    model.train();
    model.setGenerator(new Rng(1));
    const x = Tensor.randn([2, 3, 64, 64], 1);
    const target = Tensor.from(Float32Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? 1 : 0)), [2, 10]);
    const profiler = device().enableProfiler({ bySite: true });
    try {
      const loss = tidy(() => {
        const { loss } = gkgnetLoss(model.forward(x), target);
        backward(loss);
        return loss;
      });
      expect(Number.isFinite((await loss.toArray())[0])).toBe(true);
      loss.release();
      const copies = (await profiler.report()).filter((r) => r.kernel.startsWith('copy.wgsl'));
      const sites = copies.map((r) => r.kernel.split(' ← ')[1]).sort();
      // Labels [2, 10, C]: the table in (C = 8, stage 0) and the embeddings out (C = 48, stage 3).
      expect(sites).toEqual(['permute [2,10,48] -> [2,48,10]', 'permute [2,10,8] -> [2,8,10]', 'permute [2,48,10] -> [2,10,48]', 'permute [2,8,10] -> [2,10,8]']);
      expect(copies.every((r) => r.calls === 1)).toBe(true);
    } finally {
      for (const t of [x, target]) t.release();
      model.release();
    }
  });
});
