// The `webvig/train` entry: data, optimiser, schedule, training loop, metrics, checkpoints.
export { train, evaluate, type TrainConfig, type EpochRow, type Summary } from './trainer.js';
export { AdamW, clipGradNorm, type ParamGroup, type AdamWOptions } from './optim.js';
export { learningRate, type ScheduleConfig } from './schedule.js';
export { averagePrecision, cocoMetrics, mmclsMetrics, MetricAccumulator } from './metrics.js';
export { saveCheckpoint, loadCheckpoint, type CheckpointMeta, type LoadedCheckpoint } from './checkpoint.js';
export { loadModelForInference, type InferenceModel } from './inference.js';
export { openDataset, type Sample, type MultiLabelDataset, type OpenDatasetOptions } from './data/dataset.js';
export { BatchLoader, type Batch, type LoaderOptions } from './data/loader.js';
export { PRESETS, type TrainPreset } from './presets.js';
export { readBoxFile, loadBoxTable } from './box-file.js';
export { parityBytes, type FileReport } from './parity/parity.js';
export { parityFile } from './parity/parity-file.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors, writeSafetensorsTo } from './safetensors-file.js';
export { writeFileAtomic } from './atomic-file.js';
export { readLabelEmbeddings, defaultLabelEmbeddings, gloveTable } from './label-embeddings.js';
export { loadPretrainedFile } from './pretrained-file.js';
