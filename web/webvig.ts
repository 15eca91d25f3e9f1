// The browser entry (`webvig/browser`, bundled by scripts/build-web.mjs into dist/browser/webvig.js):
// the engine, every op (F), autograd and the models, with the WGSL kernels inside. It reaches no
// Node built-in (test/layers.test.ts); the GPU is `navigator.gpu`.
export * from '../kernels/index.js';
export * from '../models/index.js';
export {
  parseSafetensors, serializeSafetensors, readSafetensorsFrom, readSafetensorsHeaderFrom, planSafetensors, writeSafetensorsTo,
  SafetensorsError, type SafetensorsFile, type SafetensorsSource, type SafetensorsSink, type TensorRecord, type TensorToWrite,
} from '../engine/safetensors.js';
