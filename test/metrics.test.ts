import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../train/safetensors-file.js';
import type { TensorRecord } from '../engine/safetensors.js';
import {
  averagePrecision,
  cocoMetrics,
  MetricAccumulator,
  mmclsMetrics,
  type CocoMetrics,
  type MmclsMetrics,
} from '../train/metrics.js';

const N = 60;
const S = 12;
let tensors: Map<string, TensorRecord>;
let pred: Float32Array;
let target: Int32Array;
let targetDifficult: Int32Array;

beforeAll(async () => {
  ({ tensors } = await readSafetensors(fileURLToPath(new URL('./fixtures/metrics.safetensors', import.meta.url))));
  pred = tensors.get('input.pred')!.data as Float32Array;
  target = tensors.get('input.target')!.data as Int32Array;
  targetDifficult = tensors.get('input.target_with_difficult')!.data as Int32Array;
});

/** Float32-stored reference values: 1e-5 relative, with an absolute floor for values near 0. */
function expectClose(actual: number, expected: number, what: string) {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-5 * Math.max(Math.abs(expected), 1e-2));
}

/** Maps a stored name (without its group prefix) to the computed value(s). */
function cocoValue(m: CocoMetrics, key: string): number | number[] {
  if (key === 'ap_per_class') return m.apPerClass;
  const v = m[key as keyof CocoMetrics];
  if (typeof v !== 'number') throw new Error(`no computed value for gkg_coco.${key}`);
  return v;
}

function mmclsValue(m: MmclsMetrics, key: string): number | number[] {
  if (key === 'mAP') return m.mAP;
  if (key === 'ap_per_class') return m.apPerClass;
  const [block, name] = key.startsWith('thr0.5.') ? [m.thr, key.slice(7)] : [m.top3, key.replace(/^top3\./, '')];
  const v = block[name as keyof typeof block];
  if (typeof v !== 'number') throw new Error(`no computed value for ${key}`);
  return v;
}

function checkGroup(prefix: string, lookup: (key: string) => number | number[]) {
  const names = [...tensors.keys()].filter((n) => n.startsWith(`${prefix}.`));
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) {
    const stored = tensors.get(name)!.data;
    const got = lookup(name.slice(prefix.length + 1));
    const values = typeof got === 'number' ? [got] : got;
    expect(values.length, name).toBe(stored.length);
    values.forEach((v, i) => expectClose(v, stored[i]!, `${name}[${i}]`));
  }
  return names.length;
}

describe('metrics fixture', () => {
  it('matches every gkg_coco value (GKGNet get_coco_metrics, fractions)', () => {
    const m = cocoMetrics(pred, target, N, S);
    expect(checkGroup('gkg_coco', (k) => cocoValue(m, k))).toBe(14);
  });

  it('matches every mmcls value (percent; AP per class as fractions)', () => {
    const m = mmclsMetrics(pred, target, N, S);
    expect(checkGroup('mmcls', (k) => mmclsValue(m, k))).toBe(14);
  });

  it('matches every mmcls_difficult value', () => {
    const m = mmclsMetrics(pred, targetDifficult, N, S);
    expect(checkGroup('mmcls_difficult', (k) => mmclsValue(m, k))).toBe(14);
  });

  it('handles the documented edge cases', () => {
    const m = cocoMetrics(pred, target, N, S);
    expect(m.apPerClass[S - 2]).toBe(0); // class without positives
    // Rows 3–5 tie at their 3rd score ≥ 0.5: GKGNet keeps 4 labels there, mmcls exactly 3.
    expect(pred[3 * S + 2]).toBe(pred[3 * S + 3]);
    expect(pred[3 * S + 3]! >= 0.5).toBe(true);
    expect(pred[7 * S + 4]).toBe(0.5); // counts as positive at the 0.5 threshold
  });
});

describe('averagePrecision', () => {
  it('follows the two definitions', () => {
    const scores = new Float32Array([0.9, 0.8, 0.7, 0.6]);
    // positives at ranks 1 and 3: (1/1 + 2/3) / (2 + 1e-8)
    expect(averagePrecision(scores, new Int8Array([1, 0, 1, 0]))).toBeCloseTo(5 / 3 / (2 + 1e-8), 12);
    // mmcls skips the difficult image in the precision denominators: (1/1 + 2/2) / 2
    expect(averagePrecision(scores, new Int8Array([1, -1, 1, 0]), 'mmcls')).toBeCloseTo(1, 12);
    // GKGNet treats −1 like 0
    expect(averagePrecision(scores, new Int8Array([1, -1, 1, 0]), 'gkgnet')).toBeCloseTo(5 / 3 / (2 + 1e-8), 12);
    expect(averagePrecision(scores, new Int8Array([0, 0, 0, 0]), 'mmcls')).toBe(0);
  });

  it('breaks score ties like the upstream numpy sorts', () => {
    const tied = new Float32Array([0.5, 0.5]);
    const t = new Int8Array([1, 0]);
    expect(averagePrecision(tied, t, 'gkgnet')).toBeCloseTo(0.5, 6); // argsort()[::-1]: later image first
    expect(averagePrecision(tied, t, 'mmcls')).toBeCloseTo(1, 6); // argsort(-pred): earlier image first
  });
});

describe('MetricAccumulator', () => {
  it('gives the same result for uneven batches as for one call', () => {
    const acc = new MetricAccumulator(S, 4); // small capacity: forces several doublings
    const batches = [7, 0, 23, 1, 29];
    let row = 0;
    for (const rows of batches) {
      // padded batch buffers (one spare row) as a fixed-size loader would hand over
      const p = new Float32Array((rows + 1) * S);
      const t = new Float32Array((rows + 1) * S);
      p.set(pred.subarray(row * S, (row + rows) * S));
      t.set(targetDifficult.subarray(row * S, (row + rows) * S));
      acc.add(p, t, rows);
      row += rows;
    }
    expect(row).toBe(N);
    expect(acc.rows).toBe(N);
    expect(acc.coco()).toEqual(cocoMetrics(pred, targetDifficult, N, S));
    expect(acc.mmcls()).toEqual(mmclsMetrics(pred, targetDifficult, N, S));

    acc.reset();
    acc.add(pred.subarray(0, 10 * S), target.subarray(0, 10 * S), 10);
    expect(acc.mmcls()).toEqual(mmclsMetrics(pred.slice(0, 10 * S), target.slice(0, 10 * S), 10, S));
  });

  it('rejects short batches and non-label targets', () => {
    const acc = new MetricAccumulator(S);
    expect(() => acc.add(new Float32Array(S), new Int8Array(S), 2)).toThrow(/2 rows/);
    expect(() => acc.add(new Float32Array(S), new Float32Array(S).fill(0.5), 1)).toThrow(/0\.5/);
    expect(acc.rows).toBe(0);
  });
});
