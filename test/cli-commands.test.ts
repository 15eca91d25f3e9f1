// The `webvig parity`, `eval` and `predict` commands run in-process through main(): their JSON and
// text contracts, exit codes and error messages; eval/predict on a checkpoint from a tiny training
// run whose synthetic set lives in a temporary root (--cache-root, --synthetic-*).
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, copyFileSync, readFileSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { init } from '../kernels/index.js';
import { writeSafetensors } from '../train/safetensors-file.js';
import { main } from '../train/cli.js';
import { parseArgs, UsageError } from '../train/args.js';
import { adapterOf } from '../train/commands/info.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { PRESETS } from '../train/presets.js';
import { SYNTHETIC_CLASSES } from '../train/data/synthetic.js';
import { PyramidVig } from '../models/pyramid-vig.js';
import { miniGkgnetConfig } from '../models/factory.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'webvig-cli-commands-'));

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (s: string) => void (out.stdout += s), stderr: (s: string) => void (out.stderr += s) } };
}

async function run(argv: string[]) {
  const { out, io } = capture();
  const code = await main(argv, io);
  return { code, ...out };
}

beforeAll(async () => {
  await init();
});

describe('webvig parity', () => {
  it('--json prints one object with one entry per file × mode, every field checked', async () => {
    const dir = join(tmp, 'fixtures');
    mkdirSync(dir);
    for (const f of ['gkg_block_self.safetensors', 'gkg_cross.safetensors']) copyFileSync(join(FIXTURES, f), join(dir, f));
    const r = await run(['parity', dir, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j).sort()).toEqual(['files', 'pass']);
    expect(j.pass).toBe(true);
    // Neighbour rows per file: gkg_block_self knn [B·G = 4, 64 nodes, 9]; gkg_cross [6, 20 labels, 9].
    const rows: Record<string, number> = { 'gkg_block_self.safetensors': 4 * 64, 'gkg_cross.safetensors': 6 * 20 };
    expect(j.files.map((f: { file: string; mode: string }) => `${f.file}:${f.mode}`)).toEqual([
      'gkg_block_self.safetensors:eval',
      'gkg_block_self.safetensors:train',
      'gkg_cross.safetensors:eval',
      'gkg_cross.safetensors:train',
    ]);
    for (const f of j.files) {
      expect(Object.keys(f).sort()).toEqual(['checks', 'file', 'knn', 'maxrel', 'mode', 'pass', 'worst']);
      // Every comparison, each {tensor, rel_err, tol, pass}; the worst is one of them.
      expect(f.checks.length).toBeGreaterThan(20);
      for (const c of f.checks) {
        expect(Object.keys(c).sort()).toEqual(['pass', 'rel_err', 'tensor', 'tol']);
        expect(c.pass).toBe(c.rel_err <= c.tol);
      }
      expect(f.checks.map((c: { tensor: string }) => c.tensor)).toContain(f.worst.tensor);
      expect(f.maxrel.unexplained).toBe(0);
      expect(f.maxrel.choices).toBeGreaterThan(0);
      expect(f.pass).toBe(true);
      expect(Object.keys(f.knn).sort()).toEqual(['allowed', 'mismatched', 'rows']);
      expect(f.knn.rows).toBe(rows[f.file]);
      for (const k of ['mismatched', 'allowed']) expect(Number.isInteger(f.knn[k]) && f.knn[k] >= 0, k).toBe(true);
      expect(f.knn.mismatched).toBeLessThanOrEqual(f.knn.allowed);
      expect(Object.keys(f.worst).sort()).toEqual(['rel_err', 'tensor', 'tol']);
      // Module fixtures: outputs within 1e-4, gradients within 1e-3 (README "Tolerances").
      expect(f.worst.tensor).toMatch(new RegExp(`^${f.mode}\\.(out|inter|grad|buffer_after)\\.`));
      expect([1e-4, 1e-3]).toContain(f.worst.tol);
      expect(f.worst.rel_err).toBeGreaterThanOrEqual(0);
      expect(f.worst.rel_err).toBeLessThanOrEqual(f.worst.tol);
    }
    // The text form: one line per file × mode and the verdict.
    const t = await run(['parity', dir]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^ok {3}gkg_block_self\.safetensors \[eval\]/m);
    expect(t.stdout).toMatch(/^PASS: 4\/4 file×mode checks passed$/m);
  });

  it('exit 2 with a clear message for an unknown fixture, a truncated file, an empty dir or a missing path', async () => {
    const unknown = join(tmp, 'unknown');
    mkdirSync(unknown);
    await writeSafetensors(join(unknown, 'odd.safetensors'), [{ name: 'input.x', shape: [2], data: Float32Array.of(1, 2) }], { fixture: 'mystery_block', config: '{}' });
    let r = await run(['parity', unknown, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^webvig parity: .*odd\.safetensors: unknown fixture type "mystery_block"\n$/);

    const truncated = join(tmp, 'truncated');
    mkdirSync(truncated);
    const bytes = readFileSync(join(FIXTURES, 'gkg_cross.safetensors'));
    writeFileSync(join(truncated, 'gkg_cross.safetensors'), bytes.subarray(0, bytes.length >> 1));
    r = await run(['parity', truncated, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^webvig parity: .*gkg_cross\.safetensors: .+\n$/);

    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    r = await run(['parity', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig parity: ${empty}: no .safetensors files\n`);

    const missing = join(tmp, 'no-such-dir');
    r = await run(['parity', missing, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig parity: ${missing}: no such file or directory\n`);
  });
});

describe('--device, an alias of --adapter', () => {
  it('is accepted by every device command and read through adapterOf', async () => {
    const { command: trainCmd } = await import('../train/commands/train.js');
    const { command: evalCmd } = await import('../train/commands/eval.js');
    const { command: predictCmd } = await import('../train/commands/predict.js');
    const { command: parityCmd } = await import('../train/commands/parity.js');
    const { command: infoCmd } = await import('../train/commands/info.js');
    const w = join(FIXTURES, 'losses.safetensors');
    for (const [cmd, extra] of [[trainCmd, []], [evalCmd, ['--weights', w]], [predictCmd, ['--weights', w, 'a.png']], [parityCmd, ['dir']], [infoCmd, []]] as const) {
      const a = parseArgs(cmd, [...extra, '--device', 'lavapipe']);
      expect(adapterOf(a.flags as { adapter?: string; device?: string }), cmd.name).toBe('lavapipe');
    }
    expect(adapterOf({ adapter: 'nvidia' })).toBe('nvidia');
    expect(adapterOf({ adapter: 'amd', device: 'amd' })).toBe('amd');
    expect(adapterOf({})).toBeUndefined();
    expect(() => adapterOf({ adapter: 'amd', device: 'nvidia' }, 'webvig eval')).toThrow(UsageError);
    const r = await run(['info', '--adapter', 'amd', '--device', 'nvidia']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('webvig info: --adapter amd and --device nvidia disagree (--device is an alias of --adapter): give one\n');
    expect((await run(['info', '--help'])).stdout).toMatch(/--device <string>\s+alias of --adapter/);
  });
});

describe('data root for the generated set', () => {
  it('is --cache-root, else WEBVIG_CACHE_ROOT, else the project root', async () => {
    const { dataRoot, projectRoot } = await import('../train/commands/train.js');
    const saved = process.env.WEBVIG_CACHE_ROOT;
    try {
      delete process.env.WEBVIG_CACHE_ROOT;
      expect(dataRoot(undefined)).toBe(projectRoot());
      process.env.WEBVIG_CACHE_ROOT = join(tmp, 'env-root');
      expect(dataRoot(undefined)).toBe(join(tmp, 'env-root'));
      expect(dataRoot(join(tmp, 'flag-root'))).toBe(join(tmp, 'flag-root'));
    } finally {
      if (saved === undefined) delete process.env.WEBVIG_CACHE_ROOT;
      else process.env.WEBVIG_CACHE_ROOT = saved;
    }
  });
});

// ------------------------------------------------------------------------------------------------
// eval and predict on a checkpoint of a one-epoch run

const root = join(tmp, 'root');
const SYNTH = ['--cache-root', root, '--synthetic-train', '32', '--synthetic-val', '16', '--synthetic-size', '64'];
let weights = '';
let valImages: { path: string; labels: number[] }[] = [];
let trainedRow: { val_map: number; cf1: number; of1: number };

/** GKGNet's AP (§7.1) in float64: rank by score, Σ over positives of precision@rank / (P + 1e-8). */
function referenceAP(scores: number[], positive: boolean[]): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  let tp = 0;
  let sum = 0;
  order.forEach(([, i], rank) => {
    if (positive[i]) sum += ++tp / (rank + 1);
  });
  return sum / (tp + 1e-8);
}

describe('webvig eval and predict', () => {
  beforeAll(async () => {
    const out = join(tmp, 'run');
    const cfg: TrainConfig = {
      ...PRESETS.tiny, preset: 'tiny', epochs: 1, batch: 16, data: undefined, out, seed: 0, workers: 0, skipBad: false,
      root, logEvery: 2, synthetic: { train: 32, val: 16, size: 64 },
    };
    await train(cfg, () => {});
    weights = join(out, 'last.safetensors');
    trainedRow = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim());
    const setDir = join(root, '.cache', readdirSync(join(root, '.cache')).find((d) => d.startsWith('synthetic-'))!);
    const labels = JSON.parse(readFileSync(join(setDir, 'labels.json'), 'utf8'));
    valImages = labels.images.val.map((im: { file: string; labels: number[] }) => ({ path: join(setDir, im.file), labels: im.labels }));
    expect(valImages).toHaveLength(16);
  }, 300_000);

  it('eval --json: every metric, per-class AP for every class, equal to the training run and to a float64 reference', async () => {
    const r = await run(['eval', '--weights', weights, '--json', '--batch', '16', '--workers', '0', ...SYNTH]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(['split', 'images', 'metrics_percent', 'ap_per_class_percent']);
    expect(j.split).toBe('val');
    expect(j.images).toBe(16);
    const prf = ['CP', 'CR', 'CF1', 'OP', 'OR', 'OF1'];
    expect(Object.keys(j.metrics_percent)).toEqual(['mAP', ...prf, ...prf.map((k) => `${k}_top3`)]);
    for (const [k, v] of Object.entries(j.metrics_percent) as [string, number | null][]) {
      // GKGNet's F1 is NaN (JSON null) when precision and recall are both 0.
      if (v === null) {
        expect(k, k).toMatch(/F1/);
        expect(j.metrics_percent[k.replace('F1', 'P')]).toBe(0);
      } else expect(v >= 0 && v <= 100, `${k} = ${v}`).toBe(true);
    }
    expect(Object.keys(j.ap_per_class_percent)).toEqual(SYNTHETIC_CLASSES);
    const ap = Object.values(j.ap_per_class_percent) as number[];
    expect(j.metrics_percent.mAP).toBeCloseTo(ap.reduce((a, b) => a + b, 0) / ap.length, 9);
    // The same model on the same split as the training run's own evaluation.
    expect(j.metrics_percent.mAP).toBeCloseTo(trainedRow.val_map * 100, 9);
    if (Number.isFinite(trainedRow.cf1)) expect(j.metrics_percent.CF1).toBeCloseTo(trainedRow.cf1 * 100, 9);
    if (Number.isFinite(trainedRow.of1)) expect(j.metrics_percent.OF1).toBeCloseTo(trainedRow.of1 * 100, 9);

    // Per-class AP from predict's probabilities (one image at a time) and a float64 AP reference.
    const p = await run(['predict', '--weights', weights, '--threshold', '0', '--json', ...valImages.map((v) => v.path)]);
    expect(p.code).toBe(0);
    const probs = JSON.parse(p.stdout).results.map((res: { labels: { label: string; probability: number }[] }) =>
      Object.fromEntries(res.labels.map((l) => [l.label, l.probability])),
    );
    SYNTHETIC_CLASSES.forEach((c, ci) => {
      const ref = referenceAP(probs.map((q: Record<string, number>) => q[c]), valImages.map((v) => v.labels.includes(ci)));
      expect(ap[ci], c).toBeCloseTo(ref * 100, 3);
    });

    // The text table: the same numbers, two decimals.
    const t = await run(['eval', '--weights', weights, '--batch', '16', '--workers', '0', ...SYNTH]);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('synthetic: 16 val images');
    const fmt = (v: number | null) => (v === null ? 'NaN' : v.toFixed(2));
    expect(lines.slice(1, 14)).toEqual(Object.entries(j.metrics_percent).map(([k, v]) => `  ${k.padEnd(8)}  ${fmt(v as number | null)}`));
    expect(lines[14]).toBe('per-class AP');
    expect(lines.slice(15)).toEqual(SYNTHETIC_CLASSES.map((c, i) => `  ${c.padEnd(8)}  ${ap[i].toFixed(2)}`));
  });

  it('predict: labels with probability ≥ threshold, sorted, for images of any size; text form', async () => {
    const odd = join(tmp, 'odd-size.png');
    const pixels = Buffer.alloc(100 * 80 * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 251;
    await sharp(pixels, { raw: { width: 100, height: 80, channels: 3 } }).png().toFile(odd);
    const images = [valImages[0].path, valImages[1].path, odd];
    const all = await run(['predict', '--weights', weights, '--threshold', '0', '--json', ...images]);
    expect(all.code).toBe(0);
    const full = JSON.parse(all.stdout);
    expect(full.threshold).toBe(0);
    expect(full.results.map((x: { image: string }) => x.image)).toEqual(images);
    for (const res of full.results) {
      expect(res.labels.map((l: { label: string }) => l.label).sort()).toEqual([...SYNTHETIC_CLASSES].sort());
      for (const l of res.labels) expect(l.probability > 0 && l.probability < 1).toBe(true);
    }
    // A threshold between the scores keeps exactly those ≥ it, highest first.
    const scores = full.results.flatMap((x: { labels: { probability: number }[] }) => x.labels.map((l) => l.probability)).sort();
    const thr = scores[Math.floor(scores.length / 2)];
    const some = await run(['predict', '--weights', weights, '--threshold', String(thr), '--json', ...images]);
    expect(some.code).toBe(0);
    const cut = JSON.parse(some.stdout);
    expect(cut.threshold).toBe(thr);
    cut.results.forEach((res: { image: string; labels: { label: string; probability: number }[] }, i: number) => {
      const expected = full.results[i].labels
        .filter((l: { probability: number }) => l.probability >= thr)
        .sort((a: { probability: number }, b: { probability: number }) => b.probability - a.probability);
      expect(res.labels).toEqual(expected);
      for (let k = 1; k < res.labels.length; k++) expect(res.labels[k - 1].probability).toBeGreaterThanOrEqual(res.labels[k].probability);
    });
    const text = await run(['predict', '--weights', weights, '--threshold', '1', images[0]]);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`${images[0]}: (none above threshold)\n`);
    const text2 = await run(['predict', '--weights', weights, '--threshold', '0', images[0]]);
    expect(text2.stdout).toMatch(new RegExp(`^${images[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+ \\d+\\.\\d%, ){9}\\w+ \\d+\\.\\d%\\n$`));
  });

  it('webvig train takes the synthetic-set, cache-root and --pretrained flags into its config', async () => {
    // Pyramid ViG weights with gkgnet-mini's trunk layout (the tiny preset's model), for --pretrained.
    const vig = new PyramidVig({ ...miniGkgnetConfig(64, 10), groups: 1, numClasses: 7, headHidden: 16 });
    const state = await vig.stateDict();
    vig.release();
    const pretrained = join(tmp, 'pvig-tiny.safetensors');
    await writeSafetensors(pretrained, [...state].map(([name, e]) => ({ name, shape: e.shape, data: e.data, dtype: e.data instanceof Int32Array ? ('I64' as const) : ('F32' as const) })));
    const out = join(tmp, 'cli-run');
    const r = await run(['train', '--epochs', '1', '--batch', '16', '--workers', '0', '--out', out, '--pretrained', pretrained, '--log-every', '2', ...SYNTH]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^data: synthetic: 32 train \/ 16 val images, 10 classes$/m);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ synthetic: { train: 32, val: 16, size: 64 }, root, pretrained, model: 'gkgnet-mini', epochs: 1 });
    expect(existsSync(join(out, 'last.safetensors'))).toBe(true);
    // The set the in-process run generated was reused: still exactly one synthetic set under the root.
    expect(readdirSync(join(root, '.cache')).filter((d) => d.startsWith('synthetic-'))).toHaveLength(1);
    // A missing --pretrained file is a usage error.
    const bad = await run(['train', '--pretrained', join(tmp, 'none.safetensors'), ...SYNTH]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`webvig train: --pretrained: no such file or directory: ${join(tmp, 'none.safetensors')}\n`);
  });

  it('errors: missing image or non-image → 2 after the good ones, weights that are not a webvig checkpoint → 2, each named', async () => {
    const missing = join(tmp, 'nope.png');
    let r = await run(['predict', '--weights', weights, valImages[0].path, missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig predict: ${missing}: no such file\n`);
    expect(r.stdout.startsWith(`${valImages[0].path}: `)).toBe(true);

    const notImage = join(tmp, 'notes.png');
    writeFileSync(notImage, 'these are not pixels\n');
    r = await run(['predict', '--weights', weights, valImages[0].path, notImage]);
    expect(r.code).toBe(2);
    expect(r.stdout.startsWith(`${valImages[0].path}: `)).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`^webvig predict: ${notImage.replace(/[.]/g, '\\.')}: cannot decode image: .+\\n$`));

    const garbage = join(tmp, 'garbage.safetensors');
    writeFileSync(garbage, 'not a safetensors file at all');
    for (const cmd of ['predict', 'eval']) {
      const args = cmd === 'predict' ? [valImages[0].path] : SYNTH;
      r = await run([cmd, '--weights', garbage, ...args]);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^webvig ${cmd}: --weights ${garbage.replace(/[.]/g, '\\.')}: not a webvig checkpoint \\(.+\\)\\n$`));
      // A valid safetensors file without training metadata (a parity fixture).
      const fixture = join(FIXTURES, 'losses.safetensors');
      r = await run([cmd, '--weights', fixture, ...args]);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr).toBe(`webvig ${cmd}: --weights ${fixture}: not a webvig training checkpoint (no model/size/classes metadata)\n`);
    }
    r = await run(['eval', '--weights', join(tmp, 'absent.safetensors')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig eval: --weights: no such file or directory: ${join(tmp, 'absent.safetensors')}\n`);
  });
});
