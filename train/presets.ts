// Training presets. `gkgnet-s-576` is the official GKGNet COCO recipe (spec training.md); `tiny` is
// a small GKGNet at low resolution for 1–2k-image, ~10-class datasets on a CPU-only machine.
import type { ScheduleConfig } from './schedule.js';
import type { PRESET_AUGMENT } from './data/transforms.js';

export interface TrainPreset {
  model: string;
  size: number;
  /**
   * Input side for the region models (IA-GCN, GM-MLIC), whose instances are the trunk's final-map
   * cells: 2×2 at 64 px on the tiny trunk, 3×3 at 96 px. Default: `size`.
   */
  regionSize?: number;
  /** 'auto': sized to the training set, see autoEpochs(). */
  epochs: number | 'auto';
  batch: number;
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  dropPath: number;
  /** Warm-up length: `warmupEpochs` epochs, or `warmupIters` steps when given (at most one epoch). */
  schedule: Pick<ScheduleConfig, 'policy' | 'steps' | 'gamma' | 'warmupRatio'> & { warmupEpochs: number; warmupIters?: number };
  /** Initialise the head's biases so that the first predictions are the training set's label frequencies. */
  priorBias?: boolean;
  augment: keyof typeof PRESET_AUGMENT;
  classBalance: boolean;
  /** Input normalisation (RGB, 0–255 scale). */
  mean: [number, number, number];
  std: [number, number, number];
}

const IMAGENET = { mean: [123.675, 116.28, 103.53] as [number, number, number], std: [58.395, 57.12, 57.375] as [number, number, number] };

export const PRESETS: Record<string, TrainPreset> = {
  'gkgnet-s-576': {
    model: 'gkgnet-s',
    size: 576,
    epochs: 80,
    batch: 16,
    lr: 1e-4,
    weightDecay: 0.05,
    maxGradNorm: 5,
    dropPath: 0.1,
    schedule: { policy: 'step', steps: [10, 50], gamma: 0.1, warmupRatio: 1e-3, warmupEpochs: 5 },
    augment: 'official',
    classBalance: true,
    ...IMAGENET,
  },
  tiny: {
    model: 'gkgnet-tiny',
    size: 64,
    regionSize: 96,
    epochs: 'auto',
    batch: 32,
    lr: 5e-3,
    weightDecay: 0.05,
    maxGradNorm: 5,
    dropPath: 0,
    schedule: { policy: 'cosine', warmupRatio: 0.1, warmupEpochs: 1, warmupIters: 15 },
    augment: 'shift',
    classBalance: false,
    priorBias: true,
    ...IMAGENET,
  },
};

/**
 * The tiny preset's epoch count: about 12 000 training images seen (so 1–2k-image sets finish within
 * ~15 minutes on two CPU cores), 4 to 15 epochs; the built-in demo set (no --data) gets 15 epochs,
 * about seven minutes (its curve flattens after ~15 epochs of its 1200 images).
 */
export function autoEpochs(trainImages: number, builtInData: boolean): number {
  if (builtInData) return 15;
  return Math.min(15, Math.max(4, Math.round(12000 / Math.max(1, trainImages))));
}
