// Loading a trained model for eval / predict: the checkpoint's metadata says which model, input
// size and classes it was trained with.
import { loadCheckpoint } from './checkpoint.js';
import { buildModel, type MultiLabelModel } from '../models/factory.js';
import { PRESETS } from './presets.js';

export interface InferenceModel {
  model: MultiLabelModel;
  classes: string[];
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export async function loadModelForInference(path: string): Promise<InferenceModel> {
  const ck = await loadCheckpoint(path);
  const meta = ck.meta;
  if (!meta || typeof meta.model !== 'string' || typeof meta.size !== 'number' || !Array.isArray(meta.classes)) {
    throw new Error(`--weights ${path}: not a webvig training checkpoint (no model/size/classes metadata)`);
  }
  const classes = meta.classes as string[];
  const model = buildModel(meta.model, { size: meta.size, numLabels: classes.length });
  model.loadStateDict(ck.model);
  model.eval();
  const preset = PRESETS[(meta.preset as string) ?? 'tiny'] ?? PRESETS.tiny;
  return { model, classes, size: meta.size, mean: preset.mean, std: preset.std };
}
