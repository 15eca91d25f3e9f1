// Softmax and log-softmax along an axis (kernel: softmax.wgsl works on the last axis; other axes
// are moved last and back). An f16 x is widened first and the result stays f32, as under PyTorch's
// autocast (softmax is on its f32 list); the kernel reads f32 only.
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, grid1d, shapeStr } from '../engine/launch.js';
import { asF32, binaryRaw, unaryRaw } from './elementwise.js';
import { sum } from './reduce.js';
import { transpose } from './shape.js';

function rowwise(x: Tensor, log: boolean): Tensor {
  x.assertAlive('softmax');
  const n = x.shape[x.rank - 1];
  const rows = n === 0 ? 0 : x.size / n;
  const y = Tensor.empty(x.shape, 'f32', log ? 'log_softmax' : 'softmax');
  if (rows > 0) {
    launch({
      file: 'softmax.wgsl',
      constants: { LOG: log ? 1 : 0 },
      args: [x, y],
      params: [rows, n],
      workgroups: grid1d(rows, 1),
      context: `${log ? 'log_softmax' : 'softmax'} ${shapeStr(x.shape)}`,
    });
  }
  return y;
}

function alongAxis(op: string, input: Tensor, axis: number, f: (t: Tensor) => Tensor): Tensor {
  input.assertAlive(op);
  if (!isFloat(input.dtype)) throw new Error(`${op}: expects an f32 or f16 tensor, got ${input.describe()}`);
  const x = asF32(input);
  const ax = axis < 0 ? axis + x.rank : axis;
  if (ax < 0 || ax >= x.rank) throw new Error(`${op}: axis ${axis} out of range for ${shapeStr(x.shape)}`);
  if (ax === x.rank - 1) return f(x);
  return transpose(f(transpose(x, ax, -1)), ax, -1);
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('softmax', x, axis, (t) => {
    const y = rowwise(t, false);
    // dx = y · (g − Σ g·y)
    return record(y, 'softmax', [t], (g) => {
      const gy = binaryRaw(g, y, 'mul');
      const s = sum(gy, -1, true);
      return [binaryRaw(binaryRaw(g, s, 'sub'), y, 'mul')];
    });
  });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('log_softmax', x, axis, (t) => {
    const y = rowwise(t, true);
    // dx = g − softmax · Σ g
    return record(y, 'log_softmax', [t], (g) => {
      const s = sum(g, -1, true);
      return [binaryRaw(g, binaryRaw(unaryRaw(y, 'exp'), s, 'mul'), 'sub')];
    });
  });
}
