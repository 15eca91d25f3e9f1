// Loading a trained model for eval / predict: the checkpoint's metadata says which model, input
// size and classes it was trained with.
import { loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { buildModel, type MultiLabelModel } from '../models/factory.js';
import { checkpointLabelEmbeddings } from '../models/ml-gcn.js';
import { PRESETS } from './presets.js';
import { asRegionModel, type RegionModel } from '../models/gm-mlic.js';
import { loadBoxTable } from './box-file.js';
import { UsageError } from './args.js';

export interface InferenceModel {
  model: MultiLabelModel;
  classes: string[];
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** The training run's data seed and synthetic-set size, when it recorded them. */
  seed?: number;
  synthetic?: { train: number; val: number; size: number };
  /** Region models with the `-boxes` source: the box file the run was trained with. */
  boxes?: string;
  /** The model's region interface (IA-GCN, GM-MLIC). */
  region?: RegionModel;
}

/** A `-boxes` region model reads its instances from `file` (else the run's box file) for these images. */
export async function useBoxFile(m: InferenceModel, file: string | undefined, paths: readonly string[]): Promise<void> {
  const spec = m.region?.spec;
  if (!spec || spec.source !== 'boxes') return;
  const f = file ?? m.boxes;
  if (!f) throw new UsageError(`${spec.family}: this checkpoint takes its instances from a box file: give --boxes FILE`);
  try {
    m.region!.setBoxTable(await loadBoxTable(f, paths));
  } catch (e) {
    throw new UsageError(`--boxes: ${(e as Error).message}`, { cause: e });
  }
}

export async function loadModelForInference(path: string): Promise<InferenceModel> {
  let ck: LoadedCheckpoint;
  try {
    ck = await loadCheckpoint(path);
  } catch (e) {
    throw new UsageError(`--weights ${path}: not a webvig checkpoint (${(e as Error).message})`);
  }
  const meta = ck.meta;
  if (!meta || typeof meta.model !== 'string' || typeof meta.size !== 'number' || !Array.isArray(meta.classes)) {
    throw new UsageError(`--weights ${path}: not a webvig training checkpoint (no model/size/classes metadata)`);
  }
  const classes = meta.classes as string[];
  // An ML-GCN head is rebuilt with the checkpoint's embeddings; its `adj` buffer is loaded below.
  // (GM-MLIC keeps its label vectors as `label_embeddings`.)
  const labelEmbeddings = checkpointLabelEmbeddings(ck.model) ?? checkpointLabelEmbeddings(new Map([...ck.model].filter(([k]) => k === 'label_embeddings').map(([, v]) => ['gcn.embeddings', v])));
  const model = buildModel(meta.model, { size: meta.size, numLabels: classes.length, labelEmbeddings });
  try {
    model.loadStateDict(ck.model);
  } catch (e) {
    model.release();
    const msg = (e as Error).message;
    throw new UsageError(msg.startsWith('tensor "') ? `--weights ${path}: ${msg}` : `--weights ${path}: does not fit model ${meta.model}: ${msg}`);
  }
  model.eval({ foldBatchNorm: true });
  const preset = PRESETS[(meta.preset as string) ?? 'tiny'] ?? PRESETS.tiny;
  return {
    model, classes, size: meta.size, mean: preset.mean, std: preset.std,
    seed: typeof meta.seed === 'number' ? meta.seed : undefined,
    synthetic: meta.synthetic as InferenceModel['synthetic'],
    boxes: typeof meta.boxes === 'string' ? meta.boxes : undefined,
    region: asRegionModel(model),
  };
}
