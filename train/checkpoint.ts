// Checkpoints: one safetensors file holding the model under its official names, the optimizer's
// moments under `optimizer.<param>.exp_avg|exp_avg_sq`, and a JSON `webvig` metadata entry (epoch,
// step, RNG states, resolved config). Written atomically (temp file, fsync, rename): a crash at any
// moment leaves the previous file intact.
import type { TensorToWrite } from '../engine/safetensors.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors-file.js';
import type { Module, StateEntry } from '../models/module.js';

export const OPTIMIZER_PREFIX = 'optimizer.';

export interface CheckpointMeta {
  epoch: number;
  step: number;
  [key: string]: unknown;
}

/** `model` is a Module or a state it returned earlier (a snapshot, e.g. to write behind later steps). */
export async function saveCheckpoint(path: string, model: Module | Map<string, StateEntry>, optimizerState: Map<string, StateEntry>, meta: CheckpointMeta): Promise<void> {
  const modelState = model instanceof Map ? model : await model.stateDict();
  const tensors: TensorToWrite[] = [];
  for (const [name, e] of modelState) {
    tensors.push({ name, shape: e.shape, data: e.data, dtype: e.data instanceof Int32Array ? 'I64' : 'F32' });
  }
  for (const [name, e] of optimizerState) tensors.push({ name: OPTIMIZER_PREFIX + name, shape: e.shape, data: e.data, dtype: e.data instanceof Int32Array ? 'I32' : 'F32' });
  await writeSafetensors(path, tensors, { format: 'pt', webvig: JSON.stringify(meta) });
}

export interface LoadedCheckpoint {
  model: Map<string, StateEntry>;
  optimizer: Map<string, StateEntry>;
  meta: CheckpointMeta | null;
}

/** Read a checkpoint (ours, or a converted official state dict with no optimizer or metadata). */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const f = await readSafetensors(path);
  const model = new Map<string, StateEntry>();
  const optimizer = new Map<string, StateEntry>();
  for (const [name, r] of f.tensors) {
    if (r.data instanceof Uint8Array) throw new Error(`${path}: tensor ${name} has dtype ${r.dtype}, expected a number type`);
    const entry = { shape: r.shape, data: r.data };
    if (name.startsWith(OPTIMIZER_PREFIX)) optimizer.set(name.slice(OPTIMIZER_PREFIX.length), entry);
    else model.set(name, entry);
  }
  let meta: CheckpointMeta | null = null;
  if (f.metadata.webvig) {
    try {
      meta = JSON.parse(f.metadata.webvig) as CheckpointMeta;
    } catch {
      throw new Error(`${path}: metadata entry "webvig" is not valid JSON`);
    }
  }
  return { model, optimizer, meta };
}

/** The epoch a checkpoint of ours holds (header only; undefined when it records none). */
export async function checkpointEpoch(path: string): Promise<number | undefined> {
  const { metadata } = await readSafetensorsHeader(path);
  if (!metadata.webvig) return undefined;
  const epoch = (JSON.parse(metadata.webvig) as Partial<CheckpointMeta>).epoch;
  return Number.isSafeInteger(epoch) ? epoch : undefined;
}
