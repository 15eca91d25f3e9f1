// One sample, end to end: decode with sharp, cut and resize the planned crops with sharp, then the
// pure-JS augmentation and normalisation. Runs in the decode workers (or in-process with 0 workers).
import sharp from 'sharp';
import { Rng } from './rng.js';
import { type AugmentOptions, type CropBox, type RgbImage, augment, mixCrops, normalizeToCHW, planCrops } from './transforms.js';

interface Decoded {
  data: Buffer;
  info: { width: number; height: number };
}

/**
 * Decoded images kept by each thread, up to this many bytes: every epoch reads the same files, and
 * for small images sharp's decode costs about 1 ms of CPU each, which a CPU adapter's step misses.
 */
const DECODED_CACHE_BYTES = 64 * 2 ** 20;
const decodedCache = new Map<string, Decoded>();
let decodedBytes = 0;

async function decode(path: string): Promise<Decoded> {
  const hit = decodedCache.get(path);
  if (hit) return hit;
  // sRGB output turns grey, grey+alpha and CMYK sources into 3 uint8 channels.
  const d = await sharp(path).autoOrient().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  // Two batches may decode one file at once: count it once.
  if (!decodedCache.has(path) && decodedBytes + d.data.length <= DECODED_CACHE_BYTES) {
    decodedCache.set(path, d);
    decodedBytes += d.data.length;
  }
  return d;
}

/** The [3, size, size] float32 input for `path`; every random choice comes from Rng(seed). */
export async function loadSample(path: string, o: AugmentOptions, seed: number): Promise<Float32Array> {
  const rng = new Rng(seed);
  const { data, info } = await decode(path);
  const boxes = planCrops(info.width, info.height, o, rng);
  const crops = await Promise.all(boxes.map((box) => cropResize(data, info.width, info.height, box, o.size)));
  const img = crops.length > 1 ? mixCrops(crops, rng) : crops[0];
  augment(img, o, rng);
  return normalizeToCHW(img, o.mean, o.std);
}

async function cropResize(data: Buffer, width: number, height: number, box: CropBox, size: number): Promise<RgbImage> {
  // The whole image at its own size (evaluation, shift-only training on images of the input size):
  // libvips would return the same bytes after a second pipeline of its own. A copy, as augment()
  // writes into it and `data` may be cached.
  if (box.left === 0 && box.top === 0 && box.width === width && box.height === height && width === size && height === size) {
    return { data: new Uint8ClampedArray(data), width: size, height: size };
  }
  const out = await sharp(data, { raw: { width, height, channels: 3 } })
    .extract({ left: box.left, top: box.top, width: box.width, height: box.height })
    .resize(size, size, { fit: 'fill', kernel: box.kernel })
    .raw()
    .toBuffer();
  return { data: new Uint8ClampedArray(out.buffer, out.byteOffset, out.length), width: size, height: size };
}
