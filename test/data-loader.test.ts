import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classBalancedIndices } from '../train/data/balance.js';
import type { Sample } from '../train/data/dataset.js';
import { type Batch, BatchLoader, type LoaderOptions } from '../train/data/loader.js';
import { Rng } from '../train/data/rng.js';
import { generateSynthetic } from '../train/data/synthetic.js';
import {
  type AugmentOptions,
  IMAGENET_MEAN,
  IMAGENET_STD,
  PRESET_AUGMENT,
  type RgbImage,
  TRIVIAL_AUGMENT_OPS,
  mixCrops,
  randomResizedCrop,
  translate,
  trivialAugment,
} from '../train/data/transforms.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-loader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const solid = join(tmp, 'solid.png');
const halves = join(tmp, 'halves.png');
let synthetic: Sample[] = [];

beforeAll(async () => {
  await sharp({ create: { width: 20, height: 14, channels: 3, background: { r: 255, g: 0, b: 128 } } }).png().toFile(solid);
  // Left half red, right half blue, so a horizontal flip is visible at every pixel.
  const px = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < 256; i++) px.set(i % 16 < 8 ? [255, 0, 0] : [0, 0, 255], 3 * i);
  await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(halves);
  await generateSynthetic(join(tmp, 'syn'), { size: 40, train: 10, val: 1, seed: 3 });
  synthetic = Array.from({ length: 10 }, (_, i) => ({ path: join(tmp, 'syn', 'train', `0000${i}.png`), labels: Int8Array.of(i % 2, 1, -1) }));
});

async function collect(samples: Sample[], opts: LoaderOptions, epoch = 0): Promise<Batch[]> {
  const loader = new BatchLoader(samples, opts);
  try {
    const out: Batch[] = [];
    for await (const b of loader.epoch(epoch)) out.push(b);
    return out;
  } finally {
    await loader.close();
  }
}

const raw = { mean: [0, 0, 0], std: [1, 1, 1] } satisfies Pick<AugmentOptions, 'mean' | 'std'>;
const bytes = (batches: Batch[]) => Buffer.concat(batches.map((b) => Buffer.from(b.images.buffer)));

describe('BatchLoader', () => {
  it('yields [B,3,size,size] images and [B,S] labels, with and without the last partial batch', async () => {
    const augment = { ...PRESET_AUGMENT.none, size: 8 };
    const all = await collect(synthetic, { batchSize: 4, augment, workers: 0 });
    expect(all.map((b) => b.indices)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(all.map((b) => b.images.length)).toEqual([4, 4, 2].map((n) => n * 3 * 8 * 8));
    expect([...all[2].labels]).toEqual([0, 1, -1, 1, 1, -1]);
    const dropped = await collect(synthetic, { batchSize: 4, augment, workers: 0, dropLast: true });
    expect(dropped).toHaveLength(2);
  });

  it('normalises a known colour with the ImageNet mean and std, channel-major', async () => {
    const [batch] = await collect([{ path: solid, labels: Int8Array.of(1) }], { batchSize: 1, augment: { ...PRESET_AUGMENT.none, size: 4 }, workers: 0 });
    const expected = [255, 0, 128].map((v, c) => (v - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
    for (let c = 0; c < 3; c++) {
      for (const v of batch.images.subarray(16 * c, 16 * (c + 1))) expect(v).toBeCloseTo(expected[c], 5);
    }
  });

  it('is bitwise identical for any worker count, and changes with the epoch', async () => {
    const augment = { ...PRESET_AUGMENT.official, size: 32 };
    const opts = { batchSize: 3, augment, seed: 11, shuffle: true, prefetch: 1 };
    const [inline, one, three] = await Promise.all([0, 1, 3].map((workers) => collect(synthetic, { ...opts, workers }, 2)));
    expect(bytes(one).equals(bytes(inline))).toBe(true);
    expect(bytes(three).equals(bytes(inline))).toBe(true);
    expect(three.map((b) => b.indices)).toEqual(inline.map((b) => b.indices));
    expect(inline.flatMap((b) => b.indices).sort((a, b) => a - b)).toEqual([...synthetic.keys()]);
    const next = await collect(synthetic, { ...opts, workers: 0 }, 3);
    expect(next.map((b) => b.indices)).not.toEqual(inline.map((b) => b.indices));
    expect(bytes(next).equals(bytes(inline))).toBe(false);
  });

  it('decodes each file once per thread: later epochs read the kept pixels, which augmentation does not alter', async () => {
    // Shift-only at the images' own size: the decoded pixels are the crop that augment() shifts in place.
    const augment = { ...PRESET_AUGMENT['shift-only'], size: 40 };
    const opts = { batchSize: 4, augment, seed: 5, shuffle: true };
    const first = await collect(synthetic, { ...opts, workers: 0 }, 1);
    const again = await collect(synthetic, { ...opts, workers: 0 }, 1);
    const fresh = await collect(synthetic, { ...opts, workers: 1 }, 1);
    expect(bytes(again).equals(bytes(first))).toBe(true);
    expect(bytes(fresh).equals(bytes(first))).toBe(true);
    const other = await collect(synthetic, { ...opts, workers: 0 }, 2);
    expect(bytes(other).equals(bytes(first))).toBe(false);
  });

  it('flips horizontally for some samples, deterministically', async () => {
    const samples = Array.from({ length: 8 }, () => ({ path: halves, labels: Int8Array.of(1) }));
    const plain = await collect(samples, { batchSize: 8, augment: { size: 16, train: false, ...raw }, workers: 0 });
    const opts = { batchSize: 8, augment: { size: 16, train: true, flip: true, ...raw }, workers: 0, seed: 5 };
    const [a, b] = await Promise.all([collect(samples, opts), collect(samples, opts)]);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    const plane = 3 * 16 * 16;
    const red = (img: Float32Array, k: number) => img[k * plane] === 255; // R of pixel (0, 0)
    const flipped = samples.map((_, k) => !red(a[0].images, k));
    expect(flipped).toContain(true);
    expect(flipped).toContain(false);
    for (let k = 0; k < 8; k++) {
      const img = a[0].images.subarray(k * plane, (k + 1) * plane);
      const ref = plain[0].images.subarray(0, plane);
      for (let i = 0; i < plane; i++) {
        const x = i % 16;
        expect(img[i]).toBe(flipped[k] ? ref[i - x + 15 - x] : ref[i]);
      }
    }
  });

  it('erases a rectangle, deterministically', async () => {
    const samples = [{ path: solid, labels: Int8Array.of(1) }];
    const augment = { size: 16, train: true, randomErasing: 1, mean: IMAGENET_MEAN, std: IMAGENET_STD };
    const [plain] = await collect(samples, { batchSize: 1, augment: { ...augment, train: false }, workers: 0 });
    const [a] = await collect(samples, { batchSize: 1, augment, workers: 0, seed: 1 });
    const [b] = await collect(samples, { batchSize: 1, augment, workers: 0, seed: 1 });
    expect(Buffer.from(a.images.buffer).equals(Buffer.from(b.images.buffer))).toBe(true);
    const changed = a.images.filter((v, i) => v !== plain.images[i]).length;
    expect(changed).toBeGreaterThan(3 * 16 * 16 * 0.01);
    expect(changed).toBeLessThan(3 * 16 * 16 * 0.5);
  });
});

describe('transforms', () => {
  const image = (seed: number, size = 12): RgbImage => {
    const rng = new Rng(seed);
    return { data: Uint8ClampedArray.from({ length: size * size * 3 }, () => rng.int(256)), width: size, height: size };
  };

  it('runs every TrivialAugment op at every level within bounds and deterministically', () => {
    for (const op of TRIVIAL_AUGMENT_OPS) {
      for (const level of [0, 17, 30]) {
        const [a, b] = [image(1), image(1)];
        trivialAugment(a, new Rng(9), op, level);
        trivialAugment(b, new Rng(9), op, level);
        expect(a.data, `${op} ${level}`).toEqual(b.data);
        if (op === 'identity' || (level === 0 && (op === 'solarize' || op === 'posterize' || op.startsWith('translate'))))
          expect(a.data, `${op} ${level}`).toEqual(image(1).data);
      }
    }
    const full = image(2);
    trivialAugment(full, new Rng(0), 'solarize', 30); // threshold 0: every value inverted
    expect([...full.data]).toEqual([...image(2).data].map((v) => 255 - v));
    trivialAugment(full, new Rng(0), 'posterize', 30); // 4 bits kept
    expect(full.data.every((v) => v % 16 === 0)).toBe(true);
  });

  it('plans crops like torchvision RandomResizedCrop and mixes CropMix views', () => {
    const rng = new Rng(4);
    for (let i = 0; i < 200; i++) {
      const box = randomResizedCrop(64, 48, [0.08, 1], [3 / 4, 4 / 3], rng);
      expect(box.left + box.width).toBeLessThanOrEqual(64);
      expect(box.top + box.height).toBeLessThanOrEqual(48);
      expect(box.width * box.height).toBeGreaterThanOrEqual(0.07 * 64 * 48);
    }
    const mixed = mixCrops([image(1), image(2), image(3)], new Rng(8));
    expect(mixed.data).toEqual(mixCrops([image(1), image(2), image(3)], new Rng(8)).data);
    expect(mixed.data).not.toEqual(image(1).data);
  });

  it('translates with the edge pixels replicated, against a per-pixel reference', () => {
    const W = 7;
    for (const [dx, dy] of [[0, 0], [2, -1], [-3, 3], [6, -6]]) {
      const src = image(5, W);
      const img = image(5, W);
      translate(img, dx, dy);
      for (let y = 0; y < W; y++) {
        for (let x = 0; x < W; x++) {
          const [sx, sy] = [Math.min(W - 1, Math.max(0, x - dx)), Math.min(W - 1, Math.max(0, y - dy))];
          for (let c = 0; c < 3; c++) expect(img.data[3 * (y * W + x) + c], `${dx},${dy} at ${x},${y}`).toBe(src.data[3 * (sy * W + sx) + c]);
        }
      }
    }
  });
});

describe('classBalancedIndices', () => {
  it('repeats images of rare classes ⌈√(t/f)⌉ times', () => {
    // 1000 images: class 0 in 2 (f = 0.2 %: r = √5 → 3), class 1 in 5 (0.5 %: √2 → 2), class 2 everywhere.
    const samples = Array.from({ length: 1000 }, (_, i) => ({ path: '', labels: Int8Array.of(i < 2 ? 1 : 0, i >= 1 && i < 6 ? 1 : 0, 1) }));
    samples[999].labels = Int8Array.of(-1, 0, 0);
    const idx = classBalancedIndices(samples, 0.01);
    const times = (i: number) => idx.filter((j) => j === i).length;
    expect([0, 1, 2, 5, 6, 999].map(times)).toEqual([3, 3, 2, 2, 1, 1]);
    expect(idx).toHaveLength(1000 + 2 * 2 + 4 * 1);
    expect(idx).toEqual([...idx].sort((a, b) => a - b));
  });
});
