// Process-wide engine state: the current device, tensor scopes and the grad mode.
import { Device, type DeviceOptions } from './device.js';
import type { Tensor } from './tensor.js';

let current: Device | null = null;
let pendingInit: Promise<Device> | null = null;

/** Create the device once; later calls return the same one. */
export function init(options: DeviceOptions = {}): Promise<Device> {
  if (current) return Promise.resolve(current);
  pendingInit ??= Device.create(options).then((d) => (current = d));
  return pendingInit;
}

export function device(): Device {
  if (!current) throw new Error('webvig: no device yet; `await init()` before creating tensors');
  return current;
}

/** The device if one has been created, else null (nothing is created). */
export function currentDevice(): Device | null {
  return current;
}

// ------------------------------------------------------------------ scopes
// Every tensor is registered in the innermost open scope; closing the scope releases the ones that
// were neither returned nor kept. Release is deterministic: nothing depends on garbage collection.

const scopes: Set<Tensor>[] = [];

export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Take a tensor out of every open scope so that it outlives them (e.g. parameters, gradients). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

export function beginScope(): void {
  scopes.push(new Set());
}

/** Close the innermost scope, releasing its tensors except `survivors` (moved to the parent scope). */
export function endScope(survivors: Iterable<Tensor> = []): void {
  const s = scopes.pop();
  if (!s) throw new Error('endScope() without beginScope()');
  const live = new Set(survivors);
  for (const t of s) {
    if (live.has(t)) scopes[scopes.length - 1]?.add(t);
    else if (!t.released) t.release();
  }
}

/** Run `fn`, then release every tensor it created except those in its result. */
export function tidy<T>(fn: () => T): T {
  beginScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope();
    throw e;
  }
  endScope(collectTensors(result));
  return result;
}

function collectTensors(v: unknown, out: Tensor[] = []): Tensor[] {
  if (v && typeof v === 'object') {
    if ((v as { isTensor?: boolean }).isTensor) out.push(v as Tensor);
    else if (Array.isArray(v)) for (const x of v) collectTensors(x, out);
    else if (v.constructor === Object || v instanceof Map) {
      for (const x of v instanceof Map ? v.values() : Object.values(v)) collectTensors(x, out);
    }
  }
  return out;
}

// ------------------------------------------------------------------ grad mode

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording anything for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ------------------------------------------------------------------ operand precision
// What matmul and convolution kernels round their operands to (kernels/operand.ts): 'f16' under
// --precision mixed. Sums, storage and every other kernel stay f32.

export type OperandPrecision = 'f32' | 'f16';
let operands: OperandPrecision = 'f32';

export function operandPrecision(): OperandPrecision {
  return operands;
}

// ------------------------------------------------------------------ activation dtype
// The dtype convolutions and matmuls write their outputs in (and so, through the ops that keep
// their input's dtype, the activations and their gradients): 'f16' under --precision mixed on
// the gpu kernel profile, as autocast stores them; parameters, their gradients and the optimizer
// stay f32. An op whose kernel path cannot read f16 casts its input to f32 first.

let activations: 'f32' | 'f16' = 'f32';

export function activationDtype(): 'f32' | 'f16' {
  return activations;
}

/** Set the activation dtype (process-wide); 'f16' needs the device's shader-f16. */
export function setActivationDtype(dt: 'f32' | 'f16'): void {
  if (dt === 'f16' && !device().features.has('shader-f16')) {
    throw new Error(`f16 activations need the shader-f16 feature, which ${device().describe()} lacks`);
  }
  activations = dt;
}

/** Set the operand precision (process-wide, like the grad mode); 'f16' needs the device's shader-f16. */
export function setOperandPrecision(p: OperandPrecision): void {
  if (p === 'f16' && !device().features.has('shader-f16')) {
    throw new Error(`f16 operands need the shader-f16 feature, which ${device().describe()} lacks`);
  }
  operands = p;
}
