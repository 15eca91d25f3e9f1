// Reductions over any set of axes (kernel: reduce.wgsl): sum, mean, max with argmax, variance.
// f16 input is read as is; sums and means come out f32 (backward sums loss-scaled gradients with
// them: f16 would overflow), max keeps the input's dtype; gradients come back in x's dtype.
import { Tensor, isFloat, type Shape } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { device } from '../engine/context.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';
import { contiguousStrides, collapseDims, packDims, expand, sub, mul, cast, asF32 } from './elementwise.js';
import { zeros } from './fill.js';

function normAxes(op: string, shape: Shape, axes?: number | number[]): number[] {
  const list = axes === undefined ? shape.map((_, i) => i) : Array.isArray(axes) ? axes : [axes];
  const out = list.map((a) => {
    const n = a < 0 ? a + shape.length : a;
    if (!Number.isInteger(n) || n < 0 || n >= shape.length) {
      throw new Error(`${op}: axis ${a} is out of range for shape ${shapeStr(shape)}`);
    }
    return n;
  });
  if (new Set(out).size !== out.length) throw new Error(`${op}: repeated axis in [${list.join(',')}]`);
  return out.sort((a, b) => a - b);
}

interface Plan {
  keptShape: number[];
  keepdimShape: number[];
  nOut: number;
  r: number;
  params: number[];
}

function plan(op: string, x: Tensor, axes: number[], scale = 1): Plan {
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const o = collapseDims(kept.map((i) => x.shape[i]), [kept.map((i) => strides[i])]);
  const r = collapseDims(axes.map((i) => x.shape[i]), [axes.map((i) => strides[i])]);
  const keptShape = kept.map((i) => x.shape[i]);
  const nOut = keptShape.reduce((a, b) => a * b, 1);
  const rSize = axes.reduce((a, i) => a * x.shape[i], 1);
  return {
    keptShape,
    keepdimShape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
    nOut,
    r: rSize,
    params: [
      nOut, rSize, o.shape.length, r.shape.length, f32bits(scale), 0, 0, 0,
      ...packDims(o.shape, op), ...packDims(o.strides[0], op), ...packDims(r.shape, op), ...packDims(r.strides[0], op),
    ],
  };
}

/**
 * Override constants of reduce.wgsl: none on GPUs; on CPU adapters the ranks (constant-indexed
 * uniforms) and, for the workgroup-tree entries, 64-wide trees (bench/RESULTS.md).
 */
function constantsFor(p: Plan, tree: boolean): Record<string, number> {
  if (device().kernelProfile !== 'cpu') return {};
  return { ORANK: p.params[2], RRANK: p.params[3], ...(tree ? { WG: 64 } : {}) };
}

function checkFloat(op: string, x: Tensor): void {
  x.assertAlive(op);
  if (!isFloat(x.dtype)) throw new Error(`${op}: expects an f32 or f16 tensor, got ${x.describe()}`);
}

function reduceRaw(op: string, x: Tensor, axes: number[], keepdim: boolean, scale: number): Tensor {
  checkFloat(op, x);
  const p = plan(op, x, axes, scale);
  const out = Tensor.empty(keepdim ? p.keepdimShape : p.keptShape, 'f32', op);
  if (p.nOut === 0) return out;
  // A workgroup tree per output for long reductions over few outputs; a thread per output otherwise.
  const serial = p.r <= 256 || p.nOut >= 16384;
  launch({
    file: 'reduce.wgsl',
    entry: serial ? 'sum_serial' : 'sum',
    constants: constantsFor(p, !serial),
    storage: { x: x.dtype },
    args: [x, out],
    params: p.params,
    workgroups: serial ? grid1d(p.nOut) : grid1d(p.nOut, 1),
    context: `${op} ${shapeStr(x.shape)} axes [${axes.join(',')}]`,
  });
  return out;
}

/**
 * A reduction's gradient `g` (keepdim-shaped) broadcast back over `x`, in x's dtype: for f16 the few
 * reduced values are rounded first and the broadcast copy reads and writes f16.
 */
function spread(g: Tensor, keepdimShape: Shape, x: Tensor): Tensor {
  const v = g.view(keepdimShape);
  const h = cast(v, x.dtype);
  const out = expand(h, x.shape);
  if (h !== v) h.release();
  return out;
}

/** Sum over `axes` (all when omitted); f32 for f16 `x` too. */
export function sum(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes('sum', x.shape, axes);
  const y = reduceRaw('sum', x, ax, keepdim, 1);
  return record(y, 'sum', [x], (g) => [spread(g, plan('sum', x, ax).keepdimShape, x)]);
}

/** Mean over `axes` (all when omitted); f32 for f16 `x` too. */
export function mean(x: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const ax = normAxes('mean', x.shape, axes);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  const y = reduceRaw('mean', x, ax, keepdim, 1 / n);
  return record(y, 'mean', [x], (g) => {
    // g/n on the reduced values (the products the broadcast copy would make), then spread
    const s = mul(g, 1 / n);
    const out = spread(s, plan('mean', x, ax).keepdimShape, x);
    s.release();
    return [out];
  });
}

/**
 * Variance over `axes`; biased (÷N) unless `unbiased` (÷(N−1)), as torch.var(correction). f32 for
 * f16 `x` too, computed from x in f32: the deviations and their squares would round (and overflow) in f16.
 */
export function variance(x: Tensor, axes?: number | number[], keepdim = false, unbiased = false): Tensor {
  if (x.dtype === 'f16') return variance(asF32(x), axes, keepdim, unbiased);
  const ax = normAxes('var', x.shape, axes);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  const m = mean(x, ax, true);
  const d = sub(x, m);
  const sq = mul(d, d);
  return mul(sum(sq, ax, keepdim), 1 / (unbiased ? n - 1 : n));
}

/**
 * Max over one axis: values (in x's dtype) and the index of the first maximum (i32). Gradient flows
 * to that index.
 */
export function max(x: Tensor, axis: number, keepdim = false): { values: Tensor; indices: Tensor } {
  const ax = normAxes('max', x.shape, axis);
  checkFloat('max', x);
  const p = plan('max', x, ax);
  const shape = keepdim ? p.keepdimShape : p.keptShape;
  const values = Tensor.empty(shape, x.dtype, 'max');
  const indices = Tensor.empty(shape, 'i32', 'argmax');
  if (p.nOut > 0) {
    launch({
      file: 'reduce.wgsl',
      entry: 'max_',
      constants: constantsFor(p, true),
      storage: { x: x.dtype, out: x.dtype },
      args: [x, values, indices],
      params: p.params,
      workgroups: grid1d(p.nOut, 1),
      context: `max ${shapeStr(x.shape)} axis ${axis}`,
    });
  }
  record(values, 'max', [x], (g) => {
    const gx = zeros(x.shape, x.dtype);
    launch({
      file: 'reduce.wgsl',
      entry: 'max_backward',
      constants: constantsFor(p, false),
      storage: { g: g.dtype, gx: gx.dtype },
      args: [g, indices, gx],
      params: p.params,
      workgroups: grid1d(p.nOut),
      context: `max backward ${shapeStr(x.shape)} axis ${axis}`,
    });
    return [gx];
  });
  return { values, indices };
}

/**
 * Sum `g` down to `shape` (the reverse of broadcasting), in f32 whatever g's dtype (a bias's gradient
 * from loss-scaled f16 gradients). Returns `g` itself when shapes match.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = axes.length ? sum(g, axes, false) : g;
  if (s === g) return g.view(shape);
  return s.shape.join() === shape.join() ? s : reshapeOwned(s, shape);
}

function reshapeOwned(t: Tensor, shape: Shape): Tensor {
  const v = t.view(shape);
  t.release();
  return v;
}
