// One sample, end to end: decode with sharp, cut and resize the planned crops with sharp, then the
// pure-JS augmentation and normalisation. Runs in the decode workers (or in-process with 0 workers).
import sharp from 'sharp';
import { Rng } from './rng.js';
import { type AugmentOptions, type CropBox, type RgbImage, augment, mixCrops, normalizeToCHW, planCrops } from './transforms.js';

/** The [3, size, size] float32 input for `path`; every random choice comes from Rng(seed). */
export async function loadSample(path: string, o: AugmentOptions, seed: number): Promise<Float32Array> {
  const rng = new Rng(seed);
  // sRGB output turns grey, grey+alpha and CMYK sources into 3 uint8 channels.
  const { data, info } = await sharp(path).autoOrient().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const boxes = planCrops(info.width, info.height, o, rng);
  const crops = await Promise.all(boxes.map((box) => cropResize(data, info.width, info.height, box, o.size)));
  const img = crops.length > 1 ? mixCrops(crops, rng) : crops[0];
  augment(img, o, rng);
  return normalizeToCHW(img, o.mean, o.std);
}

async function cropResize(data: Buffer, width: number, height: number, box: CropBox, size: number): Promise<RgbImage> {
  const out = await sharp(data, { raw: { width, height, channels: 3 } })
    .extract({ left: box.left, top: box.top, width: box.width, height: box.height })
    .resize(size, size, { fit: 'fill', kernel: box.kernel })
    .raw()
    .toBuffer();
  return { data: new Uint8ClampedArray(out.buffer, out.byteOffset, out.length), width: size, height: size };
}
