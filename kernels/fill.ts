// fill: a tensor of one constant value. No gradient (constants are leaves).
import { Tensor, type DType, type Shape } from '../engine/tensor.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';
import { device } from '../engine/context.js';

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

/** vec4s per invocation of fill.wgsl's main4: several on CPU adapters (fewer, fuller invocations), one on GPUs. */
const perInvocation = () => (device().kernelProfile === 'cpu' ? 4 : 1);

/** Overwrite every element of `t` with `value` (in queue order, no CPU upload). */
export function fillInto(t: Tensor, value: number): void {
  const bits = t.dtype === 'f32' ? f32bits(value) : value >>> 0;
  if (t.size % 4 === 0) {
    const per = perInvocation();
    launch({
      file: 'fill.wgsl',
      entry: 'main4',
      constants: { PER: per },
      args: [t],
      params: [t.size / 4, bits],
      workgroups: grid1d(t.size / 4, 64 * per),
      context: `fill ${shapeStr(t.shape)}`,
    });
    return;
  }
  launch({
    file: 'fill.wgsl',
    args: [t],
    params: [t.size, bits],
    workgroups: grid1d(t.size),
    context: `fill ${shapeStr(t.shape)}`,
  });
}
