// The built-in dataset: multi-label images of coloured shapes on a cluttered, noisy background,
// generated deterministically on first use and cached under <root>/.cache/. Hard enough that a
// label-frequency baseline scores far below a trained model: 1–4 objects of 20–60 % of the side at
// random positions and angles, class colours jittered and sometimes replaced by a random one (so
// shape matters), neighbouring hues shared by several classes, shape-like clutter, and a few class
// pairs that usually appear together (a learnable label correlation).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { multiHot } from './common.js';
import type { MultiLabelDataset } from './dataset.js';
import type { Rng } from './rng.js';
import {
  SYNTHETIC_VERSION, SYNTHETIC_CLASSES, SYNTHETIC_SPLITS, withDefaults, imageRng, planObjects, sceneSvg, addNoise,
  type Obj, type SyntheticOptions, type SyntheticParams, type SyntheticSplit,
} from './synthetic-scene.js';

export { SYNTHETIC_VERSION, SYNTHETIC_DEFAULTS, SYNTHETIC_CLASSES, type SyntheticOptions } from './synthetic-scene.js';

type Params = SyntheticParams;
type Split = SyntheticSplit;
const SPLITS = SYNTHETIC_SPLITS;

interface LabelsFile {
  version: number;
  params: Params;
  classes: string[];
  images: Record<Split, { file: string; labels: number[] }[]>;
}

/** Opens the cached set for these options, generating it first when absent. */
export async function openSynthetic(root: string, opts: SyntheticOptions, log: (message: string) => void = console.warn): Promise<MultiLabelDataset> {
  const params = withDefaults(opts);
  const hash = createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 12);
  const dir = join(root, '.cache', `synthetic-v${SYNTHETIC_VERSION}-${hash}`);
  if (!existsSync(join(dir, 'labels.json'))) {
    log(`generating the synthetic dataset (${params.train} + ${params.val} images of ${params.size} px) in ${dir}`);
    // Build beside the target and rename, so an interrupted or concurrent run never leaves a half-written set.
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    await generateSynthetic(tmp, params);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, 'labels.json'))) throw e;
    }
  }
  const meta = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as LabelsFile;
  const samples = (split: Split) => meta.images[split].map((im) => ({ path: join(dir, im.file), labels: multiHot(meta.classes.length, im.labels) }));
  return { name: 'synthetic', classes: meta.classes, train: samples('train'), val: samples('val'), hasDifficult: false };
}

/** Writes `<dir>/{train,val}/NNNNN.png` and `<dir>/labels.json` (written last: its presence marks a complete set). */
export async function generateSynthetic(dir: string, opts: SyntheticOptions = {}): Promise<void> {
  const params = withDefaults(opts);
  const meta: LabelsFile = { version: SYNTHETIC_VERSION, params, classes: SYNTHETIC_CLASSES, images: { train: [], val: [] } };
  for (const split of SPLITS) {
    mkdirSync(join(dir, split), { recursive: true });
    const count = params[split];
    const images = meta.images[split];
    // Each image has its own RNG, so images can be rendered concurrently in any order.
    let next = 0;
    const work = async () => {
      for (let i = next++; i < count; i = next++) {
        const rng = imageRng(params, split, i);
        const objects = planObjects(rng, params.size);
        const file = `${split}/${String(i).padStart(5, '0')}.png`;
        images[i] = { file, labels: objects.map((o) => o.cls).sort((a, b) => a - b) };
        await writeFile(join(dir, file), await render(objects, rng, params.size));
      }
    };
    await Promise.all(Array.from({ length: 2 * availableParallelism() }, work));
  }
  writeFileSync(join(dir, 'labels.json'), JSON.stringify(meta));
}

/** The label sets the generator would draw, without rendering (for statistics). */
export function syntheticLabels(opts: SyntheticOptions = {}): Record<Split, number[][]> {
  const p = withDefaults(opts);
  const labels = (split: Split) => Array.from({ length: p[split] }, (_, i) => planObjects(imageRng(p, split, i), p.size).map((o) => o.cls));
  return { train: labels('train'), val: labels('val') };
}

async function render(objects: Obj[], rng: Rng, size: number): Promise<Buffer> {
  const svg = sceneSvg(objects, rng, size);
  const pixels = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
  addNoise(pixels, rng);
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}
