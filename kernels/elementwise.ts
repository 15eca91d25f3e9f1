// Elementwise ops with NumPy broadcasting (kernel: elementwise.wgsl). Each public op is its
// forward launch plus its backward rule; gradients of broadcast operands are summed back to shape.
import { Tensor, isFloat, numel, type DType, type Shape } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { keep } from '../engine/context.js';
import { device } from '../engine/context.js';
import type { BufferArg } from '../engine/device.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';
import { sumTo } from './reduce.js';

const MAX_RANK = 8;

/** Contiguous strides of a row-major shape. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const d = rank - s.length + i;
      if (s[i] === out[d] || s[i] === 1) continue;
      if (out[d] !== 1) {
        throw new Error(`${op}: shapes ${shapes.map(shapeStr).join(' and ')} do not broadcast (axis ${d})`);
      }
      out[d] = s[i];
    }
  }
  return out;
}

/** Strides to read `shape` as if broadcast to `out` (0 along broadcast axes). */
function broadcastStrides(shape: Shape, out: Shape): number[] {
  const cs = contiguousStrides(shape);
  return out.map((_, d) => {
    const i = d - (out.length - shape.length);
    return i < 0 || shape[i] === 1 ? 0 : cs[i];
  });
}

/** Merge adjacent dimensions that every operand walks contiguously; drop size-1 dimensions. */
export function collapseDims(shape: Shape, strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Pack up to 8 dims as array<vec4u, 2>. */
export function packDims(v: number[], op: string): number[] {
  if (v.length > MAX_RANK) throw new Error(`${op}: rank ${v.length} exceeds ${MAX_RANK} after merging dimensions`);
  const out = new Array<number>(8).fill(0);
  v.forEach((x, i) => (out[i] = x));
  return out;
}

const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, abs: 5, relu: 6, gelu: 7, sigmoid: 8, tanh: 9,
  pow: 10, clamp: 11, affine: 12, sign: 13, gtScalar: 14, reciprocal: 15, identity: 99,
} as const;
const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, pow: 6, gt: 7, eq: 8, ge: 9,
  geluGrad: 20, sigmoidGrad: 21, tanhGrad: 22, reluGrad: 23, absGrad: 24, clampGrad: 25, powGrad: 26,
} as const;
const TERNARY = { where: 0, addcmul: 1 } as const;

/**
 * The output's dtype: f16 when an f16 operand has the output's full shape (an activation), else f32
 * when any operand is f32. So an f32 bias, scale, mask or label embedding leaves an f16 activation
 * f16, whatever the batch size (autocast keeps activations f16; PyTorch's promotion would not), and
 * an f16 value broadcast over an f32 one gives f32. The first `counted` operands count.
 */
function resultType(inputs: Tensor[], counted: number, size: number): DType {
  let dt: DType = 'f16';
  for (let k = 0; k < counted; k++) {
    if (inputs[k].dtype === 'f16' && inputs[k].size === size) return 'f16';
    if (inputs[k].dtype === 'f32') dt = 'f32';
  }
  return dt;
}

function elementwise(entry: 'unary' | 'binary' | 'ternary', code: number, inputs: Tensor[], op: string, alpha = 0, beta = 0, target?: Shape, outType?: DType): Tensor {
  for (const t of inputs) {
    t.assertAlive(op);
    if (!isFloat(t.dtype)) throw new Error(`${op}: expects f32 or f16 tensors, got ${t.describe()}`);
  }
  const shape = broadcastShapes(op, ...inputs.map((t) => t.shape), ...(target ? [target] : []));
  // where's condition (its third operand) takes no part in the output's type
  const counted = code === TERNARY.where && entry === 'ternary' ? 2 : inputs.length;
  const out = Tensor.empty(shape, outType ?? resultType(inputs, counted, numel(shape)), op);
  if (out.size === 0) return out;
  const cpu = device().kernelProfile === 'cpu';
  const storage = { a: inputs[0].dtype, b: inputs[1]?.dtype ?? 'f32', c: inputs[2]?.dtype ?? 'f32', out: out.dtype };
  if (cpu && inputs.every((t) => t.size === out.size || t.size === 1)) {
    vec4Launch(entry, code, inputs, out, storage, op, alpha, beta, null);
    return out;
  }
  const strides = inputs.map((t) => broadcastStrides(t.shape, shape));
  const c = collapseDims(shape, strides);
  const s3 = [0, 1, 2].map((k) => packDims(c.strides[k] ?? [], op));
  if (cpu && c.shape.length > 0 && c.shape[c.shape.length - 1] % 4 === 0) {
    vec4Launch(entry, code, inputs, out, storage, op, alpha, beta, { shape: c.shape, strides: c.strides, packed: s3 });
    return out;
  }
  launch({
    file: 'elementwise.wgsl',
    entry,
    constants: { OP: code },
    storage,
    args: [...inputs, out],
    params: [out.size, c.shape.length, f32bits(alpha), f32bits(beta), ...packDims(c.shape, op), ...s3[0], ...s3[1], ...s3[2]],
    workgroups: grid1d(out.size),
    context: `${op} ${inputs.map((t) => shapeStr(t.shape)).join(' ')}`,
  });
  return out;
}

/** vec4s per invocation of elementwise-vec4.wgsl (64 invocations per workgroup). */
const VEC4_PER = 4;

/**
 * elementwise-vec4.wgsl, on CPU adapters, where the generic kernel's per-element div/mod, dynamically
 * indexed uniforms and small workgroups cost ~10× (bench/RESULTS.md); operands f32 or f16 as
 * `storage` names them. `bcast` null: every operand has the output's size (hence its element order)
 * or is a single value, and no index is computed at all. Otherwise the merged broadcast dimensions,
 * whose innermost one is a multiple of 4 long.
 */
function vec4Launch(
  entry: 'unary' | 'binary' | 'ternary', code: number, inputs: Tensor[], out: Tensor, storage: Record<string, DType>, op: string, alpha: number, beta: number,
  bcast: { shape: number[]; strides: number[][]; packed: number[][] } | null,
): void {
  const n4 = Math.ceil(out.size / 4);
  const scalar = inputs.map((t) => !bcast && t.size === 1 && out.size > 1);
  const inner = inputs.map((_, k) => (bcast ? bcast.strides[k][bcast.shape.length - 1] === 1 : true));
  const flags = (name: string, v: boolean[]) => Object.fromEntries(['A', 'B', 'C'].map((x, k) => [`${name}_${x}`, +!!(v[k] ?? (name === 'INNER'))]));
  launch({
    file: 'elementwise-vec4.wgsl',
    entry: `${entry}4`,
    constants: { OP: code, PER: VEC4_PER, RANK: bcast ? bcast.shape.length : 0, ...flags('SCALAR', scalar), ...flags('INNER', inner) },
    storage,
    args: [...inputs, out].map(padded16),
    params: [n4, 0, f32bits(alpha), f32bits(beta), ...(bcast ? [...packDims(bcast.shape, op), ...bcast.packed.flat()] : new Array(32).fill(0))],
    workgroups: grid1d(n4, 64 * VEC4_PER),
    context: `${op} ${inputs.map((t) => shapeStr(t.shape)).join(' ')}`,
  });
}

/** A tensor bound as whole vec4s (of f32 or f16): its size rounded up to 16 bytes, which its buffer always holds past its offset. */
const padded16 = (t: Tensor): BufferArg => t.binding(Math.ceil(t.bytes / 16) * 16);

/**
 * Ops autocast runs in f32 (its fp32 list): their results overflow or lose f16's range (exp(12) >
 * 65504). A later op with an f16 activation of the same shape rounds such a result back to f16
 * (resultType): a loss or anything else that must stay f32 casts its f16 inputs first.
 */
const F32_RESULTS: ReadonlySet<string> = new Set(['exp', 'log', 'pow', 'rsqrt', 'reciprocal']);

export const unaryRaw = (x: Tensor, name: keyof typeof UNARY, alpha = 0, beta = 0) =>
  elementwise('unary', UNARY[name], [x], name, alpha, beta, undefined, F32_RESULTS.has(name) ? 'f32' : undefined);
export const binaryRaw = (a: Tensor, b: Tensor, name: keyof typeof BINARY, alpha = 0, beta = 0, dtype?: DType) =>
  elementwise('binary', BINARY[name], [a, b], name, alpha, beta, undefined, dtype);

/**
 * The dtype of a product that makes `x`'s gradient: f32 for an f32 operand (a parameter, a scale), whose
 * gradient is summed over a broadcast or kept in f32 anyway, since f16 products of loss-scaled
 * gradients overflow at 65504; otherwise the operands' (resultType).
 */
const gradType = (x: Tensor): DType | undefined => (x.dtype === 'f32' ? 'f32' : undefined);

// ---------------------------------------------------------------- unary ops

export function neg(x: Tensor): Tensor {
  return record(unaryRaw(x, 'neg'), 'neg', [x], (g) => [neg(g)]);
}

export function exp(x: Tensor): Tensor {
  const y = unaryRaw(x, 'exp');
  return record(y, 'exp', [x], (g) => [binaryRaw(g, y, 'mul')]);
}

export function log(x: Tensor): Tensor {
  return record(unaryRaw(x, 'log'), 'log', [x], (g) => [binaryRaw(g, x, 'div')]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unaryRaw(x, 'sqrt');
  // d sqrt = g / (2 sqrt x)
  return record(y, 'sqrt', [x], (g) => [scale(binaryRaw(g, y, 'div'), 0.5)]);
}

export function rsqrt(x: Tensor): Tensor {
  const y = unaryRaw(x, 'rsqrt');
  // d x^-1/2 = -1/2 x^-3/2 g
  return record(y, 'rsqrt', [x], (g) => [binaryRaw(x, g, 'powGrad', -0.5)]);
}

export function reciprocal(x: Tensor): Tensor {
  return record(unaryRaw(x, 'reciprocal'), 'reciprocal', [x], (g) => [binaryRaw(x, g, 'powGrad', -1)]);
}

export function abs(x: Tensor): Tensor {
  return record(unaryRaw(x, 'abs'), 'abs', [x], (g) => [binaryRaw(x, g, 'absGrad')]);
}

export function relu(x: Tensor): Tensor {
  return record(unaryRaw(x, 'relu'), 'relu', [x], (g) => [binaryRaw(x, g, 'reluGrad')]);
}

/** GELU, exact erf form (PyTorch's nn.GELU() default). */
export function gelu(x: Tensor): Tensor {
  return record(unaryRaw(x, 'gelu'), 'gelu', [x], (g) => [binaryRaw(x, g, 'geluGrad')]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = unaryRaw(x, 'sigmoid');
  return record(y, 'sigmoid', [x], (g) => [binaryRaw(y, g, 'sigmoidGrad')]);
}

export function tanh(x: Tensor): Tensor {
  const y = unaryRaw(x, 'tanh');
  return record(y, 'tanh', [x], (g) => [binaryRaw(y, g, 'tanhGrad')]);
}

/** x ** e for a scalar exponent (x^0 = 1 everywhere, with zero gradient). */
export function powScalar(x: Tensor, e: number): Tensor {
  return record(unaryRaw(x, 'pow', e), 'pow', [x], (g) => [binaryRaw(x, g, 'powGrad', e)]);
}

export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  const lo = Math.max(min, -3.4028234663852886e38);
  const hi = Math.min(max, 3.4028234663852886e38);
  return record(unaryRaw(x, 'clamp', lo, hi), 'clamp', [x], (g) => [binaryRaw(x, g, 'clampGrad', lo, hi)]);
}

/** x·a + b with scalars a, b. */
export function affine(x: Tensor, a: number, b = 0): Tensor {
  return record(unaryRaw(x, 'affine', a, b), 'affine', [x], (g) => [scale(g, a)]);
}

export function scale(x: Tensor, a: number): Tensor {
  return affine(x, a, 0);
}

/** `x` as `dtype` (f32 ↔ f16, rounding to nearest even); the gradient goes back in x's dtype. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const y = elementwise('unary', UNARY.identity, [x], 'cast', 0, 0, undefined, dtype);
  return record(y, 'cast', [x], (g) => [cast(g, x.dtype)]);
}

/** `x` in f32: how an op whose kernel path reads only f32 takes an f16 activation. */
export function asF32(x: Tensor): Tensor {
  return cast(x, 'f32');
}

/** Broadcast `x` to `shape` (a copy; the gradient sums back). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes('expand', x.shape, shape);
  if (out.join() !== shape.join()) throw new Error(`expand: ${shapeStr(x.shape)} cannot expand to ${shapeStr(shape)}`);
  const y = elementwise('unary', UNARY.identity, [x], 'expand', 0, 0, shape);
  return record(y, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

// ---------------------------------------------------------------- binary ops

type Operand = Tensor | number;

export function add(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a as Tensor, 1, b);
  if (typeof a === 'number') return affine(b, 1, a);
  const y = binaryRaw(a, b, 'add');
  return record(y, 'add', [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(g, b.shape) : null,
  ]);
}

export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a as Tensor, 1, -b);
  if (typeof a === 'number') return affine(b, -1, a);
  const y = binaryRaw(a, b, 'sub');
  return record(y, 'sub', [a, b], (g) => [
    a.requiresGrad ? sumTo(g, a.shape) : null,
    b.requiresGrad ? sumTo(neg(g), b.shape) : null,
  ]);
}

export function mul(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a as Tensor, b, 0);
  if (typeof a === 'number') return affine(b, a, 0);
  const y = binaryRaw(a, b, 'mul');
  return record(y, 'mul', [a, b], (g) => [
    a.requiresGrad ? sumTo(binaryRaw(g, b, 'mul', 0, 0, gradType(a)), a.shape) : null,
    b.requiresGrad ? sumTo(binaryRaw(g, a, 'mul', 0, 0, gradType(b)), b.shape) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a as Tensor, 1 / b, 0);
  if (typeof a === 'number') return mul(reciprocal(b), a);
  const y = binaryRaw(a, b, 'div');
  return record(y, 'div', [a, b], (g) => [
    a.requiresGrad ? sumTo(binaryRaw(g, b, 'div', 0, 0, gradType(a)), a.shape) : null,
    // d(a/b)/db = -a/b² = -y/b
    b.requiresGrad ? sumTo(neg(binaryRaw(binaryRaw(g, y, 'mul', 0, 0, gradType(b)), b, 'div', 0, 0, gradType(b))), b.shape) : null,
  ]);
}

/** Elementwise maximum; where a == b the gradient goes to a (as torch.maximum splits it, we do not). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const y = binaryRaw(a, b, 'maximum');
  return record(y, 'maximum', [a, b], (g) => {
    const takeA = binaryRaw(a, b, 'ge');
    return [sumTo(where(takeA, g, 0), a.shape), sumTo(where(takeA, 0, g), b.shape)];
  });
}

export function minimum(a: Tensor, b: Tensor): Tensor {
  const y = binaryRaw(a, b, 'minimum');
  return record(y, 'minimum', [a, b], (g) => {
    const takeA = binaryRaw(b, a, 'ge');
    return [sumTo(where(takeA, g, 0), a.shape), sumTo(where(takeA, 0, g), b.shape)];
  });
}

/** 1.0 where a > b, else 0.0 (no gradient). */
export function gt(a: Tensor, b: Operand): Tensor {
  return typeof b === 'number' ? unaryRaw(a, 'gtScalar', b) : binaryRaw(a, b, 'gt');
}

export function eq(a: Tensor, b: Tensor): Tensor {
  return binaryRaw(a, b, 'eq');
}

/** where(cond ≠ 0, a, b), broadcasting all three; scalars allowed for a and b. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const ta = typeof a === 'number' ? scalarTensor(a) : a;
  const tb = typeof b === 'number' ? scalarTensor(b) : b;
  const y = elementwise('ternary', TERNARY.where, [ta, tb, cond], 'where');
  return record(y, 'where', [ta, tb], (g) => [
    ta.requiresGrad ? sumTo(where(cond, g, 0), ta.shape) : null,
    tb.requiresGrad ? sumTo(where(cond, 0, g), tb.shape) : null,
  ]);
}

/**
 * x + y·s (torch.addcmul with value 1), broadcasting all three: one pass where mul then add take two
 * (a residual plus a drop-path-scaled branch). Gradients: x ← g, y ← g·s, s ← g·y, each summed to
 * its operand's shape.
 */
export function addcmul(x: Tensor, y: Tensor, s: Tensor): Tensor {
  const out = elementwise('ternary', TERNARY.addcmul, [x, y, s], 'addcmul');
  return record(out, 'addcmul', [x, y, s], (g) => [
    x.requiresGrad ? sumTo(g, x.shape) : null,
    y.requiresGrad ? sumTo(binaryRaw(g, s, 'mul', 0, 0, gradType(y)), y.shape) : null,
    s.requiresGrad ? sumTo(binaryRaw(g, y, 'mul', 0, 0, gradType(s)), s.shape) : null,
  ]);
}

const scalarCache = new Map<number, Tensor>();
/** Constant one-element tensors, created once and kept for the life of the device. */
function scalarTensor(v: number): Tensor {
  let t = scalarCache.get(v);
  if (!t || t.released) {
    t = keep(Tensor.from([v], [1]));
    scalarCache.set(v, t);
  }
  return t;
}
