// Augmentation and normalisation on RGB uint8 HWC images, pure JS and driven by a seeded Rng.
// Geometry that needs resampling (crops, resize) is only planned here as boxes; image.ts executes it
// with sharp. Semantics follow training.md §3 (mmcls / PIL); images are RGB here where mmcls uses BGR,
// which only changes the channel order of the erasing fill and normalisation constants.
import { Rng } from './rng.js';

/** An RGB image, row-major HWC. Clamped, so blends and fills saturate at 0 and 255. */
export interface RgbImage {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

export type Triple = [number, number, number];

export interface AugmentOptions {
  /** Output side in px (square). */
  size: number;
  /** false: resize the whole image and normalise, nothing random (evaluation). */
  train: boolean;
  /** Horizontal flip with p = 0.5. */
  flip?: boolean;
  /** Random translation by up to this fraction of the side along each axis, edges replicated. */
  shift?: number;
  /** torchvision RandomResizedCrop (aspect `ratio`, default 3/4–4/3) instead of resizing the whole image. */
  randomResizedCrop?: { scale: [number, number]; ratio?: [number, number] };
  /** Probability of CropMix (§3.1); otherwise randomResizedCrop or a whole-image resize. */
  cropMix?: number;
  /** RandomErasing probability (§3.3). */
  randomErasing?: number;
  /** ColorJitter strength for brightness, contrast and saturation (§3.4). */
  colorJitter?: number;
  /** TrivialAugment over the §3.5 op list. */
  trivialAugment?: boolean;
  /** Per-channel RGB mean and std in 0–255 units. */
  mean: Triple;
  std: Triple;
}

export const IMAGENET_MEAN: Triple = [123.675, 116.28, 103.53];
export const IMAGENET_STD: Triple = [58.395, 57.12, 57.375];

const norm = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
/** Presets without the size: use as `{ ...PRESET_AUGMENT.simple, size }`. */
export const PRESET_AUGMENT = {
  /** GKGNet's training pipeline (§3). */
  official: { train: true, cropMix: 0.5, flip: true, randomErasing: 0.5, colorJitter: 0.4, trivialAugment: true, ...norm },
  /** Light augmentation for small datasets. */
  simple: { train: true, randomResizedCrop: { scale: [0.5, 1] }, flip: true, ...norm },
  /** Horizontal flips only: no crop can cut a labelled object out of a small image. */
  flip: { train: true, flip: true, ...norm },
  /** Small translations (edges replicated) and flips: keeps every object while varying where it lies. */
  shift: { train: true, flip: true, shift: 0.1, ...norm },
  /** Small translations only, for classes a mirror changes (digits, letters). */
  'shift-only': { train: true, shift: 0.1, ...norm },
  /** Evaluation: resize and normalise. */
  none: { train: false, ...norm },
} satisfies Record<string, Omit<AugmentOptions, 'size'>>;

/** A source region to resample to size×size; `linear` for random crops (torchvision), else bicubic (PIL resize). */
export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
  kernel: 'linear' | 'cubic';
}

/** The regions to cut from a width×height source: one, or 2–4 for CropMix (then blended by mixCrops). */
export function planCrops(width: number, height: number, o: AugmentOptions, rng: Rng): CropBox[] {
  if (o.train && o.cropMix && rng.chance(o.cropMix)) {
    const s = 0.01;
    const n = 2 + rng.int(3);
    const scales: [number, number][] = Array.from({ length: n - 1 }, (_, i) =>
      n === 2 ? [s, 1] : [s + (i * (1 - s)) / n, s + ((i + 1) * (1 - s)) / n],
    );
    scales.push([0.99, 1]);
    return scales.map((scale) => randomResizedCrop(width, height, scale, [3 / 4, 4 / 3], rng));
  }
  if (o.train && o.randomResizedCrop) {
    return [randomResizedCrop(width, height, o.randomResizedCrop.scale, o.randomResizedCrop.ratio ?? [3 / 4, 4 / 3], rng)];
  }
  return [{ left: 0, top: 0, width, height, kernel: 'cubic' }];
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range. */
export function randomResizedCrop(W: number, H: number, scale: [number, number], ratio: [number, number], rng: Rng): CropBox {
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = W * H * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
    const w = Math.round(Math.sqrt(area * aspect));
    const h = Math.round(Math.sqrt(area / aspect));
    if (w > 0 && h > 0 && w <= W && h <= H) return { left: rng.int(W - w + 1), top: rng.int(H - h + 1), width: w, height: h, kernel: 'linear' };
  }
  const inRatio = W / H;
  const w = inRatio < ratio[0] ? W : inRatio > ratio[1] ? Math.round(H * ratio[1]) : W;
  const h = inRatio < ratio[0] ? Math.round(W / ratio[0]) : H;
  return { left: Math.floor((W - w) / 2), top: Math.floor((H - h) / 2), width: w, height: h, kernel: 'linear' };
}

/**
 * CropMix's fold (§3.1): shuffle the crops when n > 2, then mix left to right with λ ~ Beta(0.4/n, 0.4/n);
 * the view weighted < 0.5 first has its channels permuted. Result truncated to uint8.
 */
export function mixCrops(crops: RgbImage[], rng: Rng): RgbImage {
  const n = crops.length;
  const order = n > 2 ? rng.shuffle([...crops]) : crops;
  const acc = new Float32Array(order[0].data.length);
  for (let i = 0; i < acc.length; i++) acc[i] = order[0].data[i] / 255;
  const identity = [0, 1, 2];
  const a = [0, 0, 0];
  for (const next of order.slice(1)) {
    const lambda = rng.beta(0.4 / n, 0.4 / n);
    const perm = rng.shuffle([0, 1, 2]);
    const [permA, permB] = lambda < 0.5 ? [perm, identity] : [identity, perm];
    for (let p = 0; p < acc.length; p += 3) {
      // Read the pixel first: the permuted channels of acc are overwritten in place.
      a[0] = acc[p];
      a[1] = acc[p + 1];
      a[2] = acc[p + 2];
      for (let c = 0; c < 3; c++) acc[p + c] = lambda * a[permA[c]] + ((1 - lambda) * next.data[p + permB[c]]) / 255;
    }
  }
  const data = new Uint8ClampedArray(acc.length);
  for (let i = 0; i < acc.length; i++) data[i] = Math.trunc(acc[i] * 255);
  return { data, width: order[0].width, height: order[0].height };
}

/** The random photometric and small geometric steps of §3.2–3.5, in place, in the official order. */
export function augment(img: RgbImage, o: AugmentOptions, rng: Rng): void {
  if (!o.train) return;
  if (o.flip && rng.chance(0.5)) flipHorizontal(img);
  if (o.shift) {
    const max = Math.round(o.shift * img.width);
    translate(img, rng.int(2 * max + 1) - max, rng.int(2 * max + 1) - max);
  }
  if (o.randomErasing && rng.chance(o.randomErasing)) randomErasing(img, o.mean, o.std, rng);
  if (o.colorJitter) colorJitter(img, o.colorJitter, rng);
  if (o.trivialAugment) trivialAugment(img, rng);
}

/** (x − mean) / std per channel, HWC → CHW float32. */
export function normalizeToCHW(img: RgbImage, mean: Triple, std: Triple): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = (img.data[3 * i + c] - mean[c]) / std[c];
  }
  return out;
}

function flipHorizontal({ data, width, height }: RgbImage): void {
  for (let y = 0; y < height; y++) {
    for (let l = y * width, r = l + width - 1; l < r; l++, r--) {
      for (let c = 0; c < 3; c++) [data[3 * l + c], data[3 * r + c]] = [data[3 * r + c], data[3 * l + c]];
    }
  }
}

/** Moves the content by (dx, dy) px; pixels moved in from outside copy the nearest edge pixel. */
export function translate(img: RgbImage, dx: number, dy: number): void {
  if (dx === 0 && dy === 0) return;
  const { width: W, height: H } = img;
  const src = img.data.slice();
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < H; y++) {
    const sy = clamp(y - dy, H);
    for (let x = 0; x < W; x++) {
      const s = 3 * (sy * W + clamp(x - dx, W));
      const d = 3 * (y * W + x);
      img.data[d] = src[s];
      img.data[d + 1] = src[s + 1];
      img.data[d + 2] = src[s + 2];
    }
  }
}

/** mmcls RandomErasing, mode 'rand': a rectangle of per-pixel N(mean, std) noise, truncated and clipped. */
function randomErasing({ data, width: W, height: H }: RgbImage, mean: Triple, std: Triple, rng: Rng): void {
  const area = W * H * rng.uniform(0.02, 1 / 3);
  const aspect = Math.exp(rng.uniform(Math.log(0.3), Math.log(10 / 3)));
  const h = Math.min(Math.round(Math.sqrt(area * aspect)), H);
  const w = Math.min(Math.round(Math.sqrt(area / aspect)), W);
  const top = rng.int(H - h + 1);
  const left = rng.int(W - w + 1);
  for (let y = top; y < top + h; y++) {
    for (let x = left; x < left + w; x++) {
      for (let c = 0; c < 3; c++) data[3 * (y * W + x) + c] = Math.trunc(mean[c] + std[c] * rng.normal());
    }
  }
}

/** mmcls ColorJitter: brightness, contrast and saturation by factors 1 ± U(0, strength), in random order. */
function colorJitter(img: RgbImage, strength: number, rng: Rng): void {
  const factor = () => 1 + (rng.chance(0.5) ? -1 : 1) * rng.uniform(0, strength);
  const steps = [(f: number) => brightness(img, f), (f: number) => contrast(img, f), (f: number) => saturation(img, f)].map((step) => [step, factor()] as const);
  for (const [step, f] of rng.shuffle(steps)) step(f);
}

// PIL ImageEnhance: out = degenerate + f · (img − degenerate).
function blend(data: Uint8ClampedArray, degenerate: ArrayLike<number> | number, f: number): void {
  for (let i = 0; i < data.length; i++) {
    const d = typeof degenerate === 'number' ? degenerate : degenerate[i];
    data[i] = d + f * (data[i] - d);
  }
}

/** PIL "L" luminance per pixel, repeated over the 3 channels. */
function grey(data: Uint8ClampedArray): Uint8ClampedArray {
  const out = new Uint8ClampedArray(data.length);
  for (let i = 0; i < data.length; i += 3) {
    out[i] = out[i + 1] = out[i + 2] = (data[i] * 19595 + data[i + 1] * 38470 + data[i + 2] * 7471 + 0x8000) >> 16;
  }
  return out;
}

const brightness = (img: RgbImage, f: number) => blend(img.data, 0, f);
const saturation = (img: RgbImage, f: number) => blend(img.data, grey(img.data), f);
function contrast(img: RgbImage, f: number): void {
  const g = grey(img.data);
  let sum = 0;
  for (let i = 0; i < g.length; i += 3) sum += g[i];
  blend(img.data, Math.round((3 * sum) / g.length), f);
}

/** PIL SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]]/13 as the degenerate image; the border stays as is. */
function sharpness(img: RgbImage, f: number): void {
  const { data, width: W, height: H } = img;
  const smooth = Uint8ClampedArray.from(data);
  for (let y = 1; y < H - 1; y++) {
    for (let x = 1; x < W - 1; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 4 * data[3 * (y * W + x) + c];
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += data[3 * ((y + dy) * W + x + dx) + c];
        smooth[3 * (y * W + x) + c] = s / 13;
      }
    }
  }
  blend(data, smooth, f);
}

/** Applies a per-channel lookup table built from that channel's histogram. */
function mapChannels(data: Uint8ClampedArray, lut: (histogram: Uint32Array) => ArrayLike<number>): void {
  for (let c = 0; c < 3; c++) {
    const hist = new Uint32Array(256);
    for (let i = c; i < data.length; i += 3) hist[data[i]]++;
    const table = lut(hist);
    for (let i = c; i < data.length; i += 3) data[i] = table[data[i]];
  }
}

const identityLut = () => Array.from({ length: 256 }, (_, i) => i);

/** PIL ImageOps.autocontrast with cutoff 0. */
function autocontrastLut(hist: Uint32Array): ArrayLike<number> {
  const lo = hist.findIndex((n) => n > 0);
  let hi = 255;
  while (hi > 0 && hist[hi] === 0) hi--;
  if (hi <= lo) return identityLut();
  const scale = 255 / (hi - lo);
  return Array.from({ length: 256 }, (_, i) => Math.trunc((i - lo) * scale));
}

/** PIL ImageOps.equalize. */
function equalizeLut(hist: Uint32Array): ArrayLike<number> {
  const used = [...hist].filter((n) => n > 0);
  const step = Math.floor((used.reduce((a, b) => a + b, 0) - used[used.length - 1]) / 255);
  if (used.length <= 1 || step === 0) return identityLut();
  const lut: number[] = [];
  for (let i = 0, n = Math.floor(step / 2); i < 256; n += hist[i++]) lut.push(Math.floor(n / step));
  return lut;
}

/**
 * PIL affine resampling with nearest neighbour and black fill: output pixel (x, y) takes the input
 * at (a·x' + b·y' + c, d·x' + e·y' + f) where x' = x + 0.5 (pixel centres).
 */
function affine(img: RgbImage, [a, b, c, d, e, f]: number[]): void {
  const { data, width: W, height: H } = img;
  const src = Uint8ClampedArray.from(data);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const sx = Math.floor(a * (x + 0.5) + b * (y + 0.5) + c);
      const sy = Math.floor(d * (x + 0.5) + e * (y + 0.5) + f);
      const inside = sx >= 0 && sx < W && sy >= 0 && sy < H;
      for (let k = 0; k < 3; k++) data[3 * (y * W + x) + k] = inside ? src[3 * (sy * W + sx) + k] : 0;
    }
  }
}

/** PIL Image.rotate(degrees) about the centre, counter-clockwise. */
function rotate(img: RgbImage, degrees: number): void {
  const t = (-degrees * Math.PI) / 180;
  const [cx, cy] = [img.width / 2, img.height / 2];
  const [a, b, d, e] = [Math.cos(t), Math.sin(t), -Math.sin(t), Math.cos(t)];
  affine(img, [a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy]);
}

export const TRIVIAL_AUGMENT_OPS = [
  'identity', 'autocontrast', 'equalize', 'rotate', 'solarize', 'color', 'posterize',
  'contrast', 'brightness', 'sharpness', 'shearX', 'shearY', 'translateX', 'translateY',
] as const;

/** TrivialAugment (§3.5): one op uniformly, level uniform in 0..30, random sign for geometric ops. */
export function trivialAugment(img: RgbImage, rng: Rng, op = TRIVIAL_AUGMENT_OPS[rng.int(TRIVIAL_AUGMENT_OPS.length)], level = rng.int(31)): void {
  const sign = () => (rng.chance(0.5) ? -1 : 1);
  const enhance = 0.1 + (level * 1.8) / 30;
  switch (op) {
    case 'identity':
      return;
    case 'autocontrast':
      return mapChannels(img.data, autocontrastLut);
    case 'equalize':
      return mapChannels(img.data, equalizeLut);
    case 'rotate':
      return rotate(img, sign() * level);
    case 'solarize': {
      const threshold = 256 - Math.floor((level * 256) / 30);
      return mapChannels(img.data, () => identityLut().map((v) => (v >= threshold ? 255 - v : v)));
    }
    case 'posterize': {
      const dropBits = Math.floor((level * 4) / 30); // keeps 8 − ⌊ℓ·4/30⌋ bits
      const mask = 0xff & ~((1 << dropBits) - 1);
      return mapChannels(img.data, () => identityLut().map((v) => v & mask));
    }
    case 'color':
      return saturation(img, enhance);
    case 'contrast':
      return contrast(img, enhance);
    case 'brightness':
      return brightness(img, enhance);
    case 'sharpness':
      return sharpness(img, enhance);
    case 'shearX':
      return affine(img, [1, sign() * level * 0.01, 0, 0, 1, 0]);
    case 'shearY':
      return affine(img, [1, 0, 0, sign() * level * 0.01, 1, 0]);
    case 'translateX':
      return affine(img, [1, 0, sign() * Math.floor(level / 3), 0, 1, 0]);
    case 'translateY':
      return affine(img, [1, 0, 0, 0, 1, sign() * Math.floor(level / 3)]);
  }
}
