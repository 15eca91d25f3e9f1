// The public engine API.
export { init, device, tidy, keep, noGrad, beginScope, endScope, isGradEnabled } from './context.js';
export { Device, type DeviceOptions, type MemoryStats } from './device.js';
export { Tensor, Rng, numel, type DType, type Shape } from './tensor.js';
export { backward, detach, record, type GradNode } from './autograd.js';
export { setKernelSourceProvider } from './kernel.js';
export * as F from '../kernels/ops.js';
