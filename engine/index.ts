// The public engine API.
export { init, device, tidy, keep, noGrad, beginScope, endScope, isGradEnabled, operandPrecision, setOperandPrecision, activationDtype, setActivationDtype, type OperandPrecision } from './context.js';
export { Device, REDUCED_PRECISION_TOGGLES, type DeviceOptions, type DeviceLimits, type MemoryStats } from './device.js';
export { precisionReport, probePrecision, type PrecisionReport, type PrecisionSupport, type SubgroupMatrixConfig } from './precision.js';
export { Tensor, numel, dtypeBytes, isFloat, type DType, type Shape } from './tensor.js';
export { Rng } from './rng.js';
export { backwardWith, detach, record, type GradNode, type GradArithmetic, type PendingGrads, type ChunkSum } from './autograd.js';
export { setKernelSourceProvider, registerKernelSources } from './kernel.js';
export { StepReplay, Recording, perStep, type StepInput, type StepMode, type StepReplayOptions } from './replay.js';
