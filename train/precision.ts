// --precision (train, bench): 'fp32' (the default) or 'mixed': matmul and convolution operands in
// f16 with f32 sums (kernels/operand.ts), activations and their gradients stored in f16 on the gpu
// kernel profile (activationDtype()), f32 master weights, optimizer, BatchNorm statistics, softmax
// and losses, and dynamic loss scaling with torch.amp.GradScaler's defaults (kernels/grad-scaler.ts;
// the trainer and the train bench make one per run).
import type { Device } from '../engine/device.js';
import { activationDtype, setActivationDtype, setOperandPrecision } from '../engine/context.js';
import { envVar } from '../engine/gpu.js';
import { verifyMatrixTiles, matrixTiles, matrixName } from '../kernels/matrix-tiles.js';
import { UsageError } from './args.js';

export const PRECISIONS = ['fp32', 'mixed'] as const;
export type Precision = (typeof PRECISIONS)[number];

export const PRECISION_FLAG = {
  type: 'string',
  choices: PRECISIONS,
  help: 'fp32 (default), or mixed: f16 matmul/conv operands (and, with the gpu kernels, activations) with f32 sums, f32 weights, dynamic loss scaling (needs shader-f16)',
} as const;

/** Why `features` cannot run --precision mixed, or null when they can. */
export function mixedPrecisionProblem(features: ReadonlySet<string>, adapter: string): string | null {
  if (features.has('shader-f16')) return null;
  return (
    `--precision mixed needs the WebGPU feature shader-f16, which ${adapter} does not offer ` +
    '(on NVIDIA, Dawn offers it with WEBVIG_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia; `webvig info` shows what the adapter has)'
  );
}

/**
 * Switch the matmul/conv kernels to `precision` (undo with resetPrecision()); refuses (UsageError,
 * exit 2) --precision mixed on an adapter without shader-f16. A mixed run also needs a GradScaler.
 * Under mixed, the convolutions take the adapter's subgroup matrices (tensor cores) once they have
 * matched the register tiles here (kernels/matrix-tiles.ts). Returns what the convolutions' GEMMs
 * run on, for the log.
 */
export async function usePrecision(precision: Precision, dev: Device, prog: string): Promise<string> {
  if (precision === 'fp32') return 'register tiles';
  const problem = mixedPrecisionProblem(dev.features, dev.describe());
  if (problem) throw new UsageError(`${prog}: ${problem}`);
  const activations = f16Activations(dev) ? 'f16' : 'f32';
  setOperandPrecision('f16');
  setActivationDtype(activations);
  const why = await verifyMatrixTiles();
  const m = matrixTiles();
  return m ? matrixName(m) : `register tiles (${why ?? 'matrix tiles are off'})`;
}

/**
 * Whether a mixed run stores activations in f16: on the gpu kernel profile, whose kernels read and
 * write f16 (the cpu profile's would cast, and a CPU gains nothing from f16), unless
 * WEBVIG_F16_ACTIVATIONS=0.
 */
function f16Activations(dev: Device): boolean {
  const v = envVar('WEBVIG_F16_ACTIVATIONS');
  if (v !== undefined && v !== '0' && v !== '1') throw new UsageError(`WEBVIG_F16_ACTIVATIONS=${v}: expected 0 or 1`);
  return v === '1' || (v !== '0' && dev.kernelProfile === 'gpu');
}

/** What a run's activations are stored as, for logs and bench results. */
export function activationsNote(): string {
  return activationDtype() === 'f16' ? 'f16 activations' : 'f32 activations';
}

export function resetPrecision(): void {
  setOperandPrecision('f32');
  setActivationDtype('f32');
}
