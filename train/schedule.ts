// Learning-rate schedules, evaluated per iteration (mmcv semantics, spec training.md §5).

export interface ScheduleConfig {
  lr: number;
  /** Linear warm-up length in iterations (0: none) and its start ratio (mmcv warmup_ratio). */
  warmupIters: number;
  warmupRatio: number;
  /** 'step': multiply by `gamma` at each epoch in `steps`; 'cosine': cosine to `minLr` over all iterations. */
  policy: 'step' | 'cosine' | 'constant';
  steps?: number[];
  gamma?: number;
  minLr?: number;
  itersPerEpoch: number;
  epochs: number;
}

/** The learning rate at iteration `iter` (0-based, counted over the whole run). */
export function learningRate(c: ScheduleConfig, iter: number): number {
  const epoch = Math.floor(iter / Math.max(1, c.itersPerEpoch));
  let lr = c.lr;
  if (c.policy === 'step') {
    for (const s of c.steps ?? []) if (epoch >= s) lr *= c.gamma ?? 0.1;
  } else if (c.policy === 'cosine') {
    const total = Math.max(1, c.epochs * c.itersPerEpoch);
    const min = c.minLr ?? 0;
    lr = min + 0.5 * (c.lr - min) * (1 + Math.cos((Math.PI * Math.min(iter, total)) / total));
  }
  if (iter < c.warmupIters) {
    // mmcv linear warm-up: lr · (1 − (1 − i/W)(1 − ratio)), starting at ratio · lr.
    lr *= 1 - (1 - iter / c.warmupIters) * (1 - c.warmupRatio);
  }
  return lr;
}
