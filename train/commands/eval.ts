// `webvig eval --weights FILE [--data …]`: the metric table and per-class AP of a checkpoint.
import { defineCommand } from '../args.js';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { DATA_FLAG, SYNTHETIC_FLAGS, checkDataSpec, dataRoot } from './train.js';
import { loadModelForInference, useBoxFile } from '../inference.js';
import type { CocoMetrics, MmclsMetrics } from '../metrics.js';

/**
 * One table in percent with the same keys for both metric variants: mAP, CP…OF1 (threshold 0.5),
 * CP_top3…OF1_top3. The COCO variant is in fractions, the mmcls one (difficult labels) in percent.
 */
function percentTable(m: CocoMetrics | MmclsMetrics): Record<string, number> {
  if ('thr' in m) {
    const top3 = Object.entries(m.top3).map(([k, v]) => [`${k}_top3`, v]);
    return { mAP: m.mAP, ...m.thr, ...Object.fromEntries(top3) };
  }
  const { apPerClass: _, ...fractions } = m;
  return Object.fromEntries(Object.entries(fractions).map(([k, v]) => [k, v * 100]));
}

export const command = defineCommand({
  name: 'eval',
  summary: 'Evaluate a checkpoint on a validation/test split: mAP, CP, CR, CF1, OP, OR, OF1, top-3, per-class AP.',
  flags: {
    weights: { type: 'path', mustExist: true, required: true, help: 'checkpoint (.safetensors) written by webvig train' },
    data: DATA_FLAG,
    seed: { type: 'number', integer: true, help: "data seed (synthetic set, csv/jsonl 80/20 split); default: the one the checkpoint was trained with" },
    batch: { type: 'number', integer: true, min: 1, default: 32, help: 'batch size' },
    workers: { type: 'number', integer: true, min: 0, help: 'image decoding threads' },
    skipBad: { type: 'boolean', help: 'skip unreadable images instead of stopping' },
    boxes: { type: 'path', mustExist: true, help: "*-boxes region models: box file for these images (default: the one the run was trained with)" },
    json: { type: 'boolean', help: 'print one JSON object (an F1 undefined because P = R = 0 is null, NaN in the table)' },
    ...SYNTHETIC_FLAGS,
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    checkDataSpec(flags.data, 'webvig eval');
    const { init } = await import('../../engine/context.js');
    await init({ adapter: adapterOf(flags, 'webvig eval'), backend: flags.backend });
    const { openDataset } = await import('../data/dataset.js');
    const { BatchLoader } = await import('../data/loader.js');
    const { PRESET_AUGMENT } = await import('../data/transforms.js');
    const { evaluate } = await import('../trainer.js');
    const m = await loadModelForInference(flags.weights);
    let data: Awaited<ReturnType<typeof openDataset>>;
    let ev: Awaited<ReturnType<typeof evaluate>>;
    try {
      data = await openDataset(flags.data, {
        root: dataRoot(flags.cacheRoot), seed: flags.seed ?? m.seed ?? 0, skipBad: flags.skipBad, log: (l) => io.stderr(`warning: ${l}\n`),
        // The run's own synthetic set unless other sizes were asked for.
        syntheticTrain: flags.syntheticTrain ?? m.synthetic?.train,
        syntheticVal: flags.syntheticVal ?? m.synthetic?.val,
        syntheticSize: flags.syntheticSize ?? m.synthetic?.size,
      });
      if (data.classes.join() !== m.classes.join()) {
        throw new Error(`--weights ${flags.weights} was trained on classes [${m.classes.slice(0, 5).join(', ')}…] (${m.classes.length}); --data has [${data.classes.slice(0, 5).join(', ')}…] (${data.classes.length})`);
      }
      const loader = new BatchLoader(data.val, {
        batchSize: flags.batch,
        augment: { ...PRESET_AUGMENT.none, size: m.size, mean: m.mean, std: m.std },
        workers: flags.workers,
        skipBad: flags.skipBad,
      });
      await useBoxFile(m, flags.boxes, data.val.map((s) => s.path));
      ev = await evaluate(m.model, loader, m.size, data.classes.length, data.hasDifficult, data.val);
      await loader.close();
    } finally {
      m.model.release();
    }
    const table = percentTable(ev.table);
    const perClass = Object.fromEntries(data.classes.map((c, i) => [c, ev.apPerClass[i] * 100]));
    const split = data.valIsTest ? 'test' : 'val';
    if (flags.json) {
      io.stdout(`${JSON.stringify({ split, images: data.val.length, metrics_percent: table, ap_per_class_percent: perClass })}\n`);
      return;
    }
    const rows = (entries: [string, number][]) => {
      const w = Math.max(...entries.map(([k]) => k.length));
      return entries.map(([k, v]) => `  ${k.padEnd(w)}  ${v.toFixed(2)}\n`).join('');
    };
    io.stdout(`${data.name}: ${data.val.length} ${split} images\n${rows(Object.entries(table))}per-class AP\n${rows(Object.entries(perClass))}`);
  },
});
