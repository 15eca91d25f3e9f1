// The `webvig/models` entry: modules with official parameter names, the models, their losses.
export { Module, type StateEntry, type LoadResult, type ForwardTracer } from './module.js';
export { Conv2d, BatchNorm2d, Linear, Embedding, GELU, Identity, Sequential, ModuleList, dropPath, residualDropPath, residualBranch } from './layers.js';
export { DilatedKnnGraph, GraphConv, Grapher, FFN, Stem, Downsample, GrapherLabel, vigBlock } from './vig-blocks.js';
export { PyramidVig, VigTrunk, VIG_VARIANTS, type VigConfig } from './pyramid-vig.js';
export { Gkgnet, GkgnetBackbone, LabelQueryHead, gkgnetConfig, type GkgnetConfig } from './gkgnet.js';
export { MlVig, MlgBlock, mlVigConfig, type MlVigConfig } from './ml-vig.js';
export {
  MlGcnHead, VigMlGcn, GkgnetMlGcn, MlVigMlGcn, labelCorrelation, labelGraph, normalizeGraph, labelEmbeddingsFromTables,
  normalizeClassName, GLOVE_TABLES, type GloveTable, type GloveTableData, type DefaultLabelEmbeddings, ADJACENCY_MODES, type AdjacencyMode, type LabelEmbeddings,
} from './ml-gcn.js';
export {
  asymmetricLossMmcls, labelSmoothBce, gkgnetLoss, asymmetricLossAlibaba, asymmetricLossOptimized, bceWithLogits,
} from './losses.js';
export { buildModel, trainingLossFor, parameterCounts, MODEL_NAMES, modelNamesSummary, type ModelName, type BuildOptions, type MultiLabelModel } from './factory.js';
export { loadPretrainedBackbone, type PretrainedResult } from './pretrained.js';
export { relativePosTable } from './relative-pos.js';
export { GmMlic, GnBlock, weightedBce, asRegionModel, type RegionModel, type RegionModelOptions } from './gm-mlic.js';
export { IaGcn, IaGcnLabelGraph, iaGcnLoss, type IaGcnOptions } from './ia-gcn.js';
export {
  REGION_MODEL_NAMES, parseRegionModel, gridBoxes, batchBoxes, LayerNorm, GraphMlp, type BoxTable,
} from './regions.js';
