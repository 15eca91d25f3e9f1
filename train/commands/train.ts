// `webvig train`: resolve the preset and flags into one TrainConfig and run train/trainer.ts.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCommand, UsageError, type FlagSpec } from '../args.js';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { PRESETS, presetFor } from '../presets.js';
import { SYNTHETIC_DEFAULTS } from '../data/synthetic.js';
import { PRESET_AUGMENT } from '../data/transforms.js';
import { MODEL_NAMES, modelNamesSummary, inputSizeProblem } from '../../models/factory.js';
import { ADJACENCY_MODES, type AdjacencyMode } from '../../models/ml-gcn.js';
import { parseRegionModel } from '../../models/region-names.js';
import type { TrainConfig } from '../trainer.js';
import { PRECISION_FLAG, type Precision } from '../precision.js';

/** The project root (two levels above this file, in src and in dist alike, has package.json). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const DATA_FLAG = {
  type: 'string',
  help: 'coco:DIR | voc:DIR | csv:FILE | jsonl:FILE (default: the built-in synthetic set)',
} as const;

/**
 * Where the built-in synthetic set (used when --data is absent) is generated and how big it is; the
 * defaults are the generator's. Mostly for tests and quick runs; eval takes the same flags.
 */
export const SYNTHETIC_FLAGS = {
  cacheRoot: { type: 'path', help: 'folder whose .cache/ holds generated data (env WEBVIG_CACHE_ROOT; default: the project root)' },
  syntheticTrain: { type: 'number', integer: true, min: 1, help: `synthetic set (no --data): training images (default: ${SYNTHETIC_DEFAULTS.train})` },
  syntheticVal: { type: 'number', integer: true, min: 1, help: `synthetic set: validation images (default: ${SYNTHETIC_DEFAULTS.val})` },
  syntheticSize: { type: 'number', integer: true, min: 16, help: `synthetic set: image side in px (default: ${SYNTHETIC_DEFAULTS.size})` },
} as const satisfies Record<string, FlagSpec>;

/** The root under which `.cache/` is: --cache-root, else WEBVIG_CACHE_ROOT, else the project root. */
export function dataRoot(flag: string | undefined): string {
  return resolve(flag ?? process.env.WEBVIG_CACHE_ROOT ?? projectRoot());
}

export function checkDataSpec(spec: string | undefined, prog: string): void {
  if (spec === undefined) return;
  const m = /^(coco|voc|csv|jsonl):(.+)$/.exec(spec);
  if (!m) throw new UsageError(`${prog}: --data ${spec}: expected coco:DIR, voc:DIR, csv:FILE or jsonl:FILE`);
  if (!existsSync(m[2])) throw new UsageError(`${prog}: --data ${spec}: ${m[2]} does not exist`);
}

/** A run's config.json, checked field by field, for --resume. */
function readRunConfig(dir: string, prog: string): TrainConfig {
  const cfgPath = join(dir, 'config.json');
  for (const f of [cfgPath, join(dir, 'last.safetensors')]) {
    if (!existsSync(f)) throw new UsageError(`${prog}: --resume ${dir}: ${f} does not exist (not a run folder, or the run never finished an epoch)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new UsageError(`${prog}: --resume ${dir}: ${cfgPath} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`${prog}: --resume ${dir}: ${cfgPath} is not a JSON object`);
  const c = raw as Record<string, unknown>;
  const want: [string, (v: unknown) => boolean, string][] = [
    ['model', (v) => typeof v === 'string' && (MODEL_NAMES as readonly string[]).includes(v), 'a model name'],
    ['preset', (v) => typeof v === 'string', 'a string'],
    ['epochs', (v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'],
    ['batch', (v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'],
    ['size', (v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'],
    ['lr', (v) => typeof v === 'number' && Number.isFinite(v), 'a number'],
    ['seed', (v) => Number.isInteger(v), 'an integer'],
    ['weightDecay', (v) => typeof v === 'number' && v >= 0, 'a number ≥ 0'],
    ['dropPath', (v) => typeof v === 'number' && v >= 0 && v < 1, 'a number in [0, 1)'],
    ['schedule', (v) => typeof v === 'object' && v !== null, 'an object'],
    ['data', (v) => v === undefined || typeof v === 'string', 'a --data spec or absent'],
  ];
  for (const [key, ok, what] of want) {
    if (!ok(c[key])) throw new UsageError(`${prog}: --resume ${dir}: ${cfgPath}: field "${key}" is ${c[key] === undefined ? 'missing' : JSON.stringify(c[key])}, expected ${what}`);
  }
  return c as unknown as TrainConfig;
}

/** Flags that would silently be ignored or change a resumed run are refused, naming the run's value. */
interface ResumeFlags {
  out?: string; model?: string; data?: string; size?: number; preset?: string; seed?: number; batch?: number; epochs?: number; augment?: string;
  lr?: number; weightDecay?: number; dropPath?: number;
  pretrained?: string; overwrite: boolean; mlgcnAdj?: string; precision?: string; syntheticTrain?: number; syntheticVal?: number; syntheticSize?: number;
}

function refuseContradictions(flags: ResumeFlags, run: TrainConfig, dir: string, prog: string): void {
  const clash = (flag: string, given: unknown, theirs: unknown) => {
    throw new UsageError(`${prog}: --${flag} ${String(given)} contradicts the resumed run's ${flag} ${theirs === undefined ? '(none)' : String(theirs)} (${join(dir, 'config.json')}); drop the flag, or start a new run with --out`);
  };
  if (flags.out !== undefined && resolve(flags.out) !== dir) clash('out', resolve(flags.out), dir);
  if (flags.model !== undefined && flags.model !== run.model) clash('model', flags.model, run.model);
  if (flags.data !== undefined && flags.data !== run.data) {
    // The same dataset spelled with another relative path is the same dataset.
    const abs = (spec: string | undefined) => spec?.replace(/^([a-z]+):(.+)$/, (_m, kind: string, p: string) => `${kind}:${resolve(p)}`);
    if (abs(flags.data) !== abs(run.data)) clash('data', flags.data, run.data ?? '(the built-in synthetic set)');
  }
  if (flags.size !== undefined && flags.size !== run.size) clash('size', flags.size, run.size);
  if (flags.preset !== undefined && flags.preset !== run.preset) clash('preset', flags.preset, run.preset);
  if (flags.seed !== undefined && flags.seed !== run.seed) clash('seed', flags.seed, run.seed);
  if (flags.batch !== undefined && flags.batch !== run.batch) clash('batch', flags.batch, run.batch);
  // The schedule, decay and depth rate span the whole run: a resumed run keeps its own.
  if (flags.lr !== undefined && flags.lr !== run.lr) clash('lr', flags.lr, run.lr);
  if (flags.weightDecay !== undefined && flags.weightDecay !== run.weightDecay) clash('weight-decay', flags.weightDecay, run.weightDecay);
  if (flags.dropPath !== undefined && flags.dropPath !== run.dropPath) clash('drop-path', flags.dropPath, run.dropPath);
  if (flags.augment !== undefined && flags.augment !== run.augment) clash('augment', flags.augment, run.augment);
  if (flags.mlgcnAdj !== undefined && flags.mlgcnAdj !== (run.mlgcnAdj ?? 'official')) clash('mlgcn-adj', flags.mlgcnAdj, run.mlgcnAdj ?? 'official');
  // Runs from before the flag trained in fp32.
  if (flags.precision !== undefined && flags.precision !== (run.precision ?? 'fp32')) clash('precision', flags.precision, run.precision ?? 'fp32');
  for (const [flag, given, key] of [['synthetic-train', flags.syntheticTrain, 'train'], ['synthetic-val', flags.syntheticVal, 'val'], ['synthetic-size', flags.syntheticSize, 'size']] as const) {
    if (given === undefined) continue;
    if (!run.synthetic) throw new UsageError(`${prog}: --${flag} sets the built-in synthetic set, but the resumed run trains on --data ${run.data} (${join(dir, 'config.json')})`);
    if (given !== run.synthetic[key]) clash(flag, given, run.synthetic[key]);
  }
  if (flags.pretrained !== undefined) throw new UsageError(`${prog}: --pretrained is only read at the start of a run; a resumed run continues from ${join(dir, 'last.safetensors')}`);
  if (flags.overwrite) throw new UsageError(`${prog}: --overwrite and --resume contradict each other: --resume continues the run in ${dir}, --overwrite would delete it`);
  if (flags.epochs !== undefined && typeof run.epochs === 'number' && flags.epochs < run.epochs) {
    throw new UsageError(`${prog}: --epochs ${flags.epochs} is fewer than the resumed run's ${run.epochs}; --resume can only extend a run (its schedule spans ${run.epochs} epochs)`);
  }
}

export const command = defineCommand({
  name: 'train',
  summary: 'Train a multi-label model, evaluate it every epoch, save checkpoints, metrics and curves.',
  flags: {
    data: DATA_FLAG,
    preset: { type: 'string', choices: Object.keys(PRESETS), help: 'training recipe (default: tiny)' },
    model: { type: 'string', choices: MODEL_NAMES, choicesSummary: { placeholder: 'name', text: modelNamesSummary() }, help: "model (default: the preset's)" },
    epochs: { type: 'number', integer: true, min: 1, help: "epochs (default: the preset's)" },
    batch: { type: 'number', integer: true, min: 1, help: "batch size (default: the preset's)" },
    lr: { type: 'number', min: 0, help: "peak learning rate (default: the preset's)" },
    weightDecay: { type: 'number', min: 0, help: "AdamW's decoupled weight decay, on weights but not norms or biases (default: the preset's)" },
    dropPath: { type: 'number', min: 0, max: 0.99, help: "stochastic-depth rate of the last block, linear from 0 over the blocks (default: the preset's)" },
    augment: { type: 'string', choices: Object.keys(PRESET_AUGMENT), help: "training augmentation: official (GKGNet's), simple (random resized crops + flips), flip, shift (±10 % translations + flips), shift-only (for classes a mirror changes), none (default: the preset's)" },
    size: { type: 'number', integer: true, min: 32, help: "input side in px, a multiple of 32 (default: the preset's; tiny: 64, and 96 for the region models ia-gcn / gm-mlic)" },
    out: { type: 'string', help: 'output folder (default runs/<timestamp>); one that holds a run is refused without --resume or --overwrite' },
    overwrite: { type: 'boolean', help: 'replace the run already in --out (its files are deleted first)' },
    resume: { type: 'path', mustExist: true, help: 'continue the run in this folder from its last.safetensors (--epochs may extend it; other settings are the run\'s)' },
    seed: { type: 'number', integer: true, help: 'seed for init, data order, augmentation and drop path (default: 0)' },
    workers: { type: 'number', integer: true, min: 0, help: 'image decoding threads (default min(4, cores))' },
    skipBad: { type: 'boolean', help: 'skip unreadable images and bad labels (reported) instead of stopping' },
    logEvery: { type: 'number', integer: true, min: 1, default: 16, help: 'steps between loss read-backs' },
    mlgcnAdj: {
      type: 'string',
      choices: ADJACENCY_MODES,
      help: "*-mlgcn models: the label graph: official (the official code's gen_A: column sums, p = 0.25, +1 on the diagonal) or paper (the paper's corrected Eq. 8: column sums, p = 0.2, 1 − p on the diagonal; normalised, the same graph) (default: official)",
    },
    boxes: { type: 'path', mustExist: true, help: '*-boxes region models (ia-gcn-boxes, gm-mlic-boxes): JSON boxes per image file name, [[x0, y0, x1, y1], ...] in pixels or {width, height, boxes} (see README)' },
    precision: PRECISION_FLAG,
    pretrained: { type: 'path', mustExist: true, help: "ImageNet Pyramid ViG weights (safetensors) for the model's ViG trunk; shape mismatches are skipped with a warning" },
    ...SYNTHETIC_FLAGS,
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    const prog = 'webvig train';
    checkDataSpec(flags.data, prog);
    let base: Omit<TrainConfig, 'epochs'> & { epochs: number | 'auto' } = PRESETS[flags.preset ?? 'tiny'] as TrainConfig;
    let out = flags.out ? resolve(flags.out) : resolve('runs', new Date().toISOString().replace(/[:.]/g, '-'));
    if (flags.resume) {
      base = readRunConfig(flags.resume, prog);
      out = resolve(flags.resume);
      refuseContradictions(flags, base, out, prog);
    } else if (flags.overwrite && !flags.out) {
      throw new UsageError(`${prog}: --overwrite needs --out (the folder whose run it replaces)`);
    }
    const model = flags.resume ? base.model : (flags.model ?? base.model);
    // A new run takes the preset as it applies to its model; a resumed one keeps its config.json.
    if (!flags.resume) base = presetFor(base, parseRegionModel(model) !== undefined, flags.data === undefined);
    const size = flags.size ?? base.size;
    const sizeProblem = inputSizeProblem(model, size);
    if (sizeProblem) throw new UsageError(`${prog}: --size ${size}: ${sizeProblem}`);
    if (flags.boxes && !flags.resume && !model.endsWith('-boxes')) throw new UsageError(`${prog}: --boxes is read by the *-boxes region models only (ia-gcn-boxes, gm-mlic-boxes, …), not ${model}`);
    if (flags.boxes && flags.resume) throw new UsageError(`${prog}: --boxes is fixed at the start of a run; a resumed run keeps ${(base as TrainConfig).boxes ?? '(none)'}`);
    const cfg: TrainConfig & { pretrained?: string } = {
      ...base,
      preset: flags.resume ? (base as TrainConfig).preset : (flags.preset ?? 'tiny'),
      // A resumed run keeps its model (the checkpoint would not fit another).
      model,
      epochs: flags.epochs ?? base.epochs,
      batch: flags.batch ?? base.batch,
      lr: flags.lr ?? base.lr,
      weightDecay: flags.weightDecay ?? base.weightDecay,
      dropPath: flags.dropPath ?? base.dropPath,
      augment: (flags.augment ?? base.augment) as TrainConfig['augment'],
      size,
      data: flags.resume ? (base as TrainConfig).data : flags.data,
      synthetic: flags.resume ? (base as TrainConfig).synthetic : flags.data === undefined ? { train: flags.syntheticTrain ?? SYNTHETIC_DEFAULTS.train, val: flags.syntheticVal ?? SYNTHETIC_DEFAULTS.val, size: flags.syntheticSize ?? SYNTHETIC_DEFAULTS.size } : undefined,
      out,
      seed: flags.resume ? (base as TrainConfig).seed : (flags.seed ?? 0),
      workers: flags.workers,
      skipBad: flags.skipBad,
      adapter: adapterOf(flags, prog),
      backend: flags.backend,
      // A resumed run keeps its own data root unless told otherwise.
      root: dataRoot(flags.cacheRoot ?? (flags.resume ? (base as TrainConfig).root : undefined)),
      resume: flags.resume ? out : undefined,
      logEvery: flags.logEvery,
      // A resumed run keeps its label graph (runs from before the flag: the checkpoint's `gcn.adj` is loaded anyway).
      mlgcnAdj: flags.resume ? ((base as TrainConfig).mlgcnAdj ?? 'official') : ((flags.mlgcnAdj ?? 'official') as AdjacencyMode),
      // A resumed run continues from its checkpoint: the pretrained weights were loaded at its start.
      pretrained: flags.resume || !flags.pretrained ? undefined : resolve(flags.pretrained),
      overwrite: flags.overwrite,
      boxes: flags.resume ? (base as TrainConfig).boxes : flags.boxes ? resolve(flags.boxes) : undefined,
      precision: flags.resume ? ((base as TrainConfig).precision ?? 'fp32') : ((flags.precision ?? 'fp32') as Precision),
      previousEpochs: flags.resume && typeof base.epochs === 'number' ? base.epochs : undefined,
    };
    const { train } = await import('../trainer.js');
    await train(cfg, (l) => io.stdout(`${l}\n`));
  },
});
