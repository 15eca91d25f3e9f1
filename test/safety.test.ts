// Nothing lost, every error names its cause: run-folder locking and overwrite refusal, a folder
// that stays consistent across crashes, malformed annotations and likely label typos, corrupt
// weights refused at load, predict with bad images among good ones, and up-front validation of
// --size, --resume and the data. Tiny runs: a 32/16-image synthetic set at 64 px, one epoch.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync, copyFileSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import sharp from 'sharp';
import { init } from '../kernels/index.js';
import { readSafetensors, writeSafetensors } from '../train/safetensors-file.js';
import type { TensorToWrite } from '../engine/safetensors.js';
import { writeFileAtomic } from '../train/atomic-file.js';
import { main } from '../train/cli.js';
import { UsageError } from '../train/args.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { PRESETS } from '../train/presets.js';
import { checkpointEpoch } from '../train/checkpoint.js';
import { openDataset } from '../train/data/dataset.js';
import { checkVocXml } from '../train/data/voc.js';
import { inputSizeProblem, miniGkgnetConfig } from '../models/factory.js';
import { PyramidVig } from '../models/pyramid-vig.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-safety-'));
const root = join(tmp, 'root');
const SYNTH = ['--cache-root', root, '--synthetic-train', '32', '--synthetic-val', '16', '--synthetic-size', '64'];
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function config(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...PRESETS.tiny, preset: 'tiny', epochs: 1, batch: 16, data: undefined, out, seed: 0, workers: 0, skipBad: false,
    root, logEvery: 2, synthetic: { train: 32, val: 16, size: 64 }, ...extra,
  };
}

async function run(argv: string[]) {
  const out = { stdout: '', stderr: '' };
  const code = await main(argv, { stdout: (s) => void (out.stdout += s), stderr: (s) => void (out.stderr += s) });
  return { code, ...out };
}

function write(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

async function image(path: string): Promise<void> {
  write(path, await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer());
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const lines = (s: string) => s.trimEnd().split('\n');

/** A process that is alive for the test's duration, and the pid of one that has exited. */
function liveProcess(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
}
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => c.on('exit', r));
  return c.pid!;
}

const logger = () => {
  const logs: string[] = [];
  return { logs, log: (l: string) => void logs.push(l) };
};

let runDir: string; // one finished 1-epoch run, copied by tests that change it

beforeAll(async () => {
  await init();
  runDir = join(tmp, 'base-run');
  await train(config(runDir), () => {});
}, 300_000);

describe('the run folder', () => {
  it('refuses --out holding a run without --resume, naming it and the ways out; --overwrite replaces it', async () => {
    const out = join(tmp, 'taken');
    cpSync(runDir, out, { recursive: true });
    const before = readFileSync(join(out, 'last.safetensors'));
    const err = await train(config(out), () => {}).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(
      `--out ${out}: already holds a run (config.json, metrics.jsonl, summary.json, last.safetensors, best.safetensors, curves.png); continue it with --resume ${out}, choose a new --out folder, or pass --overwrite to replace it`,
    );
    expect(readFileSync(join(out, 'last.safetensors')).equals(before)).toBe(true);
    expect(existsSync(join(out, '.lock'))).toBe(false);
    // Through the CLI: one line, exit 2.
    const r = await run(['train', '--out', out, '--epochs', '1', '--batch', '16', '--workers', '0', ...SYNTH]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig train: ${err.message}\n`);
    // --overwrite: the old files go first, so nothing of the old run is mixed with the new one.
    writeFileSync(join(out, 'summary.json'), '{"stale": true}\n');
    const { logs, log } = logger();
    await train(config(out, { overwrite: true, seed: 1 }), log);
    expect(logs).toContain(`note: --overwrite: removed the previous run in ${out} (config.json, metrics.jsonl, summary.json, last.safetensors, best.safetensors, curves.png)`);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).seed).toBe(1);
    expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).stale).toBeUndefined();
  }, 120_000);

  it('a live lock refuses, naming the pid; a stale one is taken over with a note; the lock goes when the run ends', async () => {
    const out = join(tmp, 'locked');
    mkdirSync(out);
    const live = liveProcess();
    try {
      writeFileSync(join(out, '.lock'), `${live.pid}\n`);
      const r = await run(['train', '--out', out, '--epochs', '1', '--batch', '16', '--workers', '0', ...SYNTH]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`webvig train: --out ${out}: another run (pid ${live.pid}) is writing there (lock ${join(out, '.lock')}); wait for it to finish or choose another folder\n`);
      expect(readdirSync(out)).toEqual(['.lock']);
    } finally {
      live.kill();
    }
    const dead = await deadPid();
    writeFileSync(join(out, '.lock'), `${dead}\n`);
    const { logs, log } = logger();
    await train(config(out), log);
    expect(logs).toContain(`note: ${join(out, '.lock')}: taking over the stale lock of pid ${dead}, which is no longer running`);
    expect(existsSync(join(out, 'last.safetensors'))).toBe(true);
    expect(existsSync(join(out, '.lock'))).toBe(false);
  }, 120_000);

  it('--out naming a file is one line naming it', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const r = await run(['train', '--out', file, '--workers', '0', ...SYNTH]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig train: --out ${file}: exists and is not a folder\n`);
  });

  it('resume removes stale temp files and makes summary.json name a best checkpoint that exists', async () => {
    const out = join(tmp, 'crashed');
    cpSync(runDir, out, { recursive: true });
    // As an older version could leave it: last.safetensors records best epoch 1, best.safetensors is gone;
    // and the temporary files of writes a kill -9 interrupted.
    rmSync(join(out, 'best.safetensors'));
    const temps = ['last.safetensors.tmp-999999-0a1b2c3d4e5f', 'summary.json.tmp-999998'];
    for (const t of temps) writeFileSync(join(out, t), 'half a file');
    writeFileSync(join(out, 'notes.tmp-later.txt'), 'not ours');
    const { logs, log } = logger();
    await train(config(out, { resume: out }), log);
    expect(logs).toContain(`note: removed 2 temporary file(s) left by an interrupted write in ${out}: ${temps.join(', ')}`);
    expect(logs.some((l) => l.startsWith(`note: ${join(out, 'best.safetensors')} was missing or unreadable; rewritten from last.safetensors (the best epoch, 1)`))).toBe(true);
    for (const t of temps) expect(existsSync(join(out, t)), t).toBe(false);
    expect(existsSync(join(out, 'notes.tmp-later.txt'))).toBe(true);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(s.val_map.best_epoch).toBe(1);
    expect(await checkpointEpoch(join(out, 'best.safetensors'))).toBe(1);

    // A best.safetensors of another epoch than last.safetensors records: best becomes the one on disk.
    const ck = await readSafetensors(join(out, 'last.safetensors'));
    const meta = JSON.parse(ck.metadata.webvig);
    // last.safetensors at epoch 3 says epoch 2 was best, but best.safetensors holds epoch 1.
    meta.epoch = 3;
    meta.best = { map: 0.99, epoch: 2 };
    meta.history = [...meta.history, { ...meta.history[0], epoch: 2, val_map: 0.99 }, { ...meta.history[0], epoch: 3, val_map: 0.5 }];
    const tensors: TensorToWrite[] = [...ck.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: t.data as Float32Array, dtype: t.dtype as 'F32' }));
    await writeSafetensors(join(out, 'last.safetensors'), tensors, { ...ck.metadata, webvig: JSON.stringify(meta) });
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    writeFileSync(join(out, 'config.json'), JSON.stringify({ ...cfg, epochs: 3 }));
    const second = logger();
    const summary = await train(config(out, { resume: out, epochs: 3 }), second.log);
    expect(second.logs).toContain(`note: ${join(out, 'best.safetensors')} holds epoch 1, not the best epoch 2 that last.safetensors records; best is now epoch 1, the one on disk`);
    expect(summary.best_epoch).toBe(1);
  }, 120_000);

  it('writes go through one atomic writer whose errors name the file (ENOSPC) and leave no temp file', async () => {
    const dir = join(tmp, 'atomic');
    mkdirSync(dir);
    const target = join(dir, 'summary.json');
    writeFileSync(target, 'old');
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await expect(writeFileAtomic(target, async () => { throw full; })).rejects.toThrow(`cannot write ${target}: no space left on the device (ENOSPC)`);
    expect(readdirSync(dir)).toEqual(['summary.json']);
    expect(readFileSync(target, 'utf8')).toBe('old');
    const s = await writeSafetensors(join(dir, 'missing-dir', 'x.safetensors'), [{ name: 'a', shape: [1], data: Float32Array.of(1) }]).catch((e) => e);
    expect(s.message).toContain(join(dir, 'missing-dir', 'x.safetensors'));
  });
});

describe('--resume', () => {
  it('refuses flags that contradict the run: one line naming the flag, the run\'s value and the given one', async () => {
    const out = runDir;
    const other = join(tmp, 'elsewhere');
    const cases: [string[], string][] = [
      [['--out', other], `--out ${other} contradicts the resumed run's out ${out}`],
      [['--model', 'vig-ti'], `--model vig-ti contradicts the resumed run's model gkgnet-mini`],
      [['--data', `csv:${join(tmp, 'a-file')}`], `--data csv:${join(tmp, 'a-file')} contradicts the resumed run's data (the built-in synthetic set)`],
      [['--size', '96'], `--size 96 contradicts the resumed run's size 64`],
      [['--seed', '5'], `--seed 5 contradicts the resumed run's seed 0`],
      [['--lr', '0.125'], `--lr 0.125 contradicts the resumed run's lr ${PRESETS.tiny.lr}`],
      [['--weight-decay', '0.375'], `--weight-decay 0.375 contradicts the resumed run's weight-decay ${PRESETS.tiny.weightDecay}`],
      [['--drop-path', '0.625'], `--drop-path 0.625 contradicts the resumed run's drop-path ${PRESETS.tiny.dropPath}`],
      [['--mlgcn-adj', 'paper'], `--mlgcn-adj paper contradicts the resumed run's mlgcn-adj official`],
      [['--synthetic-train', '33'], `--synthetic-train 33 contradicts the resumed run's synthetic-train 32`],
    ];
    writeFileSync(join(tmp, 'a-file'), 'x');
    for (const [flags, msg] of cases) {
      const r = await run(['train', '--resume', out, ...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr).toBe(`webvig train: ${msg} (${join(out, 'config.json')}); drop the flag, or start a new run with --out\n`);
    }
    const same = await run(['train', '--resume', out, '--out', out, '--model', 'gkgnet-mini', '--seed', '0', '--workers', '0', ...SYNTH]);
    expect(same.stderr).toBe('');
    expect(same.code).toBe(0); // the run is complete: nothing to train, nothing refused
  }, 60_000);

  it('--weight-decay and --drop-path set a new run\'s recipe and are recorded in config.json', async () => {
    const out = join(tmp, 'recipe-flags');
    const r = await run(['train', '--out', out, '--epochs', '1', '--batch', '16', '--weight-decay', '0.125', '--drop-path', '0.25', '--workers', '0', ...SYNTH]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect([cfg.weightDecay, cfg.dropPath]).toEqual([0.125, 0.25]);
    // Without them, the preset as it applies to the built-in set (its drop path; see presets.ts).
    const plain = join(tmp, 'recipe-default');
    expect((await run(['train', '--out', plain, '--epochs', '1', '--batch', '16', '--workers', '0', ...SYNTH])).code).toBe(0);
    const dflt = JSON.parse(readFileSync(join(plain, 'config.json'), 'utf8'));
    expect([dflt.weightDecay, dflt.dropPath]).toEqual([PRESETS.tiny.weightDecay, PRESETS.tiny.builtIn!.dropPath]);
    expect(dflt.builtIn).toBeUndefined();
    expect(dflt.region).toBeUndefined();
    const bad = await run(['train', '--out', join(tmp, 'bad-dp'), '--drop-path', '1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--drop-path');
  }, 60_000);

  it('a longer --epochs re-spans the cosine schedule and says how the lr changes; fewer is refused', async () => {
    const out = join(tmp, 'extended');
    cpSync(runDir, out, { recursive: true });
    const fewer = await run(['train', '--resume', out, '--epochs', '1']);
    expect(fewer.code).toBe(0); // equal: fine
    const r = await run(['train', '--resume', out, '--epochs', '2', '--workers', '0', ...SYNTH]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // 32 images / batch 16 = 2 steps per epoch; the resume point is step 2 of 2 (lr at the end of a
    // 1-epoch cosine: 0) and now step 2 of 4 (half way: lr/2).
    const half = (PRESETS.tiny.lr / 2).toExponential(3);
    expect(r.stdout).toContain(`note: --epochs 2 (the run was started for 1): cosine schedule re-spanned to 2 epochs: lr at the resume point (step 2) changes from ${(0).toExponential(3)} to ${half}`);
    const shorter = await run(['train', '--resume', out, '--epochs', '1']);
    expect(shorter.code).toBe(2);
    expect(shorter.stderr).toBe(`webvig train: --epochs 1 is fewer than the resumed run's 2; --resume can only extend a run (its schedule spans 2 epochs)\n`);
  }, 120_000);

  it('a corrupt or incomplete config.json is named, field by field', async () => {
    const out = join(tmp, 'bad-config');
    cpSync(runDir, out, { recursive: true });
    const cfgPath = join(out, 'config.json');
    const good = readFileSync(cfgPath, 'utf8');
    writeFileSync(cfgPath, good.slice(0, 40));
    let r = await run(['train', '--resume', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^webvig train: --resume ${esc(out)}: ${esc(cfgPath)} is not valid JSON \\(.+\\)\\n$`));
    writeFileSync(cfgPath, JSON.stringify({ ...JSON.parse(good), model: 42 }));
    r = await run(['train', '--resume', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig train: --resume ${out}: ${cfgPath}: field "model" is 42, expected a model name\n`);
  });
});

describe('weights that would load garbage are refused at load, naming the tensor', () => {
  /** The base run's last checkpoint with `edit` applied to one float model tensor. */
  async function corrupt(name: string, edit: (t: TensorToWrite) => TensorToWrite): Promise<{ path: string; tensor: string }> {
    const f = await readSafetensors(join(runDir, 'last.safetensors'));
    const victim = [...f.tensors.values()].find((t) => t.dtype === 'F32' && !t.name.startsWith('optimizer.') && t.shape.length > 1)!;
    const tensors = [...f.tensors.values()].map((t): TensorToWrite => {
      const w = { name: t.name, shape: t.shape, data: t.data as Float32Array, dtype: t.dtype as 'F32' };
      return t === victim ? edit(w) : w;
    });
    const path = join(tmp, `${name}.safetensors`);
    await writeSafetensors(path, tensors, f.metadata);
    return { path, tensor: victim.name };
  }

  it('NaN/Inf values and a float tensor stored as integers: eval, predict, --resume', async () => {
    const nan = await corrupt('nan', (t) => ({ ...t, data: new Float32Array(t.data.length).fill(NaN) }));
    const len = (await readSafetensors(nan.path)).tensors.get(nan.tensor)!.data.length;
    const img = join(tmp, 'img.png');
    await image(img);
    for (const argv of [['eval', '--weights', nan.path, ...SYNTH], ['predict', '--weights', nan.path, img]]) {
      const r = await run(argv);
      expect(r.code, argv[0]).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`webvig ${argv[0]}: --weights ${nan.path}: tensor "${nan.tensor}" holds NaN (${len} of its ${len} values are not finite, the first at element 0); refusing to load corrupt weights\n`);
    }
    const inf = await corrupt('inf', (t) => ({ ...t, data: Float32Array.from(t.data, (v, i) => (i === 3 ? -Infinity : v)) }));
    let r = await run(['predict', '--weights', inf.path, img]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`tensor "${inf.tensor}" holds -Infinity (1 of its ${len} values are not finite, the first at element 3)`);
    const ints = await corrupt('ints', (t) => ({ ...t, dtype: 'I32', data: Int32Array.from(t.data, (v) => Math.round(v * 100)) as unknown as Float32Array }));
    r = await run(['predict', '--weights', ints.path, img]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig predict: --weights ${ints.path}: tensor "${ints.tensor}" is stored with an integer dtype; the model expects floats (F32, F16, BF16 or F64)\n`);
    // --resume from a run whose last.safetensors is corrupt.
    const out = join(tmp, 'nan-run');
    cpSync(runDir, out, { recursive: true });
    copyFileSync(nan.path, join(out, 'last.safetensors'));
    r = await run(['train', '--resume', out, '--epochs', '2', '--workers', '0', ...SYNTH]);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([`webvig train: --resume ${out}: ${join(out, 'last.safetensors')}: tensor "${nan.tensor}" holds NaN (${len} of its ${len} values are not finite, the first at element 0); refusing to load corrupt weights`]);
  }, 60_000);

  it('--pretrained with a NaN tensor', async () => {
    // Pyramid ViG weights with gkgnet-mini's trunk layout (the tiny preset's model).
    const m = new PyramidVig({ ...miniGkgnetConfig(64, 10), groups: 1, numClasses: 7, headHidden: 16 });
    const state = await m.stateDict();
    m.release();
    const [name, e] = [...state].find(([k, v]) => k.startsWith('stem.') && v.data instanceof Float32Array && v.shape.length > 1)!;
    const tensors: TensorToWrite[] = [...state].map(([k, v]) => ({ name: k, shape: v.shape, data: k === name ? new Float32Array(v.data.length).fill(NaN) : v.data, dtype: v.data instanceof Int32Array ? 'I64' : 'F32' }));
    const path = join(tmp, 'pvig-nan.safetensors');
    await writeSafetensors(path, tensors);
    const r = await run(['train', '--out', join(tmp, 'pretrained-nan'), '--pretrained', path, '--workers', '0', ...SYNTH]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^webvig train: --pretrained ${esc(path)}: tensor "${esc(name)}" holds NaN \\(${e.data.length} of its`));
  }, 60_000);
});

describe('predict with bad images among good ones', () => {
  it('predicts the good ones, names each bad one on stderr, exits 2; a folder means its images, sorted', async () => {
    const dir = join(tmp, 'pics');
    await image(join(dir, 'b.png'));
    await image(join(dir, 'a.png'));
    write(join(dir, 'c.jpg'), 'not pixels');
    write(join(dir, 'readme.txt'), 'ignored');
    const weights = join(runDir, 'last.safetensors');
    const missing = join(tmp, 'nope.png');
    const r = await run(['predict', '--weights', weights, '--threshold', '1', dir, missing]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`${join(dir, 'a.png')}: (none above threshold)\n${join(dir, 'b.png')}: (none above threshold)\n`);
    expect(lines(r.stderr)).toHaveLength(2);
    expect(lines(r.stderr)[0]).toBe(`webvig predict: ${missing}: no such file`);
    expect(lines(r.stderr)[1]).toMatch(new RegExp(`^webvig predict: ${esc(join(dir, 'c.jpg'))}: cannot decode image: .+`));
    const j = await run(['predict', '--weights', weights, '--json', join(dir, 'c.jpg'), join(dir, 'a.png')]);
    expect(j.code).toBe(2);
    const o = JSON.parse(j.stdout);
    expect(o.results.map((x: { image: string }) => x.image)).toEqual([join(dir, 'a.png')]);
    expect(o.errors.map((x: { image: string }) => x.image)).toEqual([join(dir, 'c.jpg')]);
    const ok = await run(['predict', '--weights', weights, join(dir, 'a.png')]);
    expect(ok.code).toBe(0);
  }, 60_000);
});

describe('up-front validation', () => {
  it('--size too small for the model names the smallest it accepts, before any work', async () => {
    expect(inputSizeProblem('gkgnet-tiny', 64)).toBeUndefined();
    expect(inputSizeProblem('vig-s', 224)).toBeUndefined();
    expect(inputSizeProblem('vig-s', 160)).toMatch(/the smallest size vig-s accepts is 192$/);
    const out = join(tmp, 'size32');
    const r = await run(['train', '--size', '32', '--out', out, ...SYNTH]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'webvig train: --size 32: too small for gkgnet-mini: stage 4 has 1 graph node(s) at this size, fewer than the 4 neighbours (k = 4) its blocks search; the smallest size gkgnet-mini accepts is 64\n',
    );
    expect(existsSync(out)).toBe(false);
    const r2 = await run(['train', '--size', '64', '--model', 'gkgnet-s', '--out', out, ...SYNTH]);
    expect(r2.stderr).toMatch(/^webvig train: --size 64: too small for gkgnet-s: .*; the smallest size gkgnet-s accepts is 192\n$/);
  });

  it('a dataset with no labels at all: no classes, named', async () => {
    const dir = join(tmp, 'nolabels');
    for (const f of ['a.png', 'b.png', 'c.png']) await image(join(dir, f));
    write(join(dir, 'set.csv'), 'path,labels,split\na.png,,train\nb.png,,train\nc.png,,val\n');
    const spec = `csv:${join(dir, 'set.csv')}`;
    const err = await openDataset(spec, { root: tmp }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe(`--data ${spec}: no classes: no sample carries a label (a model needs at least one class)`);
    const r = await run(['train', '--data', spec, '--out', join(tmp, 'nolabels-run'), '--workers', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`webvig train: ${err.message}\n`);
  });
});

describe('annotations', () => {
  const voc = join(tmp, 'voc');
  const ann = (id: string) => join(voc, 'Annotations', `${id}.xml`);
  const good = (name: string) => `<?xml version="1.0"?>\n<annotation><filename>x.jpg</filename><!-- c --><object><name>${name}</name><difficult>0</difficult><bndbox><xmin>1</xmin></bndbox></object><segmented/></annotation>\n`;
  beforeAll(async () => {
    write(join(voc, 'ImageSets', 'Main', 'trainval.txt'), '1\n2\n3\n');
    write(join(voc, 'ImageSets', 'Main', 'test.txt'), '4\n');
    for (const id of ['1', '2', '3', '4']) {
      write(ann(id), good(id === '4' ? 'cat' : 'dog'));
      await image(join(voc, 'JPEGImages', `${id}.png`));
    }
  });

  it('malformed VOC XML stops with the file named, or is skipped and reported with --skip-bad', async () => {
    const cases: [string, string][] = [
      ['', `${ann('2')}: empty annotation file`],
      [good('dog').slice(0, 80), `${ann('2')}: malformed XML: an unterminated tag "<n" (truncated file?)`],
      ['<annotation><object><name>dog</name></object>', `${ann('2')}: malformed XML: <annotation> is never closed (truncated file?)`],
      ['<annotation><object><name>dog</name></annotation>', `${ann('2')}: malformed XML at line 1: </annotation> closes <object>`],
      ['<annotation><object><pose>Left</pose></object></annotation>', `${ann('2')}: object 1 has no <name> (its class)`],
      ['<html></html>', `${ann('2')}: not a VOC annotation: the root element is <html>, expected <annotation>`],
    ];
    for (const [xml, msg] of cases) {
      write(ann('2'), xml);
      await expect(openDataset(`voc:${voc}`, { root: tmp }), JSON.stringify(xml)).rejects.toThrow(`--data voc:${voc}: ${msg}`);
    }
    const { logs, log } = logger();
    const ds = await openDataset(`voc:${voc}`, { root: tmp, skipBad: true, log });
    expect(ds.train).toHaveLength(2);
    expect(logs.join('\n')).toContain(`skipped 1 bad sample(s):\n  ${ann('2')}: not a VOC annotation`);
    write(ann('2'), good('dog'));
    expect(() => checkVocXml(good('dog'), 'f.xml')).not.toThrow();
  });

  it('likely typos are reported before training: a class far rarer than all others, labels with whitespace', async () => {
    const dir = join(tmp, 'typos');
    const rows = ['path,labels'];
    for (let i = 0; i < 60; i++) {
      await image(join(dir, `${i}.png`));
      rows.push(`${i}.png,${i === 17 ? 'cat;dgo' : i === 30 ? ' cat;dog' : i === 40 ? '"cat;hot dog"' : 'cat;dog'}`);
    }
    const file = join(dir, 'set.csv');
    write(file, `${rows.join('\n')}\n`);
    const { logs, log } = logger();
    const ds = await openDataset(`csv:${file}`, { root: tmp, log });
    expect(ds.classes).toEqual(['cat', 'dgo', 'dog', 'hot dog']);
    const text = logs.join('\n');
    expect(text).toContain(`--data csv:${file}: `);
    expect(text).toContain(`class "dgo" appears in only 1 image (first at ${file}:19) while the median class appears in 58: a typo?`);
    expect(text).toContain(`class "hot dog" appears in only 1 image (first at ${file}:42)`);
    expect(text).toContain(`${file}:42: label "hot dog" contains whitespace (labels are separated by ';' or '|'): a typo?`);
    expect(text).not.toContain(`class "cat"`);
    // Whitespace inside a cell around a separator ("cat; dog") survives CSV trimming.
    write(file, 'path,labels,split\n0.png,cat;dog,train\n1.png,cat ;dog,val\n');
    const second = logger();
    await openDataset(`csv:${file}`, { root: tmp, log: second.log });
    expect(second.logs.join('\n')).toContain(`${file}:3: label "cat " has leading/trailing whitespace (read as "cat")`);
  });

  it('COCO: a file without "images", repeated ids: named', async () => {
    const dir = join(tmp, 'coco');
    const cats = [{ id: 1, name: 'a' }];
    const file = join(dir, 'annotations', 'instances_train2014.json');
    write(join(dir, 'annotations', 'instances_val2014.json'), JSON.stringify({ images: [], annotations: [], categories: cats }));
    write(file, JSON.stringify({ annotations: [{ id: 1, image_id: 1, category_id: 1 }], categories: cats }));
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(`--data coco:${dir}: ${file}: no "images" list (is this a COCO instances_*.json file?)`);
    write(file, JSON.stringify({ images: [{ id: 7, file_name: 'a.jpg' }, { id: 7, file_name: 'b.jpg' }], annotations: [], categories: cats }));
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(`${file}: image id 7 appears twice in "images" (entries 0 and 1)`);
    write(file, JSON.stringify({ images: [{ id: 7, file_name: 'a.jpg' }], annotations: [], categories: [...cats, { id: 1, name: 'b' }] }));
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(`${file}: category id 1 appears twice in "categories" (entries 0 and 1)`);
  });
});
