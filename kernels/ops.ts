// Every op, forward and backward, in one namespace (import * as F from 'webvig/kernels/ops').
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './softmax.js';
export * from './gather.js';
export * from './fill.js';
export * from './conv2d.js';
export * from './knn.js';
export * from './max-relative.js';
export * from './adamw.js';
export * from './loss.js';
export * from './batchnorm.js';
export * from './pool.js';
export * from './roi-align.js';
export * from './graph.js';
