// LayerNorm over the last axis (kernel: layer-norm.wgsl), forward and backward in one op: a pass per
// row each way, where the same op composed of means, differences and products took nine passes
// forward and more backward over every activation.
//
// Saved for backward: x itself and a [rows, 2] tensor of (mean, 1/√(var + eps)) per row. dweight and
// dbias are column sums over the rows: chunks of rows summed per column, then the chunks added in
// order (bitwise deterministic).
//
// An f16 x (not on GKGNet's path) is widened on entry and the result rounded back to f16: the kernel
// reads and writes f32 only.
import { Tensor } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { device } from '../engine/context.js';
import { composedSource, kernelSource } from '../engine/kernel.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';
import { chunkedWeightGrad } from './chunked-grads.js';
import { asF32 } from './elementwise.js';
import { vectorPrelude, widthOf } from './vector-prelude.js';

/** Invocations per workgroup: one row each (a CPU adapter runs a workgroup on one thread, in SIMD rows of 8). */
const WG = { gpu: 64, cpu: 8 } as const;
/** Rows per chunk of the dweight/dbias column sums. */
const CHUNK_ROWS = 256;

export interface LayerNormOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Normalise relu(x), the ReLU applied as x is read (no pass, no tensor of its own). Default false. */
  relu?: boolean;
}

/**
 * torch.nn.functional.layer_norm(x, [D], weight, bias, eps) over x's last axis D (of relu(x) with
 * `relu`); weight and bias are [D].
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, o: LayerNormOptions = {}): Tensor {
  const eps = o.eps ?? 1e-5;
  const context = `layerNorm${o.relu ? '(relu)' : ''} x ${shapeStr(x.shape)}`;
  const D = x.shape[x.rank - 1] ?? 0;
  // As autocast (layer_norm is on its f32 list): an f16 x is normalised in f32, and the result stays f32.
  if (x.dtype === 'f16') return layerNorm(asF32(x), weight, bias, o);
  for (const [name, t] of [['x', x], ['weight', weight], ['bias', bias]] as const) {
    if (t.dtype !== 'f32') throw new Error(`${context}: ${name} must be f32, got ${t.describe()}`);
  }
  if (x.rank < 1 || D === 0) throw new Error(`${context}: x needs a last axis of at least one value`);
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t.size !== D) throw new Error(`${context}: ${name} ${t.describe()} must hold ${D} values, one per value of the last axis`);
  }
  const rows = x.size / D;
  const width = widthOf(D);
  const code = composedSource(`layer-norm ${width}`, () => vectorPrelude(width) + kernelSource('layer-norm.wgsl'));
  const chunks = Math.max(1, Math.ceil(rows / CHUNK_ROWS));
  const params = [rows, D / width, D, f32bits(eps), CHUNK_ROWS];
  const wg = WG[device().kernelProfile];
  const run = (entry: string, args: Tensor[], workgroups: [number, number?]) =>
    launch({ file: 'layer-norm.wgsl', entry, code, constants: { WG: wg, RELU: +!!o.relu }, args, params, workgroups, context: `${context} (${entry})` });

  const y = Tensor.empty(x.shape, 'f32', 'layerNorm');
  const stats = Tensor.empty([rows, 2], 'f32', 'layerNorm stats');
  if (rows > 0) run('forward', [x, weight, bias, y, stats], grid1d(rows, wg));

  return record(y, 'layerNorm', [x, weight, bias], (g, pending) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape, 'f32', 'layerNorm dx');
      if (rows > 0) run('backward', [x, weight, g, stats, dx], grid1d(rows, wg));
    }
    const [dweight, dbias] = chunkedWeightGrad([D], true, chunks, pending, (dw, db) =>
      run('param_partials', [x, g, stats, dw, db!], [Math.ceil(D / width / wg), chunks]), 'layerNorm');
    return [dx, dweight, dbias];
  });
}
