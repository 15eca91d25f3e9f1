// Grouped max-relative aggregation of ViG's MRConv (kernel: max-relative.wgsl).
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, grid1d, shapeStr, unusedOperand } from '../engine/launch.js';
import { device } from '../engine/context.js';
import { kernelSource } from '../engine/kernel.js';
import { inverseIndexRows } from './gather.js';
import { cast } from './elementwise.js';

/** Invocations per workgroup of the CPU-adapter entries (a workgroup is one thread there). */
const LANES = 8;

/**
 * R[b, c, n] = max_t (y[b, c, idx[b·G + g(c), n, t]] − x[b, c, n]), g(c) = ⌊c / (C/G)⌋:
 * x [B, C, N] centres, y [B, C, M] sources, idx i32 [B·G, N, k] (e.g. from dilatedKnn) → [B, C, N].
 * x and y may also be maps, [B, C, H, W] (nodes in row-major order), without a reshape.
 * The gradient goes to the first maximising neighbour (and −grad to the centre); idx gets none.
 * An index outside [0, M) yields NaN (indices made on the GPU are not checked on the CPU).
 *
 * `choice` (i32/u32 [B, C, N], a slot t in [0, k) per element) replaces the argmax: R = y[idx[.., t]] − x
 * and the gradient goes to that neighbour. Parity checks use it to take a reference's decisions
 * where float32 rounding makes two neighbours tie (an out-of-range slot gives NaN).
 * x and y may be f16: the output is in x's dtype, dx and dy in x's and y's (differences and
 * gradient sums are f32 in the kernel).
 */
export function maxRelative(x: Tensor, y: Tensor, idx: Tensor, groups = 1, choice?: Tensor): Tensor {
  return maxRelativeOp(x, y, idx, groups, choice, false);
}

/**
 * MRConv's interleave of x and maxRelative(x, y, idx, groups, choice) in one pass: [B, 2C, N] with
 * channel 2c = x[c] and 2c + 1 = R[c] (torch.cat on a new axis 2, then flattened into channels).
 */
export function maxRelativeInterleaved(x: Tensor, y: Tensor, idx: Tensor, groups = 1, choice?: Tensor): Tensor {
  return maxRelativeOp(x, y, idx, groups, choice, true);
}

function maxRelativeOp(x: Tensor, y: Tensor, idx: Tensor, groups: number, choice: Tensor | undefined, interleave: boolean): Tensor {
  const ctx = `maxRelative${interleave ? 'Interleaved' : ''} x ${shapeStr(x.shape)} y ${shapeStr(y.shape)} idx ${shapeStr(idx.shape)} groups ${groups}`;
  for (const [name, t] of [['x', x], ['y', y]] as const) {
    t.assertAlive(ctx);
    if (t.rank < 3 || !isFloat(t.dtype)) throw new Error(`${ctx}: ${name} must be f32 [B, C, nodes] (or [B, C, H, W], …; or f16), got ${t.describe()}`);
  }
  idx.assertAlive(ctx);
  // Nodes may span several trailing axes (a B×C×H×W map): no reshape, so that gradients meet the
  // tensor itself, where other uses' gradients may be added in the same pass.
  const [B, C] = x.shape;
  const N = x.size / (B * C) || 0;
  const M = y.size / (B * C) || 0;
  if (y.shape[0] !== B || y.shape[1] !== C) throw new Error(`${ctx}: y must have x's batch and channels [${B}, ${C}, M]`);
  if (!Number.isInteger(groups) || groups < 1 || C % groups !== 0) {
    throw new Error(`${ctx}: groups must be a positive divisor of the ${C} channels`);
  }
  if (idx.dtype !== 'i32' || idx.rank !== 3 || idx.shape[0] !== B * groups || idx.shape[1] !== N || idx.shape[2] < 1) {
    throw new Error(`${ctx}: idx must be i32 [${B * groups}, ${N}, k ≥ 1], got ${idx.describe()}`);
  }
  const k = idx.shape[2];
  const params = [B, C, N, M, groups, k, 0, 0];
  if (choice) {
    choice.assertAlive(ctx);
    if (choice.dtype === 'f32' || choice.shape.join() !== [B, C, N].join()) {
      throw new Error(`${ctx}: choice must be i32/u32 [${B}, ${C}, ${N}], got ${choice.describe()}`);
    }
  }

  const constants = { INTERLEAVE: +interleave };
  const code = kernelSource('max-relative.wgsl', { K: k });
  // The float arrays' types, by binding (storage; those an entry point does not bind are f32).
  type Floats = Partial<Record<'x' | 'y' | 'out' | 'grad' | 'dy' | 'dx' | 'addend', Tensor>>;
  const kernel = (entry: string, floats: Floats, args: Tensor[], workgroups: [number, number], extra: Record<string, number> = {}, context = ctx) => {
    const storage = Object.fromEntries(Object.entries(floats).flatMap(([name, t]) => (t ? [[name, t.dtype]] : [])));
    launch({ file: 'max-relative.wgsl', code, entry, constants: { ...constants, ...extra }, storage, args, params, workgroups, context });
  };
  const out = Tensor.empty(interleave ? [B, 2 * C, N] : [B, C, N], x.dtype, 'max_relative');
  const arg = Tensor.empty([B, C, N], 'u32', 'max_relative argmax');
  if (arg.size > 0) {
    const floats = { x, y, out };
    if (choice) kernel('forward_chosen', floats, [x, y, idx, out, arg, choice], grid1d(arg.size));
    // CPU adapters: one thread per (image, group, node) walking the group's channels.
    else if (device().kernelProfile === 'cpu') kernel('forward_lanes', floats, [x, y, idx, out, arg], grid1d(B * groups * N, LANES), { WG: LANES });
    else kernel('forward', floats, [x, y, idx, out, arg], grid1d(arg.size));
  }
  record(out, 'max_relative', [x, y], (g, pending) => {
    let gy: Tensor | null = null;
    if (y.requiresGrad) {
      // CPU adapters: a thread per (b, c) row adds each node's gradient at its winner, in node order,
      // summing in dy's memory: f32 there, cast to an f16 y's dtype after.
      const rowsKernel = device().kernelProfile === 'cpu';
      gy = Tensor.empty(y.shape, rowsKernel ? 'f32' : y.dtype, 'max_relative dy');
      // y's gradient from its other uses so far is added in the kernel's store.
      const pendingY = pending.take(1);
      const withY = (args: Tensor[]) => [...args, pendingY ?? unusedOperand()];
      const addY = { ADDEND: +!!pendingY };
      const floats = { grad: g, dy: gy, addend: pendingY ?? undefined };
      if (gy.size > 0 && rowsKernel) {
        kernel('backward_y_rows', floats, withY([idx, g, arg, gy]), grid1d(B * C, LANES), { WG: LANES, ...addY }, `${ctx} backward`);
      } else if (gy.size > 0) {
        // The candidate lists are shared by the channels of a group: one CSR of (row, m) ← (n, t)
        // slots serves them all; each channel then keeps the slots that won its max.
        const rows = idx.view([B * groups, N * k]);
        const inv = inverseIndexRows(rows, M);
        rows.release();
        kernel('backward_y', floats, withY([g, arg, inv.offsets, inv.list, gy]), grid1d(gy.size), addY, `${ctx} backward`);
        inv.offsets.release();
        inv.list.release();
      }
      if (gy.dtype !== y.dtype) {
        const g32 = gy;
        gy = cast(g32, y.dtype);
        g32.release();
      }
    }
    if (!x.requiresGrad) return [null, gy];
    // x's gradient from its other uses is added in backward_x's store: y's own (with y's other ones)
    // when y is x (a graph over the nodes themselves), else what the autograd walk has so far.
    const addend = x === y ? gy : pending.take(0);
    const gx = Tensor.empty(x.shape, x.dtype, 'max_relative dx');
    if (gx.size > 0) kernel('backward_x', { grad: g, dx: gx, addend: addend ?? undefined }, [g, gx, addend ?? unusedOperand()], grid1d(gx.size), { ADDEND: +!!addend }, `${ctx} backward`);
    if (x !== y) return [gx, gy];
    // y is x: gx holds all of x's gradient, including the pending sum taken as input 1's.
    gy?.release();
    return [null, gx];
  });
  if (!out.node) arg.release();
  return out;
}
