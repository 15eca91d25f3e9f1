// `webvig train`: resolve the preset and flags into one TrainConfig and run train/trainer.ts.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCommand, UsageError, type FlagSpec } from '../args.js';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { PRESETS } from '../presets.js';
import { SYNTHETIC_DEFAULTS } from '../data/synthetic.js';
import { MODEL_NAMES } from '../../models/factory.js';
import { ADJACENCY_MODES, type AdjacencyMode } from '../../models/ml-gcn.js';
import type { TrainConfig } from '../trainer.js';

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
  syntheticTrain: { type: 'number', integer: true, min: 1, default: SYNTHETIC_DEFAULTS.train, help: 'synthetic set (no --data): training images' },
  syntheticVal: { type: 'number', integer: true, min: 1, default: SYNTHETIC_DEFAULTS.val, help: 'synthetic set: validation images' },
  syntheticSize: { type: 'number', integer: true, min: 16, default: SYNTHETIC_DEFAULTS.size, help: 'synthetic set: image side in px' },
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

export const command = defineCommand({
  name: 'train',
  summary: 'Train a multi-label model, evaluate it every epoch, save checkpoints, metrics and curves.',
  flags: {
    data: DATA_FLAG,
    preset: { type: 'string', default: 'tiny', choices: Object.keys(PRESETS), help: 'training recipe' },
    model: { type: 'string', choices: MODEL_NAMES, help: "model (default: the preset's)" },
    epochs: { type: 'number', integer: true, min: 1, help: "epochs (default: the preset's)" },
    batch: { type: 'number', integer: true, min: 1, help: "batch size (default: the preset's)" },
    lr: { type: 'number', min: 0, help: "peak learning rate (default: the preset's)" },
    size: { type: 'number', integer: true, min: 32, help: "input side in px, a multiple of 32 (default: the preset's)" },
    out: { type: 'string', help: 'output folder (default runs/<timestamp>)' },
    resume: { type: 'path', mustExist: true, help: 'continue the run in this folder from its last.safetensors' },
    seed: { type: 'number', integer: true, default: 0, help: 'seed for init, data order, augmentation and drop path' },
    workers: { type: 'number', integer: true, min: 0, help: 'image decoding threads (default min(4, cores))' },
    skipBad: { type: 'boolean', help: 'skip unreadable images and bad labels (reported) instead of stopping' },
    logEvery: { type: 'number', integer: true, min: 1, default: 16, help: 'steps between loss read-backs' },
    mlgcnAdj: {
      type: 'string',
      choices: ADJACENCY_MODES,
      default: 'official',
      help: "*-mlgcn models: the label graph: official (the official code's gen_A: column sums, p = 0.25, +1 on the diagonal) or paper (the paper's corrected Eq. 8: column sums, p = 0.2, 1 − p on the diagonal; normalised, the same graph); a resumed run keeps its own",
    },
    pretrained: { type: 'path', mustExist: true, help: "ImageNet Pyramid ViG weights (safetensors) for the model's ViG trunk; shape mismatches are skipped with a warning" },
    ...SYNTHETIC_FLAGS,
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    const prog = 'webvig train';
    checkDataSpec(flags.data, prog);
    let base = PRESETS[flags.preset];
    let out = flags.out ? resolve(flags.out) : resolve('runs', new Date().toISOString().replace(/[:.]/g, '-'));
    if (flags.resume) {
      const cfgPath = join(flags.resume, 'config.json');
      if (!existsSync(join(flags.resume, 'last.safetensors')) || !existsSync(cfgPath)) {
        throw new UsageError(`${prog}: --resume ${flags.resume}: no last.safetensors / config.json there`);
      }
      base = JSON.parse(readFileSync(cfgPath, 'utf8')) as TrainConfig;
      out = resolve(flags.resume);
    }
    const size = flags.size ?? base.size;
    if (size % 32 !== 0) throw new UsageError(`${prog}: --size ${size}: must be a multiple of 32`);
    const cfg: TrainConfig & { pretrained?: string } = {
      ...base,
      preset: flags.resume ? (base as TrainConfig).preset : flags.preset,
      // A resumed run keeps its model (the checkpoint would not fit another).
      model: flags.resume ? base.model : (flags.model ?? base.model),
      epochs: flags.epochs ?? base.epochs,
      batch: flags.batch ?? base.batch,
      lr: flags.lr ?? base.lr,
      size,
      data: flags.resume ? (base as TrainConfig).data : flags.data,
      synthetic: flags.resume ? (base as TrainConfig).synthetic : flags.data === undefined ? { train: flags.syntheticTrain, val: flags.syntheticVal, size: flags.syntheticSize } : undefined,
      out,
      seed: flags.resume ? (base as TrainConfig).seed : flags.seed,
      workers: flags.workers,
      skipBad: flags.skipBad,
      adapter: adapterOf(flags, prog),
      backend: flags.backend,
      // A resumed run keeps its own data root unless told otherwise.
      root: dataRoot(flags.cacheRoot ?? (flags.resume ? (base as TrainConfig).root : undefined)),
      resume: flags.resume ? out : undefined,
      logEvery: flags.logEvery,
      // A resumed run keeps its label graph (runs from before the flag: the checkpoint's `gcn.adj` is loaded anyway).
      mlgcnAdj: flags.resume ? ((base as TrainConfig).mlgcnAdj ?? 'official') : (flags.mlgcnAdj as AdjacencyMode),
      // A resumed run continues from its checkpoint: the pretrained weights were loaded at its start.
      pretrained: flags.resume || !flags.pretrained ? undefined : resolve(flags.pretrained),
    };
    const { train } = await import('../trainer.js');
    await train(cfg, (l) => io.stdout(`${l}\n`));
  },
});
