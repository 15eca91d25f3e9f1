// `webvig predict --weights FILE IMAGE…`: labels above a threshold with their probabilities.
import { defineCommand, UsageError } from '../args.js';
import { existsSync } from 'node:fs';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { loadModelForInference } from '../inference.js';

export const command = defineCommand({
  name: 'predict',
  summary: 'Predict the labels of images (any size: resized as the model expects).',
  positionals: [{ name: 'IMAGE', help: 'image files', variadic: true }],
  flags: {
    weights: { type: 'path', mustExist: true, required: true, help: 'checkpoint (.safetensors) written by webvig train' },
    threshold: { type: 'number', min: 0, max: 1, default: 0.5, help: 'report labels with probability ≥ threshold' },
    json: { type: 'boolean', help: 'print one JSON object' },
    ...DEVICE_FLAGS,
  },
  async run({ flags, positionals }, io) {
    if (positionals.length === 0) throw new UsageError('webvig predict: give at least one IMAGE');
    for (const p of positionals) if (!existsSync(p)) throw new UsageError(`webvig predict: ${p}: no such file`);
    const { init, Tensor, F, noGrad, tidy } = await import('../../kernels/index.js');
    await init({ adapter: adapterOf(flags, 'webvig predict'), backend: flags.backend });
    const { loadSample } = await import('../data/image.js');
    const { PRESET_AUGMENT } = await import('../data/transforms.js');
    const m = await loadModelForInference(flags.weights);
    const aug = { ...PRESET_AUGMENT.none, size: m.size, mean: m.mean, std: m.std };
    const results: { image: string; labels: { label: string; probability: number }[] }[] = [];
    try {
      for (const path of positionals) {
        let pixels: Float32Array;
        try {
          pixels = await loadSample(path, aug, 0);
        } catch (e) {
          throw new Error(`${path}: cannot decode image: ${(e as Error).message}`);
        }
        const probs = tidy(() => noGrad(() => F.sigmoid(m.model.forward(Tensor.from(pixels, [1, 3, m.size, m.size])))));
        const p = await probs.toArray();
        probs.release();
        const labels = m.classes
          .map((label, i) => ({ label, probability: p[i] }))
          .filter((l) => l.probability >= flags.threshold)
          .sort((a, b) => b.probability - a.probability);
        results.push({ image: path, labels });
      }
    } finally {
      m.model.release();
    }
    if (flags.json) io.stdout(`${JSON.stringify({ threshold: flags.threshold, results })}\n`);
    else for (const r of results) io.stdout(`${r.image}: ${r.labels.map((l) => `${l.label} ${(l.probability * 100).toFixed(1)}%`).join(', ') || '(none above threshold)'}\n`);
  },
});
