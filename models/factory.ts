// Models by name, for the command line and the trainer: GKGNet T/S/B, Pyramid ViG Ti/S/M/B (with a
// multi-label head), and the small `gkgnet-tiny` used by the tiny preset.
import { Tensor } from '../engine/index.js';
import { seedInit } from './layers.js';
import { Gkgnet, gkgnetConfig, type GkgnetConfig } from './gkgnet.js';
import { PyramidVig, VIG_VARIANTS } from './pyramid-vig.js';
import type { Module } from './module.js';

export interface BuildOptions {
  size: number;
  numLabels: number;
  dropPath?: number;
  seed?: number;
}

export interface MultiLabelModel extends Module {
  /** Logits B×S. */
  forward(img: Tensor): Tensor;
}

/**
 * A small GKGNet for 64–128 px images on a CPU: widths 8/16/32/48, one block per stage, k = 4 (the
 * last stage of a 64 px input has 2×2 nodes), dilation 1. About 0.1 M parameters.
 */
export function tinyGkgnetConfig(size: number, numLabels: number, dropPath = 0): GkgnetConfig {
  return {
    channels: [8, 16, 32, 48],
    blocks: [1, 1, 1, 1],
    size,
    numLabels,
    k: 4,
    kLabel: 4,
    groups: 2,
    reduceRatios: [2, 1, 1, 1],
    dropPath,
    relativePos: true,
    maxDilation: 1,
  };
}

export const MODEL_NAMES = ['gkgnet-tiny', 'gkgnet-t', 'gkgnet-s', 'gkgnet-b', 'vig-ti', 'vig-s', 'vig-m', 'vig-b'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export function buildModel(name: string, o: BuildOptions): MultiLabelModel {
  seedInit(o.seed ?? 0);
  const dropPath = o.dropPath ?? 0;
  switch (name) {
    case 'gkgnet-tiny':
      return new Gkgnet(tinyGkgnetConfig(o.size, o.numLabels, dropPath));
    case 'gkgnet-t':
    case 'gkgnet-s':
    case 'gkgnet-b':
      return new Gkgnet(gkgnetConfig(name.slice(7) as 't' | 's' | 'b', o.size, o.numLabels, { dropPath }));
    case 'vig-ti':
    case 'vig-s':
    case 'vig-m':
    case 'vig-b': {
      const v = VIG_VARIANTS[name.slice(4)];
      return new PyramidVig({ ...v, size: o.size, k: 9, groups: 1, reduceRatios: [4, 2, 1, 1], dropPath, relativePos: true, numClasses: o.numLabels });
    }
    default:
      throw new Error(`unknown model "${name}"; models: ${MODEL_NAMES.join(', ')}`);
  }
}

/** Trainable and frozen (relative_pos) parameter counts, as the spec's tables count them. */
export function parameterCounts(m: Module): { trainable: number; frozen: number } {
  let trainable = 0;
  let frozen = 0;
  const seen = new Set<Tensor>();
  for (const [, t] of m.namedParameters()) {
    // Frozen tables are shared between the blocks of a stage but counted per block, as PyTorch does.
    if (t.requiresGrad) {
      if (seen.has(t)) continue;
      seen.add(t);
      trainable += t.size;
    } else frozen += t.size;
  }
  return { trainable, frozen };
}
