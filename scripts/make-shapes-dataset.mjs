#!/usr/bin/env node
// Writes a small "clean shapes" multi-label dataset in the Pascal VOC2007 or COCO-2014 layout, to try
// `webvig train --data voc:DIR|coco:DIR --preset tiny` on data of the kind the preset is tuned for:
// 1–3 coloured shapes of 10 classes on a plain background, 96 px, deterministic from the seed.
//   node scripts/make-shapes-dataset.mjs voc|coco OUT_DIR [--train 1200] [--val 300] [--size 96] [--seed 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const [layout, out, ...rest] = process.argv.slice(2);
if (!['voc', 'coco'].includes(layout) || !out) {
  console.error('usage: make-shapes-dataset.mjs voc|coco OUT_DIR [--train N] [--val N] [--size PX] [--seed S]');
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : dflt;
};
const [nTrain, nVal, size, seed] = [opt('train', 1200), opt('val', 300), opt('size', 96), opt('seed', 1)];
const CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring', 'star', 'bar', 'diamond', 'hexagon', 'arrow'];

let s = seed >>> 0;
const rand = () => ((s = (s + 0x6d2b79f5) >>> 0), (((s ^ (s >>> 15)) * (s | 1)) >>> 0) / 4294967296);
const poly = (pts) => `<polygon points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"`;
const star = (n, r1, r2) => Array.from({ length: 2 * n }, (_, i) => [Math.cos((Math.PI * i) / n) * (i % 2 ? r2 : r1), Math.sin((Math.PI * i) / n) * (i % 2 ? r2 : r1)]);
const SHAPES = {
  circle: (r) => `<circle r="${r}"`,
  square: (r) => `<rect x="${-r}" y="${-r}" width="${2 * r}" height="${2 * r}"`,
  triangle: (r) => poly([[0, -r], [r, r * 0.8], [-r, r * 0.8]]),
  cross: (r) => poly([[-r / 3, -r], [r / 3, -r], [r / 3, -r / 3], [r, -r / 3], [r, r / 3], [r / 3, r / 3], [r / 3, r], [-r / 3, r], [-r / 3, r / 3], [-r, r / 3], [-r, -r / 3], [-r / 3, -r / 3]]),
  ring: (r) => `<circle r="${r * 0.75}" fill="none" stroke-width="${r / 2.5}"`,
  star: (r) => poly(star(5, r, r / 2.3)),
  bar: (r) => `<rect x="${-r}" y="${-r / 4}" width="${2 * r}" height="${r / 2}"`,
  diamond: (r) => poly([[0, -r], [r * 0.7, 0], [0, r], [-r * 0.7, 0]]),
  hexagon: (r) => poly(Array.from({ length: 6 }, (_, i) => [Math.cos((Math.PI * i) / 3) * r, Math.sin((Math.PI * i) / 3) * r])),
  arrow: (r) => poly([[-r, -r / 4], [0, -r / 4], [0, -r], [r, 0], [0, r], [0, r / 4], [-r, r / 4]]),
};

async function image(path) {
  const k = 1 + Math.floor(rand() * 3);
  const labels = new Set();
  const bg = `hsl(${Math.floor(rand() * 360)},20%,${Math.floor(75 + rand() * 20)}%)`;
  let body = '';
  for (let i = 0; i < k; i++) {
    const c = Math.floor(rand() * CLASSES.length);
    labels.add(c);
    const r = size * (0.12 + rand() * 0.12);
    const [x, y] = [r + rand() * (size - 2 * r), r + rand() * (size - 2 * r)];
    const col = `hsl(${(c * 36 + Math.floor(rand() * 30)) % 360},80%,45%)`;
    const el = SHAPES[CLASSES[c]](r);
    const paint = CLASSES[c] === 'ring' ? `stroke="${col}"` : `fill="${col}"`;
    body += `<g transform="translate(${x.toFixed(1)},${y.toFixed(1)}) rotate(${Math.floor(rand() * 360)})">${el} ${paint}/></g>`;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${bg}"/>${body}</svg>`;
  await sharp(Buffer.from(svg)).jpeg({ quality: 92 }).toFile(path);
  return [...labels].sort((a, b) => a - b);
}

const splits = { train: nTrain, val: nVal };
if (layout === 'voc') {
  for (const d of ['Annotations', 'ImageSets/Main', 'JPEGImages']) mkdirSync(join(out, d), { recursive: true });
  const lists = { trainval: [], test: [] };
  let id = 0;
  for (const [split, n] of Object.entries(splits)) {
    for (let i = 0; i < n; i++, id++) {
      const name = String(id).padStart(6, '0');
      const labels = await image(join(out, 'JPEGImages', `${name}.jpg`));
      const objects = labels.map((c) => `<object><name>${CLASSES[c]}</name><difficult>0</difficult></object>`).join('');
      writeFileSync(join(out, 'Annotations', `${name}.xml`), `<annotation><filename>${name}.jpg</filename>${objects}</annotation>\n`);
      lists[split === 'train' ? 'trainval' : 'test'].push(name);
    }
  }
  for (const [k, v] of Object.entries(lists)) writeFileSync(join(out, 'ImageSets/Main', `${k}.txt`), v.join('\n') + '\n');
} else {
  mkdirSync(join(out, 'annotations'), { recursive: true });
  const categories = CLASSES.map((name, i) => ({ id: 3 * i + 1, name }));
  let annId = 1;
  for (const [split, n] of Object.entries(splits)) {
    const dir = `${split}2014`;
    mkdirSync(join(out, dir), { recursive: true });
    const images = [];
    const annotations = [];
    for (let i = 0; i < n; i++) {
      const file = `COCO_${dir}_${String(i).padStart(12, '0')}.jpg`;
      const labels = await image(join(out, dir, file));
      images.push({ id: i + 1, file_name: file, width: size, height: size });
      for (const c of labels) annotations.push({ id: annId++, image_id: i + 1, category_id: categories[c].id, bbox: [0, 0, 1, 1] });
    }
    writeFileSync(join(out, 'annotations', `instances_${dir}.json`), JSON.stringify({ images, annotations, categories }));
  }
}
console.log(`wrote ${nTrain} + ${nVal} images (${layout}) to ${out}`);
