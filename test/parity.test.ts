// Every shared PyTorch fixture (and the official ML-GCN one) through the parity harness (the same code as `npm run parity`),
// in eval and train mode: outputs, intermediates, gradients, BN buffer updates and KNN sets.
import { describe, it, expect, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { init } from '../kernels/index.js';
import { parityFile } from '../train/parity/parity.js';

beforeAll(async () => {
  await init();
});

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));

describe('parity with the official PyTorch modules', () => {
  for (const name of ['gkg_block_xy', 'gkg_block_self', 'vig_block', 'gkg_cross', 'losses', 'metrics', 'mlgcn', 'gkg_net', 'vig_net']) {
    it(name, async () => {
      const reports = await parityFile(fixture(name));
      expect(reports.length).toBeGreaterThan(0);
      for (const r of reports) {
        const failed = r.checks.filter((c) => !c.pass).map((c) => `${c.tensor} ${c.rel_err.toExponential(2)} > ${c.tol}`);
        expect(failed, `${name} [${r.mode}]`).toEqual([]);
        expect(r.knn.mismatched, `${name} [${r.mode}] knn rows`).toBeLessThanOrEqual(r.knn.allowed);
        expect(r.pass).toBe(true);
      }
    });
  }
});
