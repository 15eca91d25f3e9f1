// fill: a tensor of one constant value. No gradient (constants are leaves).
import { Tensor, type DType, type Shape } from '../engine/tensor.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const out = Tensor.empty(shape, dtype, 'full');
  fillInto(out, value);
  return out;
}

export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  return full(shape, 0, dtype);
}

export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}

/** Overwrite every element of `t` with `value` (in queue order, no CPU upload). */
export function fillInto(t: Tensor, value: number): void {
  const bits = t.dtype === 'f32' ? f32bits(value) : value >>> 0;
  launch({
    file: 'fill.wgsl',
    args: [t],
    params: [t.size, bits],
    workgroups: grid1d(t.size),
    context: `fill ${shapeStr(t.shape)}`,
  });
}
