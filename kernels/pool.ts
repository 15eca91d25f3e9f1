// Average pooling (kernel: pool.wgsl): avgPool2d with kernel = stride = r, and global average
// pooling [B, C, H, W] → [B, C]. x may be f32 or f16 (an activation): the output and dx take its
// dtype (the window sums are f32 inside the kernel).
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, f32bits, grid1d, shapeStr, unusedOperand } from '../engine/launch.js';
import { reshape } from './shape.js';

/** Mean over kh×kw windows tiling H×W exactly; returns [B, C, H/kh, W/kw]. */
function pool(op: string, x: Tensor, kh: number, kw: number): Tensor {
  const [B, C, H, W] = x.shape;
  const Ho = H / kh;
  const Wo = W / kw;
  const params = [B * C, H, W, Ho, Wo, kh, kw, f32bits(1 / (kh * kw))];
  const context = `${op} ${shapeStr(x.shape)}`;
  const y = Tensor.empty([B, C, Ho, Wo], x.dtype, op);
  if (y.size > 0) {
    launch({ file: 'pool.wgsl', entry: 'forward', storage: { src: x.dtype, dst: y.dtype }, args: [x, y], params, workgroups: grid1d(y.size), context });
  }
  return record(y, op, [x], (g, pending) => {
    const dx = Tensor.empty(x.shape, x.dtype, `${op} dx`);
    // x's gradient from its other uses (e.g. as a graph's queries) is added in the same pass.
    const addend = pending.take(0);
    if (dx.size > 0) {
      launch({
        file: 'pool.wgsl', entry: 'backward', constants: { ADDEND: +!!addend }, args: [g, dx, addend ?? unusedOperand()], params,
        storage: { src: g.dtype, dst: dx.dtype, addend: addend?.dtype ?? 'f32' },
        workgroups: grid1d(dx.size), context: `${context} (backward)`,
      });
    }
    return [dx];
  });
}

function check4d(op: string, x: Tensor): void {
  x.assertAlive(op);
  if (!isFloat(x.dtype)) throw new Error(`${op}: expects an f32 or f16 tensor, got ${x.describe()}`);
  if (x.rank !== 4) throw new Error(`${op}: x ${shapeStr(x.shape)} must be [B, C, H, W]`);
}

/** avg_pool2d(x, r) with kernel = stride = r: [B, C, H, W] → [B, C, H/r, W/r]; r must divide H and W. */
export function avgPool2d(x: Tensor, r: number): Tensor {
  check4d('avgPool2d', x);
  const [, , H, W] = x.shape;
  if (!Number.isInteger(r) || r < 1) throw new Error(`avgPool2d ${shapeStr(x.shape)}: r must be a positive integer, got ${r}`);
  if (H % r !== 0 || W % r !== 0) {
    throw new Error(`avgPool2d ${shapeStr(x.shape)}: r = ${r} must divide H = ${H} and W = ${W}`);
  }
  return pool('avgPool2d', x, r, r);
}

/** Mean over H and W: [B, C, H, W] → [B, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  check4d('globalAvgPool', x);
  const [B, C, H, W] = x.shape;
  if (H * W === 0) throw new Error(`globalAvgPool ${shapeStr(x.shape)}: empty spatial extent`);
  return reshape(pool('globalAvgPool', x, H, W), [B, C]);
}
