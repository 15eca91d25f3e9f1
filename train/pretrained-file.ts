// Pretrained ViG weights from a file (Node); the loading rule itself is models/pretrained.ts.
import { readSafetensors } from './safetensors-file.js';
import { loadPretrainedBackbone, type PretrainedResult } from '../models/pretrained.js';
import type { Module, StateEntry } from '../models/module.js';

/** Load a pretrained Pyramid ViG file (safetensors) into `model`; returns the lines to log. */
export async function loadPretrainedFile(model: Module, path: string): Promise<string[]> {
  let r: PretrainedResult;
  try {
    const state = new Map<string, StateEntry>();
    for (const [k, t] of (await readSafetensors(path)).tensors) {
      if (t.data instanceof Uint8Array) throw new Error(`tensor "${k}" has dtype ${t.dtype}, not a number type a model tensor can hold`);
      state.set(k, { shape: t.shape, data: t.data });
    }
    r = loadPretrainedBackbone(model, state);
  } catch (e) {
    throw new Error(`--pretrained ${path}: ${(e as Error).message} (expected a Pyramid ViG state dict saved as safetensors)`);
  }
  return [
    `pretrained: ${path}: loaded ${r.loaded.length} tensors, skipped ${r.skipped.length} (shape mismatch), ignored ${r.ignored.length}`,
    ...r.skipped.map((s) => `warning: pretrained: skipped ${s}`),
  ];
}
