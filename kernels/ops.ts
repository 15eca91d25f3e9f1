// Every op, forward and backward, in one namespace (import * as F from 'webvig/kernels/ops').
// The bundled WGSL (generated from kernels/*.wgsl), registered with the engine on import.
import './sources.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './softmax.js';
export * from './gather.js';
export * from './fill.js';
export * from './conv2d.js';
export { fixedSubgroupSize } from './subgroups.js';
export * from './knn.js';
export * from './max-relative.js';
export * from './adamw.js';
export * from './loss.js';
export * from './batchnorm.js';
export * from './layer-norm.js';
export * from './pool.js';
export * from './ring.js';
export * from './roi-align.js';
export * from './graph.js';
