// Class-balanced repetition (training.md §2, mmcls ClassBalancedDataset).
import type { Sample } from './dataset.js';

/**
 * The epoch's index list: sample i repeated ⌈r(i)⌉ times, r(i) = max over its positive classes of
 * max(1, √(threshold / f(c))), f(c) the fraction of samples where class c is positive. Samples
 * without positives appear once. Deterministic and in dataset order; the loader shuffles it.
 */
export function classBalancedIndices(samples: readonly Sample[], threshold = 0.01): number[] {
  const positives = (s: Sample) => [...s.labels.keys()].filter((c) => s.labels[c] === 1);
  const counts = new Map<number, number>();
  for (const s of samples) for (const c of positives(s)) counts.set(c, (counts.get(c) ?? 0) + 1);
  const classRepeat = (c: number) => Math.max(1, Math.sqrt(threshold / (counts.get(c)! / samples.length)));
  return samples.flatMap((s, i) => new Array<number>(Math.ceil(Math.max(1, ...positives(s).map(classRepeat)))).fill(i));
}
