// Entry point for `--data`: dispatches to the format readers, checks that every image exists and
// turns any failure into one Error naming the flag value and the file at fault.
import { resolve } from 'node:path';
import { readCoco } from './coco.js';
import { Issues, keepExisting, keepDecodable, VALIDATE_LIMIT } from './common.js';
import { readCsv, readJsonl } from './csv.js';
import { openSynthetic } from './synthetic.js';
import { readVoc } from './voc.js';
import { UsageError } from '../args.js';

export interface Sample {
  path: string;
  /** Length S: 1 present, 0 absent, -1 difficult (ignored by loss and metrics). */
  labels: Int8Array;
}

export interface MultiLabelDataset {
  name: string;
  classes: string[];
  train: Sample[];
  val: Sample[];
  /** The val split is the official test split (VOC2007 test). */
  valIsTest?: boolean;
  /** Some labels are -1 (difficult). */
  hasDifficult: boolean;
  /** One message per sample dropped under skipBad. */
  skipped?: string[];
}

export interface OpenDatasetOptions {
  /** Project root; the synthetic set is cached under `<root>/.cache/`. */
  root: string;
  /** Data seed: synthetic generation and the csv/jsonl 80/20 split (default 0). */
  seed?: number;
  /** Drop bad samples (missing file, unknown label) with a warning instead of failing. */
  skipBad?: boolean;
  /** Synthetic image side in px (default 64) and split sizes (default 1200 / 300). */
  syntheticSize?: number;
  syntheticTrain?: number;
  syntheticVal?: number;
  /** Receives warnings (default console.warn). */
  log?: (message: string) => void;
}

const FORMATS = {
  coco: readCoco,
  voc: readVoc,
  csv: readCsv,
  jsonl: readJsonl,
} satisfies Record<string, (target: string, issues: Issues, seed: number) => Promise<MultiLabelDataset>>;

/** Opens `coco:DIR`, `voc:DIR`, `csv:FILE`, `jsonl:FILE`, or the synthetic set when spec is undefined. */
export async function openDataset(spec: string | undefined, opts: OpenDatasetOptions): Promise<MultiLabelDataset> {
  const flag = `--data ${spec ?? '(synthetic default)'}`;
  const issues = new Issues(opts.skipBad ?? false);
  let ds: MultiLabelDataset;
  try {
    ds = await read(spec, opts, issues);
    ds.train = keepExisting(ds.train, issues);
    ds.val = keepExisting(ds.val, issues);
    if (spec !== undefined && ds.train.length + ds.val.length <= VALIDATE_LIMIT) {
      ds.train = await keepDecodable(ds.train, issues);
      ds.val = await keepDecodable(ds.val, issues);
    }
    if (ds.train.length === 0) throw new Error('no training images');
    if (ds.val.length === 0) throw new Error('no validation images');
    if (ds.classes.length === 0) throw new Error('no classes: no sample carries a label (a model needs at least one class)');
  } catch (e) {
    // Bad input: one line naming the flag and the file at fault (exit 2).
    throw new UsageError(`${flag}: ${(e as Error).message}`, { cause: e });
  }
  if (issues.warnings.length > 0) {
    const shown = issues.warnings.slice(0, 8).join('\n  ');
    const more = issues.warnings.length > 8 ? `\n  … and ${issues.warnings.length - 8} more` : '';
    (opts.log ?? console.warn)(`${flag}: ${issues.warnings.length} likely mistake(s) in the labels:\n  ${shown}${more}`);
  }
  if (issues.skipped.length > 0) {
    const shown = issues.skipped.slice(0, 5).join('\n  ');
    const more = issues.skipped.length > 5 ? `\n  … and ${issues.skipped.length - 5} more` : '';
    (opts.log ?? console.warn)(`${flag}: skipped ${issues.skipped.length} bad sample(s):\n  ${shown}${more}`);
  }
  return { ...ds, skipped: issues.skipped };
}

function read(spec: string | undefined, opts: OpenDatasetOptions, issues: Issues): Promise<MultiLabelDataset> {
  if (spec === undefined) {
    return openSynthetic(opts.root, {
      size: opts.syntheticSize,
      train: opts.syntheticTrain,
      val: opts.syntheticVal,
      seed: opts.seed,
    }, opts.log);
  }
  const m = /^([a-z]+):(.+)$/.exec(spec);
  if (!m || !(m[1] in FORMATS)) throw new Error('expected coco:DIR, voc:DIR, csv:FILE or jsonl:FILE');
  return FORMATS[m[1] as keyof typeof FORMATS](resolve(m[2]), issues, opts.seed ?? 0);
}
