// Models by name, for the command line and the trainer: GKGNet T/S/B, Pyramid ViG Ti/S/M/B (with a
// multi-label head), ML-ViG S, the small `gkgnet-tiny` / `gkgnet-mini` / `mlvig-tiny` used on a CPU, and any of
// them with an ML-GCN head (`<name>-mlgcn`): on ViG it replaces the ImageNet head, on GKGNet and
// ML-ViG its logits are added to the LabelQueryHead's.
import { Tensor } from '../kernels/index.js';
import { seedInit } from './layers.js';
import { Gkgnet, gkgnetConfig, type GkgnetConfig } from './gkgnet.js';
import { PyramidVig, VIG_VARIANTS, type VigConfig } from './pyramid-vig.js';
import { MlVig, mlVigConfig, type MlVigConfig } from './ml-vig.js';
import { VigMlGcn, GkgnetMlGcn, MlVigMlGcn, type LabelEmbeddings, type AdjacencyMode } from './ml-gcn.js';
import type { Module } from './module.js';
import { REGION_MODEL_NAMES, REGION_FAMILIES, REGION_TRUNKS, parseRegionModel, regionTrunkBase } from './region-names.js';
import { GmMlic, asRegionModel } from './gm-mlic.js';
import { gkgnetLoss } from './losses.js';
import { IaGcn } from './ia-gcn.js';
import type { BoxTable } from './regions.js';

export interface BuildOptions {
  size: number;
  numLabels: number;
  dropPath?: number;
  seed?: number;
  /** ML-GCN models: the training labels that make the label graph (without: identity, until loadStateDict restores `adj`). */
  trainLabels?: readonly Int8Array[];
  /** ML-GCN models: label embeddings (default one-hot; the trainer passes defaultLabelEmbeddings(classes)). */
  labelEmbeddings?: LabelEmbeddings;
  /** ML-GCN models: how the label graph is re-weighted (default 'official', see AdjacencyMode). */
  mlgcnAdj?: AdjacencyMode;
  /** Region models with the `-boxes` source: boxes per image (train/box-file.ts readBoxFile). */
  boxes?: BoxTable;
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

/**
 * gkgnet-tiny with widths 16/24/32/48: a stem twice as wide (its first convolution has 8 channels, not
 * 4) and a wider first stage. It learns shapes told apart only by form (digits) far faster per
 * second than gkgnet-tiny, at about 1.5× its cost per image; the `tiny` training preset uses it.
 */
export function miniGkgnetConfig(size: number, numLabels: number, dropPath = 0): GkgnetConfig {
  return { ...tinyGkgnetConfig(size, numLabels, dropPath), channels: [16, 24, 32, 48] };
}

/** ML-ViG with the tiny widths of gkgnet-tiny: ViG blocks with G = 1 and one MLG block per stage, K_plg = 4. */
export function tinyMlVigConfig(size: number, numLabels: number, dropPath = 0): MlVigConfig {
  const { kLabel: _k, ...trunk } = tinyGkgnetConfig(size, numLabels, dropPath);
  return mlVigConfig(size, numLabels, { ...trunk, groups: 1, mlgBlocks: [1, 1, 1, 1], kPlg: 4 });
}

const BASE_NAMES = ['gkgnet-tiny', 'gkgnet-mini', 'gkgnet-t', 'gkgnet-s', 'gkgnet-b', 'vig-ti', 'vig-s', 'vig-m', 'vig-b', 'mlvig-tiny', 'mlvig-s'] as const;
type BaseName = (typeof BASE_NAMES)[number];
const GRAPH_NAMES = [...BASE_NAMES, ...BASE_NAMES.map((n) => `${n}-mlgcn` as const)];
export type ModelName = (typeof GRAPH_NAMES)[number];
/** Every model name; the region models (IA-GCN, GM-MLIC: models/regions.ts) after the others. */
export const MODEL_NAMES: readonly string[] = [...GRAPH_NAMES, ...REGION_MODEL_NAMES];

/** Names that share a family prefix in one word: gkgnet-tiny|mini|t. */
function compactNames(names: readonly string[]): string {
  const byFamily = new Map<string, string[]>();
  for (const n of names) {
    const cut = n.indexOf('-');
    const family = n.slice(0, cut);
    byFamily.set(family, [...(byFamily.get(family) ?? []), n.slice(cut + 1)]);
  }
  return [...byFamily].map(([family, variants]) => `${family}-${variants.join('|')}`).join(', ');
}

/** MODEL_NAMES in one line, for --help and errors: the families and their variants. */
export function modelNamesSummary(): string {
  const trunks = REGION_TRUNKS.filter((t) => t !== '');
  return (
    `${compactNames(BASE_NAMES)}, each also as NAME-mlgcn; ` +
    `${REGION_FAMILIES.join('|')} with an optional -TRUNK (${compactNames(trunks)}) then an optional -grid|-boxes`
  );
}

type BaseConfig = { family: 'gkgnet'; config: GkgnetConfig } | { family: 'vig'; config: VigConfig } | { family: 'mlvig'; config: MlVigConfig };

function baseConfig(name: BaseName, size: number, numLabels: number, dropPath: number): BaseConfig {
  switch (name) {
    case 'gkgnet-tiny':
      return { family: 'gkgnet', config: tinyGkgnetConfig(size, numLabels, dropPath) };
    case 'gkgnet-mini':
      return { family: 'gkgnet', config: miniGkgnetConfig(size, numLabels, dropPath) };
    case 'gkgnet-t':
    case 'gkgnet-s':
    case 'gkgnet-b':
      return { family: 'gkgnet', config: gkgnetConfig(name.slice(7) as 't' | 's' | 'b', size, numLabels, { dropPath }) };
    case 'vig-ti':
    case 'vig-s':
    case 'vig-m':
    case 'vig-b':
      return { family: 'vig', config: { ...VIG_VARIANTS[name.slice(4)], size, k: 9, groups: 1, reduceRatios: [4, 2, 1, 1], dropPath, relativePos: true } };
    case 'mlvig-tiny':
      return { family: 'mlvig', config: tinyMlVigConfig(size, numLabels, dropPath) };
    case 'mlvig-s':
      return { family: 'mlvig', config: mlVigConfig(size, numLabels, { dropPath }) };
  }
}

/** The small models made for CPU runs (gkgnet-tiny, gkgnet-mini, mlvig-tiny), with or without an ML-GCN head. */
export function isCpuModel(name: string): boolean {
  const base = name.endsWith('-mlgcn') ? name.slice(0, -'-mlgcn'.length) : name;
  return base.endsWith('-tiny') || base.endsWith('-mini');
}

export function buildModel(name: string, o: BuildOptions): MultiLabelModel {
  const region = parseRegionModel(name);
  if (region) {
    seedInit(o.seed ?? 0);
    const ro = { size: o.size, numLabels: o.numLabels, dropPath: o.dropPath, labelEmbeddings: o.labelEmbeddings, boxes: o.boxes };
    return region.family === 'gm-mlic' ? new GmMlic(region, ro) : new IaGcn(region, { ...ro, trainLabels: o.trainLabels, adjacency: o.mlgcnAdj });
  }
  const gcn = name.endsWith('-mlgcn');
  const base = (gcn ? name.slice(0, -'-mlgcn'.length) : name) as BaseName;
  if (!BASE_NAMES.includes(base)) throw new Error(`unknown model "${name}"; models: ${modelNamesSummary()}`);
  seedInit(o.seed ?? 0);
  const S = o.numLabels;
  const b = baseConfig(base, o.size, S, o.dropPath ?? 0);
  // GCN width: the reference 1024, or 4× the feature width for the small CPU models.
  const head = { trainLabels: o.trainLabels, labelEmbeddings: o.labelEmbeddings, adjacency: o.mlgcnAdj, hidden: isCpuModel(base) ? 4 * b.config.channels[3] : 1024 };
  switch (b.family) {
    case 'gkgnet':
      return gcn ? new GkgnetMlGcn(b.config, head) : new Gkgnet(b.config);
    case 'mlvig':
      return gcn ? new MlVigMlGcn(b.config, head) : new MlVig(b.config);
    case 'vig':
      return gcn ? new VigMlGcn({ ...b.config, numLabels: S }, head) : new PyramidVig({ ...b.config, numClasses: S });
  }
}

/** The loss a model trains with: a region model's own (GM-MLIC, IA-GCN), else GKGNet's (LS-BCE + 10·ASL). */
export function trainingLossFor(model: Module): (logits: Tensor, target: Tensor) => { loss: Tensor } {
  const region = asRegionModel(model);
  return region ? (logits, target) => region.trainingLoss(logits, target) : gkgnetLoss;
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

/**
 * Why `name` cannot take `size`×`size` inputs, or undefined when it can: the size must be a multiple
 * of 32 (stem /4, three stride-2 downsamples), and every graph layer needs at least k·dilation
 * source nodes: a stage of side s = size/4/2^i has (s/r)² sources after the reduce ratio r, and the
 * label graph (GKGNet) searches the stage's s² patches for its k_label neighbours.
 */
export function inputSizeProblem(name: string, size: number): string | undefined {
  const trunk = regionTrunkBase(name);
  if (trunk) {
    const why = inputSizeProblem(trunk, size);
    return why?.replaceAll(trunk, name);
  }
  const base = (name.endsWith('-mlgcn') ? name.slice(0, -'-mlgcn'.length) : name) as BaseName;
  if (!BASE_NAMES.includes(base)) return undefined; // buildModel names the unknown model
  if (!Number.isInteger(size) || size <= 0 || size % 32 !== 0) return `must be a positive multiple of 32 (the model downsamples by 32)`;
  const need = (s: number): string | undefined => {
    const c = baseConfig(base, s, 1, 0).config;
    const maxDilation = c.maxDilation ?? Math.floor(49 / c.k);
    let idx = 0;
    for (let i = 0; i < 4; i++) {
      const side = s / 4 / 2 ** i;
      const sources = (side / c.reduceRatios[i]) ** 2;
      for (let j = 0; j < c.blocks[i]; j++, idx++) {
        const d = Math.min(Math.floor(idx / 4) + 1, maxDilation);
        if (c.k * d > sources) return `stage ${i + 1} has ${sources} graph node(s) at this size, fewer than the ${c.k * d} neighbours (k = ${c.k}${d > 1 ? ` × dilation ${d}` : ''}) its blocks search`;
      }
      const kLabel = (c as Partial<GkgnetConfig>).kLabel;
      if (kLabel !== undefined && kLabel > side * side) return `stage ${i + 1} has ${side * side} patch node(s) at this size, fewer than the ${kLabel} neighbours the label graph searches`;
    }
    return undefined;
  };
  const why = need(size);
  if (!why) return undefined;
  let min = size + 32;
  while (min <= 4096 && need(min)) min += 32;
  return `too small for ${name}: ${why}; the smallest size ${name} accepts is ${min}`;
}
