import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanCoco } from '../train/data/coco.js';
import { openDataset } from '../train/data/dataset.js';
import { BatchLoader } from '../train/data/loader.js';
import { PRESET_AUGMENT } from '../train/data/transforms.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-formats-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(path: string, content: string | Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

async function image(path: string): Promise<void> {
  const jpeg = path.endsWith('.jpg');
  const img = sharp({ create: { width: 12, height: 9, channels: 3, background: { r: 200, g: 40, b: 90 } } });
  write(path, await (jpeg ? img.jpeg() : img.png()).toBuffer());
}

const labelsOf = (samples: { path: string; labels: Int8Array }[]) => Object.fromEntries(samples.map((s) => [s.path.split(/[/\\]/).pop(), [...s.labels]]));

describe('coco', () => {
  const dir = join(tmp, 'coco');
  const categories = [
    { supercategory: 'person', id: 1, name: 'person' },
    { supercategory: 'vehicle', id: 3, name: 'car' },
    { supercategory: 'animal', id: 18, name: 'dog' },
  ];
  const cocoFile = (images: string[], annotations: [number, number][]) => ({
    info: { description: 'tricky: } ] " \\ \u00e9', nested: { a: [1, { b: '[' }] } },
    images: images.map((file_name, id) => ({ license: 1, file_name, height: 9, width: 12, id })),
    licenses: [],
    annotations: annotations.map(([image_id, category_id], id) => ({
      segmentation: [[1.5, 2, 3e1, 4, -5.25, 6]],
      area: 12.5,
      iscrowd: 0,
      image_id,
      bbox: [1, 2, 3, 4],
      category_id,
      id,
    })),
    categories,
  });
  const layout = async (trainAnnotations: [number, number][]) => {
    rmSync(dir, { recursive: true, force: true });
    const train = ['COCO_train2014_0.jpg', 'COCO_train2014_1.jpg', 'COCO_train2014_2.jpg'];
    write(join(dir, 'annotations', 'instances_train2014.json'), JSON.stringify(cocoFile(train, trainAnnotations), null, 1));
    write(join(dir, 'annotations', 'instances_val2014.json'), JSON.stringify(cocoFile(['COCO_val2014_0.jpg'], [[0, 3]])));
    for (const f of train) await image(join(dir, 'train2014', f));
    await image(join(dir, 'val2014', 'COCO_val2014_0.jpg'));
  };

  it('maps non-contiguous category ids in list order and keeps unannotated images', async () => {
    await layout([[0, 18], [0, 1], [0, 18], [1, 3]]);
    const ds = await openDataset(`coco:${dir}`, { root: tmp });
    expect(ds.classes).toEqual(['person', 'car', 'dog']);
    expect(labelsOf(ds.train)).toEqual({
      'COCO_train2014_0.jpg': [1, 0, 1],
      'COCO_train2014_1.jpg': [0, 1, 0],
      'COCO_train2014_2.jpg': [0, 0, 0],
    });
    expect(labelsOf(ds.val)).toEqual({ 'COCO_val2014_0.jpg': [0, 1, 0] });
    expect(ds.hasDifficult).toBe(false);
  });

  it('reports an unknown category id with the image path, or skips it under skipBad', async () => {
    await layout([[0, 1], [1, 99]]);
    const bad = join(dir, 'train2014', 'COCO_train2014_1.jpg');
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(`--data coco:${dir}: ${bad}: category_id 99`);
    const logs: string[] = [];
    const ds = await openDataset(`coco:${dir}`, { root: tmp, skipBad: true, log: (m) => logs.push(m) });
    expect(Object.keys(labelsOf(ds.train))).toEqual(['COCO_train2014_0.jpg', 'COCO_train2014_2.jpg']);
    expect(ds.skipped).toHaveLength(1);
    expect(logs[0]).toContain('skipped 1 bad sample');
  });

  it('names a missing annotation file and a missing image', async () => {
    await layout([[0, 1]]);
    rmSync(join(dir, 'train2014', 'COCO_train2014_2.jpg'));
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(`missing image ${join(dir, 'train2014', 'COCO_train2014_2.jpg')}`);
    expect((await openDataset(`coco:${dir}`, { root: tmp, skipBad: true, log: () => {} })).train).toHaveLength(2);
    rmSync(join(dir, 'annotations', 'instances_val2014.json'));
    await expect(openDataset(`coco:${dir}`, { root: tmp })).rejects.toThrow(
      `--data coco:${dir}: missing ${join(dir, 'annotations', 'instances_val2014.json')}`,
    );
  });

  it('scans only the flat fields and survives tricky JSON', () => {
    const json = JSON.stringify({
      a: ['"\\[{', { x: [[[]]] }],
      images: [{ id: 7, file_name: 'é "q".jpg', meta: { deep: [1, 2, { z: '}' }] }, ok: true, none: null }],
      annotations: [],
      categories: [{ id: -1.5e3, name: 'x' }],
    });
    const out = scanCoco(Buffer.from(` \n${json}\n`), 'f.json');
    expect(out.images).toEqual([{ id: 7, file_name: 'é "q".jpg', ok: true, none: null }]);
    expect(out.annotations).toEqual([]);
    expect(out.categories).toEqual([{ id: -1500, name: 'x' }]);
    expect(() => scanCoco(Buffer.from('{"images": [{"id": 1,'), 'f.json')).toThrow('f.json: invalid JSON');
  });
});

describe('voc', () => {
  const root = join(tmp, 'voc');
  const base = join(root, 'VOCdevkit', 'VOC2007');
  const object = (name: string, difficult: 0 | 1, part = '') =>
    `<object><name>${name}</name><pose>Left</pose><truncated>0</truncated><difficult>${difficult}</difficult>` +
    `<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>${part}</object>`;
  const xml = (...objects: string[]) => `<annotation>\n<folder>VOC2007</folder><filename>x.jpg</filename>\n${objects.join('\n')}\n</annotation>`;

  beforeAll(async () => {
    write(join(base, 'ImageSets', 'Main', 'trainval.txt'), '000001\n000002\n');
    write(join(base, 'ImageSets', 'Main', 'test.txt'), '000003\n');
    write(join(base, 'Annotations', '000001.xml'), xml(object('dog', 0), object('person', 1, '<part><name>head</name></part>')));
    write(join(base, 'Annotations', '000002.xml'), xml(object('dog', 1), object('dog', 0), object('cat', 1), object('cat', 1)));
    write(join(base, 'Annotations', '000003.xml'), xml(object('tvmonitor', 0)));
    for (const id of ['000001', '000002', '000003']) await image(join(base, 'JPEGImages', `${id}.jpg`));
  });

  it('finds VOCdevkit/VOC2007 and applies the difficult rule', async () => {
    const ds = await openDataset(`voc:${root}`, { root: tmp });
    expect(ds.classes).toHaveLength(20);
    const [cat, dog, person, tv] = ['cat', 'dog', 'person', 'tvmonitor'].map((c) => ds.classes.indexOf(c));
    const [a, b] = ds.train.map((s) => s.labels);
    expect([a[dog], a[person], a[cat]]).toEqual([1, -1, 0]);
    expect([b[dog], b[cat], b[person]]).toEqual([1, -1, 0]);
    expect(ds.val[0].labels[tv]).toBe(1);
    expect(ds.valIsTest).toBe(true);
    expect(ds.hasDifficult).toBe(true);
    expect((await openDataset(`voc:${base}`, { root: tmp })).train).toHaveLength(2);
  });

  it('reports a missing image set and an unknown class', async () => {
    const empty = join(tmp, 'nothing');
    await expect(openDataset(`voc:${empty}`, { root: tmp })).rejects.toThrow(
      `--data voc:${empty}: missing ${join(empty, 'ImageSets', 'Main', 'trainval.txt')}`,
    );
    // With a class list given, a name outside it is reported (and skipped with skipBad).
    const bad = join(base, 'Annotations', '000002.xml');
    write(bad, xml(object('unicorn', 0)));
    write(join(base, 'classes.txt'), 'cat\ndog\nperson\ntvmonitor\n');
    await expect(openDataset(`voc:${root}`, { root: tmp })).rejects.toThrow(`${bad}: unknown class "unicorn"`);
    expect((await openDataset(`voc:${root}`, { root: tmp, skipBad: true, log: () => {} })).train).toHaveLength(1);
  });

  it('takes the class names of a custom dataset from its annotations', async () => {
    const custom = join(tmp, 'voc-custom');
    write(join(custom, 'ImageSets', 'Main', 'trainval.txt'), 'a\nb\n');
    write(join(custom, 'ImageSets', 'Main', 'test.txt'), 'c\n');
    write(join(custom, 'Annotations', 'a.xml'), xml(object('star', 0), object('circle', 0)));
    write(join(custom, 'Annotations', 'b.xml'), xml(object('square', 1)));
    write(join(custom, 'Annotations', 'c.xml'), xml(object('circle', 0)));
    for (const id of ['a', 'b', 'c']) await image(join(custom, 'JPEGImages', `${id}.png`));
    const ds = await openDataset(`voc:${custom}`, { root: tmp });
    expect(ds.classes).toEqual(['circle', 'square', 'star']);
    expect(ds.train.map((s) => Array.from(s.labels))).toEqual([[1, 0, 1], [0, -1, 0]]);
    expect(ds.train[0].path.endsWith('a.png')).toBe(true);
  });
});

describe('csv and jsonl', () => {
  const dir = join(tmp, 'user');
  beforeAll(async () => {
    for (const f of ['a.png', 'b,1.png', 'c.png']) await image(join(dir, 'img', f));
  });

  it('reads path,labels,split with quoting, both separators and sorted class names', async () => {
    write(join(dir, 'set.csv'), 'path,labels,split\nimg/a.png,cat;dog,train\n"img/b,1.png", dog | bird ,train\nimg/c.png,,val\n');
    const ds = await openDataset(`csv:${join(dir, 'set.csv')}`, { root: tmp });
    expect(ds.name).toBe('set');
    expect(ds.classes).toEqual(['bird', 'cat', 'dog']);
    expect(labelsOf(ds.train)).toEqual({ 'a.png': [0, 1, 1], 'b,1.png': [1, 0, 1] });
    expect(labelsOf(ds.val)).toEqual({ 'c.png': [0, 0, 0] });
    expect(ds.train[0].path).toBe(join(dir, 'img', 'a.png'));
  });

  it('checks every image header up front: a corrupt file stops the opening, or is dropped with skipBad', async () => {
    write(join(dir, 'img', 'broken.png'), 'this is not a png');
    write(join(dir, 'broken.csv'), 'path,labels,split\nimg/a.png,cat,train\nimg/broken.png,dog,train\nimg/c.png,cat,val\n');
    const spec = `csv:${join(dir, 'broken.csv')}`;
    await expect(openDataset(spec, { root: tmp })).rejects.toThrow(`unreadable image ${join(dir, 'img', 'broken.png')}`);
    const warnings: string[] = [];
    const ds = await openDataset(spec, { root: tmp, skipBad: true, log: (m) => warnings.push(m) });
    expect(ds.train.map((s) => s.path)).toEqual([join(dir, 'img', 'a.png')]);
    expect(warnings.join('\n')).toContain('broken.png');
  });

  it('splits 80/20 by a seeded hash when there is no split column', async () => {
    for (let i = 0; i < 300; i++) await image(join(dir, 'img', `${i}.png`));
    const file = join(dir, 'nosplit.csv');
    write(file, Array.from({ length: 300 }, (_, i) => `img/${i}.png,x`).join('\n'));
    const open = (seed: number) => openDataset(`csv:${file}`, { root: tmp, seed });
    const [one, same, other] = await Promise.all([open(1), open(1), open(2)]);
    expect(one.train.length + one.val.length).toBe(300);
    expect(one.val.length / 300).toBeGreaterThan(0.12);
    expect(one.val.length / 300).toBeLessThan(0.28);
    expect(same.val.map((s) => s.path)).toEqual(one.val.map((s) => s.path));
    expect(other.val.map((s) => s.path)).not.toEqual(one.val.map((s) => s.path));
  });

  it('uses classes.txt and reports labels outside it, and bad jsonl lines, with file:line', async () => {
    const sub = join(dir, 'with-classes');
    write(join(sub, 'classes.txt'), 'dog\ncat\n');
    write(join(sub, 'set.jsonl'), [
      JSON.stringify({ path: '../img/a.png', labels: ['cat'], split: 'train' }),
      JSON.stringify({ path: '../img/c.png', labels: [], split: 'test' }),
      JSON.stringify({ path: '../img/b,1.png', labels: ['cat', 'horse'], split: 'train' }),
      '{"path": broken',
    ].join('\n'));
    const file = join(sub, 'set.jsonl');
    // Lines are parsed before labels are checked, so the broken line is reported first.
    await expect(openDataset(`jsonl:${file}`, { root: tmp })).rejects.toThrow(`--data jsonl:${file}: ${file}:4: `);
    const ds = await openDataset(`jsonl:${file}`, { root: tmp, skipBad: true, log: () => {} });
    expect(ds.classes).toEqual(['dog', 'cat']);
    expect(labelsOf(ds.train)).toEqual({ 'a.png': [0, 1] });
    expect(ds.val).toHaveLength(1);
    expect(ds.skipped).toEqual([expect.stringContaining(`${file}:4: `), `${file}:3: label(s) horse not in ${join(sub, 'classes.txt')}`]);
  });

  it('rejects an unknown --data scheme and a missing file', async () => {
    await expect(openDataset('imagenet:/x', { root: tmp })).rejects.toThrow('--data imagenet:/x: expected coco:DIR, voc:DIR, csv:FILE or jsonl:FILE');
    await expect(openDataset('csv:/no/such.csv', { root: tmp })).rejects.toThrow('--data csv:/no/such.csv: missing /no/such.csv');
  });
});

describe('corrupt images', () => {
  it('fail the batch naming the path, or are dropped under skipBad', async () => {
    const good = join(tmp, 'corrupt', 'good.png');
    const bad = join(tmp, 'corrupt', 'bad.png');
    await image(good);
    write(bad, Buffer.from('this is not a png'));
    const samples = [good, bad, good].map((path) => ({ path, labels: Int8Array.of(1, 0) }));
    const augment = { ...PRESET_AUGMENT.none, size: 8 };
    // In-process for the failing case, a worker thread for the skipping one: both paths report the same way.
    const strict = new BatchLoader(samples, { batchSize: 3, augment, workers: 0 });
    await expect(strict.epoch(0).next()).rejects.toThrow(`cannot decode ${bad}`);
    await strict.close();
    const reported: string[] = [];
    const lenient = new BatchLoader(samples, { batchSize: 3, augment, workers: 1, skipBad: true, onBad: (p) => reported.push(p) });
    for (let epoch = 0; epoch < 2; epoch++) {
      const batches = [];
      for await (const b of lenient.epoch(epoch)) batches.push(b);
      expect(batches.map((b) => b.indices)).toEqual([[0, 2]]);
      expect(batches[0].labels).toEqual(Float32Array.of(1, 0, 1, 0));
    }
    expect(reported).toEqual([bad]);
    await lenient.close();
  });
});
