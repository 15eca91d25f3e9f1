// Parameter counts equal the spec's tables (§3.9 Pyramid ViG at 224 with the ImageNet head, §4.6
// GKGNet with S = 80), counted as PyTorch does (trainable / frozen relative_pos values).
import { describe, it, expect, beforeAll } from 'vitest';
import { init } from '../kernels/index.js';
import { buildModel, parameterCounts } from '../models/factory.js';

beforeAll(async () => {
  await init();
});

const CASES: [string, number, number, number, number][] = [
  ['vig-ti', 224, 1000, 10_714_376, 1_771_938],
  ['vig-s', 224, 1000, 27_251_912, 1_771_938],
  ['vig-m', 224, 1000, 49_525_832, 2_156_098],
  ['vig-b', 224, 1000, 92_980_328, 2_232_930],
  ['gkgnet-s', 224, 80, 33_265_200, 1_771_938],
  ['gkgnet-s', 448, 80, 34_017_840, 28_351_008],
  ['gkgnet-t', 224, 80, 12_098_704, 1_771_938],
  ['gkgnet-t', 448, 80, 12_550_288, 28_351_008],
];

describe('parameter counts (spec §3.9, §4.6)', () => {
  for (const [name, size, labels, trainable, frozen] of CASES) {
    it(`${name} at ${size}, ${labels} labels: ${trainable} / ${frozen}`, () => {
      const m = buildModel(name, { size, numLabels: labels });
      try {
        expect(parameterCounts(m)).toEqual({ trainable, frozen });
      } finally {
        m.release();
      }
    });
  }
});
