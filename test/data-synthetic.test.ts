import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { openDataset } from '../train/data/dataset.js';
import { SYNTHETIC_CLASSES, generateSynthetic, syntheticLabels } from '../train/data/synthetic.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-synthetic-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every file under dir, relative path → bytes. */
function contents(dir: string): Map<string, Buffer> {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return new Map(files.map((e) => [join(e.parentPath, e.name).slice(dir.length), readFileSync(join(e.parentPath, e.name))]));
}

describe('synthetic dataset', () => {
  it('is byte-identical for the same seed and differs for another', async () => {
    const opts = { size: 48, train: 12, val: 4, seed: 7 };
    await generateSynthetic(join(tmp, 'a'), opts);
    await generateSynthetic(join(tmp, 'b'), opts);
    await generateSynthetic(join(tmp, 'c'), { ...opts, seed: 8 });
    const [a, b, c] = ['a', 'b', 'c'].map((d) => contents(join(tmp, d)));
    expect(a.size).toBe(12 + 4 + 1);
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [file, bytes] of a) expect(bytes.equals(b.get(file)!), file).toBe(true);
    expect(a.get('/train/00000.png')!.equals(c.get('/train/00000.png')!)).toBe(false);
    const { info } = await sharp(join(tmp, 'a', 'train', '00003.png')).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([48, 48, 3]);
  });

  it('has every class, 1–4 labels per image and co-occurring pairs at the default size', () => {
    const { train, val } = syntheticLabels();
    expect([train.length, val.length]).toEqual([1200, 300]);
    for (const split of [train, val]) {
      for (const labels of split) {
        expect(labels.length).toBeGreaterThanOrEqual(1);
        expect(labels.length).toBeLessThanOrEqual(4);
        expect(new Set(labels).size).toBe(labels.length);
      }
      for (let c = 0; c < SYNTHETIC_CLASSES.length; c++) expect(split.some((l) => l.includes(c)), `class ${c}`).toBe(true);
    }
    const has = (l: number[], c: number) => l.includes(c);
    const rate = (c: number, given?: number) => {
      const pool = given === undefined ? train : train.filter((l) => has(l, given));
      return pool.filter((l) => has(l, c)).length / pool.length;
    };
    // triangle→bar, star→diamond, square→cross: the partner is far more likely than on average.
    for (const [a, b] of [[2, 6], [5, 7], [1, 3]]) expect(rate(b, a)).toBeGreaterThan(2 * rate(b));
    // No class is so common that predicting its frequency would score well.
    for (let c = 0; c < SYNTHETIC_CLASSES.length; c++) expect(rate(c)).toBeLessThan(0.5);
  });

  it('is generated once under <root>/.cache and then reused', async () => {
    const logs: string[] = [];
    const opts = { root: tmp, syntheticSize: 32, syntheticTrain: 10, syntheticVal: 5, log: (m: string) => logs.push(m) };
    const ds = await openDataset(undefined, opts);
    expect(logs).toHaveLength(1);
    expect(ds.name).toBe('synthetic');
    expect(ds.classes).toEqual(SYNTHETIC_CLASSES);
    expect([ds.train.length, ds.val.length]).toEqual([10, 5]);
    expect(ds.train[0].path).toMatch(/[/\\]\.cache[/\\]synthetic-v\d+-[0-9a-f]{12}[/\\]train[/\\]00000\.png$/);
    expect(ds.train[0].labels).toBeInstanceOf(Int8Array);
    const again = await openDataset(undefined, opts);
    expect(logs).toHaveLength(1);
    expect(again.train.map((s) => [...s.labels])).toEqual(ds.train.map((s) => [...s.labels]));
    expect(readdirSync(join(tmp, '.cache'))).toHaveLength(1);
  });
});
