// The public compute API (the package's `webvig` entry): the engine, every op as `F`, and `backward`.
export * from '../engine/index.js';
export * as F from './ops.js';
export { backward } from './backward.js';
export { autotune, tunePending, tuneEntries, attachTuneCache, resetTuning, type TuneEntries } from './autotune.js';
