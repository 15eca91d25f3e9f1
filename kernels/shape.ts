// Shape ops (kernel: copy.wgsl, a strided copy): reshape is a free view; permute, slice, concat
// and pad copy. Each backward is another strided copy. Copies keep the dtype (f16 stays f16).
import { Tensor, resolveShape, type DType, type Shape } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { device } from '../engine/context.js';
import { launch, grid1d, shapeStr } from '../engine/launch.js';
import { contiguousStrides, collapseDims, packDims, cast } from './elementwise.js';
import { zeros } from './fill.js';

const COPY_PER_CPU = 8;

/** copy.wgsl's element type for `dt`: halves for f16, else 32-bit words copied bit for bit. */
const element = (dt: DType) => (dt === 'f16' ? 'f16' : 'u32');

/**
 * dst[dstOff + Σ i·dstStride] = src[srcOff + Σ i·srcStride] over every index of `shape` (offsets
 * and strides in elements; src and dst of one element size).
 */
export function stridedCopy(src: Tensor, srcOff: number, srcStrides: number[], dst: Tensor, dstOff: number, dstStrides: number[], shape: number[], op: string): void {
  if (element(src.dtype) !== element(dst.dtype)) throw new Error(`${op}: cannot copy ${src.describe()} into ${dst.describe()}`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const c = collapseDims(shape, [srcStrides, dstStrides]);
  // CPU adapters: the rank as a constant and COPY_PER_CPU elements per invocation (copy.wgsl).
  const cpu = device().kernelProfile === 'cpu' && c.shape.length > 0;
  const per = cpu ? COPY_PER_CPU : 1;
  launch({
    file: 'copy.wgsl',
    constants: cpu ? { RANK: c.shape.length, PER: per } : {},
    storage: { src: element(src.dtype), dst: element(dst.dtype) },
    args: [src, dst],
    params: [n, c.shape.length, srcOff, dstOff, ...packDims(c.shape, op), ...packDims(c.strides[0], op), ...packDims(c.strides[1], op)],
    workgroups: grid1d(Math.ceil(n / per)),
    context: `${op} ${shapeStr(src.shape)} -> ${shapeStr(dst.shape)}`,
  });
}

/** A view with a new shape (free); one dimension may be -1. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  x.assertAlive('reshape');
  const target = resolveShape(shape, x.size, x.shape);
  return record(x.view(target), 'reshape', [x], (g) => [g.view(x.shape)]);
}

export function flatten(x: Tensor, startDim = 0): Tensor {
  const s = x.shape.slice(0, startDim);
  return reshape(x, [...s, -1]);
}

/** Reorder axes (a copy): out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm.join(',')}] is not a permutation of the axes of ${shapeStr(x.shape)}`);
  }
  const xs = contiguousStrides(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const out = Tensor.empty(shape, x.dtype, 'permute');
  stridedCopy(x, 0, perm.map((p) => xs[p]), out, 0, contiguousStrides(shape), shape, 'permute');
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return record(out, 'permute', [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = a < 0 ? a + x.rank : a;
  const j = b < 0 ? b + x.rank : b;
  if (i < 0 || j < 0 || i >= x.rank || j >= x.rank) throw new Error(`transpose: axes ${a},${b} out of range for ${shapeStr(x.shape)}`);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[..., start:end, ...] along `axis` (end exclusive, negative indices from the end). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = axis < 0 ? axis + x.rank : axis;
  if (ax < 0 || ax >= x.rank) throw new Error(`slice: axis ${axis} out of range for ${shapeStr(x.shape)}`);
  const d = x.shape[ax];
  const s = start < 0 ? start + d : start;
  const e = end < 0 ? end + d : Math.min(end, d);
  if (s < 0 || s > e || e > d) throw new Error(`slice: [${start}:${end}] out of range for axis ${axis} of ${shapeStr(x.shape)}`);
  const shape = [...x.shape];
  shape[ax] = e - s;
  const xs = contiguousStrides(x.shape);
  const out = Tensor.empty(shape, x.dtype, 'slice');
  stridedCopy(x, s * xs[ax], xs, out, 0, contiguousStrides(shape), shape, 'slice');
  return record(out, 'slice', [x], (g) => {
    const gx = zeros(x.shape, g.dtype);
    stridedCopy(g, 0, contiguousStrides(shape), gx, s * xs[ax], xs, shape, 'slice backward');
    return [gx];
  });
}

/** Join tensors along `axis`; f16 if all are f16, else f32 (the f16 ones cast, as PyTorch promotes). */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  if (xs.some((t) => t.dtype === 'f16') && xs.some((t) => t.dtype !== 'f16')) xs = xs.map((t) => cast(t, 'f32'));
  const rank = xs[0].rank;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank) throw new Error(`concat: axis ${axis} out of range for ${xs.map((t) => shapeStr(t.shape)).join(', ')}`);
  for (const t of xs) {
    if (t.rank !== rank || t.dtype !== xs[0].dtype || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat: shapes ${xs.map((t) => shapeStr(t.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((a, t) => a + t.shape[ax], 0);
  const out = Tensor.empty(shape, xs[0].dtype, 'concat');
  const os = contiguousStrides(shape);
  const offsets: number[] = [];
  let off = 0;
  for (const t of xs) {
    offsets.push(off);
    stridedCopy(t, 0, contiguousStrides(t.shape), out, off * os[ax], os, [...t.shape], 'concat');
    off += t.shape[ax];
  }
  return record(out, 'concat', xs, (g) => xs.map((t, i) => (t.requiresGrad ? slice(g, ax, offsets[i], offsets[i] + t.shape[ax]) : null)));
}

/** A contiguous copy (tensors are always contiguous; this is clone()). */
export function clone(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, x.dtype, 'clone');
  const s = contiguousStrides(x.shape);
  stridedCopy(x, 0, s, out, 0, s, [...x.shape], 'clone');
  return record(out, 'clone', [x], (g) => [g]);
}
