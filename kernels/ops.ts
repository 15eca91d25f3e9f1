// Every op, forward and backward, in one namespace (import * as F from 'webvig/kernels/ops').
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './softmax.js';
export * from './gather.js';
export * from './fill.js';
