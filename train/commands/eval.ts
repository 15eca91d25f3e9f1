// `webvig eval --weights FILE [--data …]`: the metric table and per-class AP of a checkpoint.
import { defineCommand } from '../args.js';
import { DEVICE_FLAGS } from './info.js';
import { DATA_FLAG, checkDataSpec, projectRoot } from './train.js';
import { loadModelForInference } from '../inference.js';

export const command = defineCommand({
  name: 'eval',
  summary: 'Evaluate a checkpoint on a validation/test split: mAP, CP, CR, CF1, OP, OR, OF1, top-3, per-class AP.',
  flags: {
    weights: { type: 'path', mustExist: true, required: true, help: 'checkpoint (.safetensors) written by webvig train' },
    data: DATA_FLAG,
    batch: { type: 'number', integer: true, min: 1, default: 32, help: 'batch size' },
    workers: { type: 'number', integer: true, min: 0, help: 'image decoding threads' },
    skipBad: { type: 'boolean', help: 'skip unreadable images instead of stopping' },
    json: { type: 'boolean', help: 'print one JSON object' },
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    checkDataSpec(flags.data, 'webvig eval');
    const { init } = await import('../../engine/context.js');
    await init({ adapter: flags.adapter, backend: flags.backend });
    const { openDataset } = await import('../data/dataset.js');
    const { BatchLoader } = await import('../data/loader.js');
    const { PRESET_AUGMENT } = await import('../data/transforms.js');
    const { evaluate } = await import('../trainer.js');
    const m = await loadModelForInference(flags.weights);
    const data = await openDataset(flags.data, { root: projectRoot(), skipBad: flags.skipBad, log: (l) => io.stderr(`warning: ${l}\n`) });
    if (data.classes.join() !== m.classes.join()) {
      throw new Error(`--weights ${flags.weights} was trained on classes [${m.classes.slice(0, 5).join(', ')}…] (${m.classes.length}); --data has [${data.classes.slice(0, 5).join(', ')}…] (${data.classes.length})`);
    }
    const loader = new BatchLoader(data.val, {
      batchSize: flags.batch,
      augment: { ...PRESET_AUGMENT.none, size: m.size, mean: m.mean, std: m.std },
      workers: flags.workers,
      skipBad: flags.skipBad,
    });
    const ev = await evaluate(m.model, loader, m.size, data.classes.length, data.hasDifficult);
    await loader.close();
    const t = ev.table as unknown as Record<string, number>;
    const pct = (v: number) => (data.hasDifficult ? v : v * 100);
    const keys = data.hasDifficult ? [] : ['mAP', 'CP', 'CR', 'CF1', 'OP', 'OR', 'OF1', 'CP_top3', 'CR_top3', 'CF1_top3', 'OP_top3', 'OR_top3', 'OF1_top3'];
    const table: Record<string, number> = data.hasDifficult
      ? (() => {
          const mm = ev.table as unknown as { mAP: number; thr: Record<string, number>; top3: Record<string, number> };
          const r: Record<string, number> = { mAP: mm.mAP };
          for (const [k, v] of Object.entries(mm.thr)) r[k] = v;
          for (const [k, v] of Object.entries(mm.top3)) r[`${k}_top3`] = v;
          return r;
        })()
      : Object.fromEntries(keys.map((k) => [k, pct(t[k])]));
    const perClass = Object.fromEntries(data.classes.map((c, i) => [c, ev.apPerClass[i] * 100]));
    if (flags.json) {
      io.stdout(`${JSON.stringify({ split: data.valIsTest ? 'test' : 'val', images: data.val.length, metrics_percent: table, ap_per_class_percent: perClass })}\n`);
      return;
    }
    io.stdout(`${data.name}: ${data.val.length} ${data.valIsTest ? 'test' : 'val'} images\n`);
    for (const [k, v] of Object.entries(table)) io.stdout(`  ${k.padEnd(9)} ${v.toFixed(2)}\n`);
    io.stdout('per-class AP\n');
    const w = Math.max(...data.classes.map((c) => c.length));
    for (const [c, v] of Object.entries(perClass)) io.stdout(`  ${c.padEnd(w)}  ${v.toFixed(2)}\n`);
  },
});
