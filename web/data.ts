// The built-in synthetic set, generated in the page: the same scenes as train/data/synthetic.ts
// (train/data/synthetic-scene.ts), rasterised on a canvas instead of by sharp.
import { withDefaults, imageRng, planObjects, sceneSvg, addNoise, SYNTHETIC_CLASSES, type SyntheticSplit } from '../train/data/synthetic-scene.js';
import { normalizeToCHW } from '../train/data/transforms.js';

export const CLASSES = SYNTHETIC_CLASSES;
export const MEAN: [number, number, number] = [123.675, 116.28, 103.53];
export const STD: [number, number, number] = [58.395, 57.12, 57.375];

export interface PageSample {
  rgb: Uint8ClampedArray; // size × size × 3
  labels: Float32Array; // multi-hot, S
  chw: Float32Array; // normalised 3 × size × size
}

let canvas: HTMLCanvasElement | null = null;

/** Draws `src` (an SVG data URL, image or bitmap) at size × size and returns its RGB bytes. */
export async function rasterize(src: string | CanvasImageSource, size: number): Promise<Uint8ClampedArray> {
  canvas ??= document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  let img: CanvasImageSource;
  if (typeof src === 'string') {
    const el = new Image();
    el.src = src;
    await el.decode();
    img = el;
  } else img = src;
  ctx.clearRect(0, 0, size, size);
  ctx.drawImage(img, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const rgb = new Uint8ClampedArray(size * size * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return rgb;
}

export function normalize(rgb: Uint8ClampedArray, size: number): Float32Array {
  return normalizeToCHW({ data: rgb, width: size, height: size }, MEAN, STD);
}

/** Image `i` of a split of the built-in set (seed 0), at `size` px. */
export async function syntheticSample(split: SyntheticSplit, i: number, size: number): Promise<PageSample> {
  const p = withDefaults({ size });
  const rng = imageRng(p, split, i);
  const objects = planObjects(rng, size);
  const svg = sceneSvg(objects, rng, size);
  const rgb = await rasterize(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`, size);
  addNoise(rgb, rng);
  const labels = new Float32Array(CLASSES.length);
  for (const o of objects) labels[o.cls] = 1;
  return { rgb, labels, chw: normalize(rgb, size) };
}

/** `count` images of a split, in order (yielding to the page between images). */
export async function syntheticSet(split: SyntheticSplit, count: number, size: number, onProgress?: (done: number) => void): Promise<PageSample[]> {
  const out: PageSample[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await syntheticSample(split, i, size));
    if (i % 16 === 15) onProgress?.(i + 1);
  }
  return out;
}

/** Stacks samples into one B×3×size×size batch and B×S targets. */
export function stack(samples: PageSample[]): { images: Float32Array; targets: Float32Array } {
  const n = samples[0].chw.length;
  const S = samples[0].labels.length;
  const images = new Float32Array(samples.length * n);
  const targets = new Float32Array(samples.length * S);
  samples.forEach((s, b) => {
    images.set(s.chw, b * n);
    targets.set(s.labels, b * S);
  });
  return { images, targets };
}
