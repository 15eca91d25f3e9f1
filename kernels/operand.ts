// The operand precision of the matmul and convolution kernels: matmul.wgsl and conv2d.wgsl stage
// their tiles as opnd_t (tile.wgsl), pointwise.wgsl and direct.wgsl read every operand through
// opnd() / opnd4(). The prelude prepended here makes opnd_t f32 and opnd() the identity (the
// default: the code computes exactly what it did without the prelude), or opnd_t f16 and opnd() a
// round trip through f16 (--precision mixed: f16 inputs, products and sums in f32, as tensor cores
// and autocast compute them).
import { operandPrecision, type OperandPrecision } from '../engine/context.js';
import type { DType } from '../engine/tensor.js';

const PRELUDE: Record<OperandPrecision, string> = {
  f32: 'alias opnd_t = f32;\nfn opnd(x: f32) -> f32 { return x; }\nfn opnd4(x: vec4f) -> vec4f { return x; }\n',
  // Mesa's shader compiler folds f32(f16(x)) back into x (and pack2x16float's round trip with it);
  // passing the f16's bits through an integer mask keeps the rounding (and ±Inf past 65504).
  f16:
    'enable f16;\nalias opnd_t = f16;\n' +
    'fn opnd(x: f32) -> f32 { return f32(bitcast<vec2h>(bitcast<u32>(vec2h(f16(x), 0.0h)) & 0xffffu).x); }\n' +
    'fn opnd4(x: vec4f) -> vec4f { return vec4f(opnd(x.x), opnd(x.y), opnd(x.z), opnd(x.w)); }\n',
};

// Keyed by the source string the kernel cache hands out, so a launch builds no new string.
const cache: Record<OperandPrecision, Map<string, string>> = { f32: new Map(), f16: new Map() };

/** `code` with the current operand precision's opnd() / opnd4() in front. */
export function operandSource(code: string): string {
  const p = operandPrecision();
  let src = cache[p].get(code);
  if (src === undefined) {
    src = PRELUDE[p] + code;
    cache[p].set(code, src);
  }
  return src;
}

/**
 * The element types of a GEMM kernel's arrays in memory, which operands are rounded from (matmul.wgsl
 * and conv2d.wgsl declare `array<A_t>` …; matmul.wgsl has no addend): each the dtype of the tensor
 * bound there (f16 activations and their gradients), 'f32' for a placeholder.
 */
export type GemmStorage = { A: DType; B: DType; bias: DType; C: DType; addend: DType };

/** Every array f32: the kernels as they were before f16 storage. */
export const F32_STORAGE: GemmStorage = { A: 'f32', B: 'f32', bias: 'f32', C: 'f32', addend: 'f32' };

/** How source and autotuning keys name `s`: nothing when all f32 (so f32 keys stay as they were). */
export function storageName(s: GemmStorage): string {
  return s.A === 'f32' && s.B === 'f32' && s.bias === 'f32' && s.C === 'f32' && s.addend === 'f32' ? '' : ` ${s.A} ${s.B} ${s.bias} ${s.C} ${s.addend}`;
}
