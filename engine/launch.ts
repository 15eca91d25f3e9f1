// The few lines every kernel launcher shares: find the cached pipeline, pack params, dispatch.
import { device, keep } from './context.js';
import { kernelSource, withStorageTypes } from './kernel.js';
import type { BufferArg } from './device.js';
import { Tensor } from './tensor.js';

export interface Launch {
  /** Kernel file under kernels/ and its entry point. */
  file: string;
  entry?: string;
  constants?: Record<string, number>;
  /** Generated WGSL instead of the file's text (small templates); cached by content. */
  code?: string;
  /**
   * WGSL with the same bindings as `code`, for wgsl_reflect where `code` holds syntax it cannot
   * parse (subgroup-matrix types).
   */
  bindingsFrom?: string;
  /**
   * The element type of each float array the kernel declares as `array<NAME_t>`, by NAME: the
   * dtype of the tensor bound there ('f32' or 'f16'; see withStorageTypes).
   */
  storage?: Readonly<Record<string, string>>;
  /** Storage buffers in binding order. */
  args: BufferArg[];
  /** The uniform params struct as 32-bit words (use f32bits() for floats). */
  params?: ArrayLike<number>;
  workgroups: [number, number?, number?];
  /** Op name and shapes, for error messages. */
  context: string;
}

export function launch(l: Launch): void {
  const dev = device();
  const code = l.storage ? withStorageTypes(l.code ?? kernelSource(l.file), l.storage) : l.code;
  const from = l.storage && l.bindingsFrom ? withStorageTypes(l.bindingsFrom, l.storage) : l.bindingsFrom;
  const p = dev.pipeline(l.file, l.entry ?? 'main', l.constants ?? {}, code, from);
  const params = l.params ? (l.params instanceof Uint32Array ? l.params : Uint32Array.from(l.params)) : null;
  dev.dispatch(p, l.args, params, l.workgroups, l.context);
}

/** The two placeholders: one for read-only bindings, one for outputs. */
const unused: { in: Tensor | null; out: Tensor | null } = { in: null, out: null };

/** One vec4 of zeros, the least any array binding may hold; made again if it was released. */
function placeholder(which: 'in' | 'out'): Tensor {
  const t = unused[which];
  return t && !t.released ? t : (unused[which] = keep(Tensor.from([0, 0, 0, 0], [4])));
}

/**
 * What to bind for an operand a kernel declares but this launch does not read (a flag or an override
 * constant switches its use off): shared, counting next to no bytes. Read-only bindings only: a
 * buffer may not be bound for reading and for writing in one dispatch.
 */
export function unusedOperand(): Tensor {
  return placeholder('in');
}

/** The same for an output binding that this launch does not write (at most one per dispatch). */
export function unusedOutput(): Tensor {
  return placeholder('out');
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bit pattern of a float, for a u32 params slot read as f32 in WGSL. */
export function f32bits(v: number): number {
  f32[0] = v;
  return u32[0];
}

/** Workgroup grid for `n` threads in workgroups of `size`, folded into y past the per-dimension limit. */
export function grid1d(n: number, size = 256): [number, number] {
  const groups = Math.ceil(n / size);
  const max = device().limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
