// `webvig predict --weights FILE IMAGE|DIR…`: labels above a threshold with their probabilities.
// Every readable image is predicted; each one that is missing or cannot be decoded is reported on
// stderr (one line naming it) and makes the exit status 2, after the others were printed.
import { defineCommand, UsageError } from '../args.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { loadModelForInference } from '../inference.js';

/** Extensions taken from a directory argument (what sharp decodes). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp'];

/** The image paths of the arguments: a file as given, a directory as its images in sorted order. */
export function expandImageArgs(args: readonly string[], prog: string): { images: string[]; missing: string[] } {
  const images: string[] = [];
  const missing: string[] = [];
  for (const p of args) {
    if (!existsSync(p)) {
      missing.push(p);
      continue;
    }
    if (!statSync(p).isDirectory()) {
      images.push(p);
      continue;
    }
    const inside = readdirSync(p)
      .filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()))
      .sort()
      .map((f) => join(p, f))
      .filter((f) => statSync(f).isFile());
    if (inside.length === 0) throw new UsageError(`${prog}: ${p}: a folder with no images (${IMAGE_EXTENSIONS.join(', ')})`);
    images.push(...inside);
  }
  return { images, missing };
}

export const command = defineCommand({
  name: 'predict',
  summary: 'Predict the labels of images (any size: resized as the model expects). A folder means its images, sorted.',
  positionals: [{ name: 'IMAGE', help: 'image files or folders of images', variadic: true }],
  flags: {
    weights: { type: 'path', mustExist: true, required: true, help: 'checkpoint (.safetensors) written by webvig train' },
    threshold: { type: 'number', min: 0, max: 1, default: 0.5, help: 'report labels with probability ≥ threshold' },
    json: { type: 'boolean', help: 'print one JSON object (bad images under "errors")' },
    boxes: { type: 'path', mustExist: true, help: "*-boxes region models: box file for these images (default: the one the run was trained with; an image without an entry is one whole-image box)" },
    ...DEVICE_FLAGS,
  },
  async run({ flags, positionals }, io) {
    const prog = 'webvig predict';
    if (positionals.length === 0) throw new UsageError(`${prog}: give at least one IMAGE`);
    const { images, missing } = expandImageArgs(positionals, prog);
    const errors: { image: string; error: string }[] = missing.map((p) => ({ image: p, error: 'no such file' }));
    // Nothing to predict: fail before starting the device or loading the weights.
    if (images.length === 0) {
      for (const e of errors) io.stderr(`${prog}: ${e.image}: ${e.error}\n`);
      return 2;
    }
    const { init } = await import('../../kernels/index.js');
    await init({ adapter: adapterOf(flags, prog), backend: flags.backend });
    const { loadSample } = await import('../data/image.js');
    const { PRESET_AUGMENT } = await import('../data/transforms.js');
    const m = await loadModelForInference(flags.weights);
    const aug = { ...PRESET_AUGMENT.none, size: m.size, mean: m.mean, std: m.std };
    const { useBoxFile } = await import('../inference.js');
    await useBoxFile(m, flags.boxes, images);
    const results: { image: string; labels: { label: string; probability: number }[] }[] = [];
    const { EvalReplay } = await import('../eval-replay.js');
    const { InOrder } = await import('../in-order.js');
    const forward = new EvalReplay();
    const predictions = new InOrder();
    try {
      for (const path of images) {
        let pixels: Float32Array;
        try {
          pixels = await loadSample(path, aug, 0);
        } catch (e) {
          errors.push({ image: path, error: `cannot decode image: ${(e as Error).message}` });
          continue;
        }
        m.region?.setImages([path]);
        await predictions.add(forward.scores(m.model, pixels, [1, 3, m.size, m.size], m.classes.length), (p) => {
          const labels = m.classes
            .map((label, i) => ({ label, probability: p[i] }))
            .filter((l) => l.probability >= flags.threshold)
            .sort((a, b) => b.probability - a.probability);
          results.push({ image: path, labels });
        });
      }
      await predictions.done();
    } finally {
      forward.release();
      m.model.release();
    }
    // Bad files in argument order, after the predictions that could be made.
    const order = new Map(positionals.map((p, i) => [p, i]));
    errors.sort((a, b) => (order.get(a.image) ?? Infinity) - (order.get(b.image) ?? Infinity));
    if (flags.json) io.stdout(`${JSON.stringify({ threshold: flags.threshold, results, ...(errors.length ? { errors } : {}) })}\n`);
    else for (const r of results) io.stdout(`${r.image}: ${r.labels.map((l) => `${l.label} ${(l.probability * 100).toFixed(1)}%`).join(', ') || '(none above threshold)'}\n`);
    for (const e of errors) io.stderr(`${prog}: ${e.image}: ${e.error}\n`);
    return errors.length > 0 ? 2 : 0;
  },
});
