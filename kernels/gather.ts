// index_select / gather along an axis and its deterministic scatter-add (kernel: gather.wgsl).
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, grid1d, shapeStr } from '../engine/launch.js';
import { zeros } from './fill.js';

/** The index-only entries bind no value array (x, out): their aliases default to f32. */
const INDEX_ONLY = {} as const;

export interface InverseIndex {
  /** [d + 1] segment starts: sources of target t are list[offsets[t] .. offsets[t+1]). */
  offsets: Tensor;
  /** [j] source positions grouped by target, ascending within each target. */
  list: Tensor;
  d: number;
  j: number;
}

/**
 * Group the positions of `idx` (i32, any shape, values in [0, d)) by value, each group ascending.
 * Built entirely on the GPU; out-of-range entries are left out.
 */
export function inverseIndex(idx: Tensor, d: number): InverseIndex {
  if (idx.dtype !== 'i32') throw new Error(`inverseIndex: indices must be i32, got ${idx.describe()}`);
  const j = idx.size;
  const params = [1, d, j, 1];
  const ctx = `inverse index of ${shapeStr(idx.shape)} into ${d}`;
  const counts = zeros([d], 'u32');
  const offsets = Tensor.empty([d + 1], 'u32', 'csr offsets');
  const cursor = zeros([d], 'u32');
  const list = Tensor.empty([j], 'u32', 'csr list');
  launch({ file: 'gather.wgsl', entry: 'csr_count', storage: INDEX_ONLY, args: [idx, counts], params, workgroups: grid1d(j), context: ctx });
  launch({ file: 'gather.wgsl', entry: 'csr_scan', storage: INDEX_ONLY, args: [counts, offsets], params, workgroups: [1], context: ctx });
  launch({ file: 'gather.wgsl', entry: 'csr_fill', storage: INDEX_ONLY, args: [idx, offsets, cursor, list], params, workgroups: grid1d(j), context: ctx });
  launch({ file: 'gather.wgsl', entry: 'csr_sort', storage: INDEX_ONLY, args: [offsets, list], params, workgroups: grid1d(d), context: ctx });
  counts.release();
  cursor.release();
  return { offsets, list, d, j };
}

/** inverseIndex per row: segment (r, m) is list[offsets[r·(d + 1) + m] .. offsets[r·(d + 1) + m + 1]). */
export interface RowInverseIndex {
  /** [rows, d + 1] segment starts per row, each row's last entry its end. */
  offsets: Tensor;
  /** [rows·j] positions r·j + i of idx, grouped by value within each row, ascending. */
  list: Tensor;
}

/** Threads of csr_rows's workgroup (gather.wgsl's ROW_WG). */
const ROW_WORKGROUP = 64;

/**
 * inverseIndex for each row of idx (i32 [rows, j]) whose values index that row's own d targets
 * (e.g. neighbours within one sample), in one dispatch: a workgroup per row. Out-of-range entries
 * are left out.
 */
export function inverseIndexRows(idx: Tensor, d: number): RowInverseIndex {
  if (idx.dtype !== 'i32' || idx.rank !== 2) throw new Error(`inverseIndexRows: indices must be i32 [rows, j], got ${idx.describe()}`);
  const [rows, j] = idx.shape;
  const offsets = Tensor.empty([rows, d + 1], 'u32', 'csr offsets');
  const list = Tensor.empty([rows * j], 'u32', 'csr list');
  if (rows > 0) {
    // Blocks of indices per row, each with its own counter per target: about as many counters as
    // indices (the scan over them costs what the walk over the indices does), at most one per thread.
    const blocks = Math.max(1, Math.min(ROW_WORKGROUP, Math.floor(j / Math.max(d, 1))));
    const blockCounts = Tensor.empty([rows, blocks, Math.max(d, 1)], 'u32', 'csr block counts');
    launch({
      file: 'gather.wgsl',
      entry: 'csr_rows',
      storage: INDEX_ONLY,
      args: [idx, offsets, list, blockCounts],
      params: [rows, d, j, blocks],
      workgroups: [rows],
      context: `inverse index of ${shapeStr(idx.shape)} into ${d} per row`,
    });
    blockCounts.release();
  }
  return { offsets, list };
}

function checkAxis(op: string, x: Tensor, axis: number): number {
  x.assertAlive(op);
  if (!isFloat(x.dtype)) throw new Error(`${op}: expects an f32 or f16 tensor, got ${x.describe()}`);
  const ax = axis < 0 ? axis + x.rank : axis;
  if (ax < 0 || ax >= x.rank) throw new Error(`${op}: axis ${axis} out of range for ${shapeStr(x.shape)}`);
  return ax;
}

/** The index as an i32 tensor; array entries are checked against `limit` (`where` says what it counts). */
function indexTensor(op: string, index: Tensor | ArrayLike<number>, limit: number, where: string): Tensor {
  if (index instanceof Tensor) {
    index.assertAlive(op);
    if (index.dtype !== 'i32') throw new Error(`${op}: index must be an i32 tensor, got ${index.describe()}`);
    return index;
  }
  for (let i = 0; i < index.length; i++) {
    const v = index[i];
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new Error(`${op}: index[${i}] = ${v} is out of range [0, ${limit}) for ${where}`);
    }
  }
  return Tensor.from(Int32Array.from(index), [index.length], 'i32');
}

/**
 * out = x.index_select(axis, index), in x's dtype (f32 or f16). Indices given as an array are
 * checked here; an index tensor produced on the GPU cannot be checked without a stall, so a bad
 * entry yields NaN in the output.
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor | ArrayLike<number>): Tensor {
  const ax = checkAxis('index_select', x, axis);
  const idx = indexTensor('index_select', index, x.shape[ax], `axis ${axis} of ${x.describe()}`);
  const outer = x.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const d = x.shape[ax];
  const j = idx.size;
  const shape = [...x.shape];
  shape[ax] = j;
  const out = Tensor.empty(shape, x.dtype, 'index_select');
  if (out.size > 0) {
    launch({
      file: 'gather.wgsl',
      entry: 'gather',
      storage: { x: x.dtype, out: out.dtype },
      args: [x, idx, out],
      params: [outer, d, j, inner],
      workgroups: grid1d(out.size),
      context: `index_select ${shapeStr(x.shape)} axis ${axis} index ${shapeStr(idx.shape)}`,
    });
  }
  return record(out, 'index_select', [x], (g) => [indexAdd(g, ax, idx, d)]);
}

/**
 * Scatter-add: out[..., k, ...] = Σ_{j: index[j] = k} src[..., j, ...], with `size` rows on `axis`.
 * Deterministic (fixed summation order), no float atomics. In src's dtype, summed in f32.
 */
export function indexAdd(src: Tensor, axis: number, index: Tensor | ArrayLike<number>, size: number): Tensor {
  const ax = checkAxis('index_add', src, axis);
  const idx = indexTensor('index_add', index, size, `${size} rows on axis ${axis} (source ${src.describe()})`);
  if (src.shape[ax] !== idx.size) {
    throw new Error(`index_add: source ${shapeStr(src.shape)} has ${src.shape[ax]} rows on axis ${axis}, index has ${idx.size}`);
  }
  const outer = src.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = src.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const shape = [...src.shape];
  shape[ax] = size;
  if (idx.size === 0) return zeros(shape, src.dtype);
  const inv = inverseIndex(idx, size);
  const out = Tensor.empty(shape, src.dtype, 'index_add');
  if (out.size > 0) {
    launch({
      file: 'gather.wgsl',
      entry: 'index_add',
      storage: { x: src.dtype, out: out.dtype },
      args: [src, out, inv.offsets, inv.list], // binding order: x, out, offsets_r, list_r
      params: [outer, size, idx.size, inner],
      workgroups: grid1d(out.size),
      context: `index_add ${shapeStr(src.shape)} axis ${axis} into ${size}`,
    });
  }
  inv.offsets.release();
  inv.list.release();
  return record(out, 'index_add', [src], (g) => [indexSelect(g, ax, idx)]);
}
