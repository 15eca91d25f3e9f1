// fill: a tensor of one constant value. No gradient (constants are leaves).
import { Tensor, type DType, type Shape } from '../engine/tensor.js';
import { launch, f32bits, grid1d, shapeStr } from '../engine/launch.js';
import { device } from '../engine/context.js';
import { halfBits } from '../engine/half.js';

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const out = Tensor.empty(shape, dtype, 'full');
  fillInto(out, value);
  return out;
}

export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  return full(shape, 0, dtype);
}

export function ones(shape: Shape, dtype: DType = 'f32'): Tensor {
  return full(shape, 1, dtype);
}

/** vec4s per invocation of fill.wgsl's main4: several on CPU adapters (fewer, fuller invocations), one on GPUs. */
const perInvocation = () => (device().kernelProfile === 'cpu' ? 4 : 1);

/** The 32-bit word of `value` as `dt`: f16 twice (a word holds two halves). */
function wordOf(value: number, dt: DType): number {
  if (dt === 'f32') return f32bits(value);
  if (dt === 'f16') return (halfBits(value) * 0x10001) >>> 0;
  return value >>> 0;
}

/**
 * Overwrite every element of `t` with `value` (in queue order, no CPU upload). An f16 tensor of odd
 * size is filled to its last whole word, which it owns (Tensor.empty rounds its buffer up; viewAt
 * refuses odd f16 views).
 */
export function fillInto(t: Tensor, value: number): void {
  const bits = wordOf(value, t.dtype);
  const words = Math.ceil(t.bytes / 4);
  // Bound as its buffer's 32-bit words, whatever the dtype: fill.wgsl writes words.
  const asWords = t.binding(words * 4, { words: true });
  if (words % 4 === 0) {
    const per = perInvocation();
    launch({
      file: 'fill.wgsl',
      entry: 'main4',
      constants: { PER: per },
      args: [asWords],
      params: [words / 4, bits],
      workgroups: grid1d(words / 4, 64 * per),
      context: `fill ${shapeStr(t.shape)}`,
    });
    return;
  }
  launch({
    file: 'fill.wgsl',
    args: [asWords],
    params: [words, bits],
    workgroups: grid1d(words),
    context: `fill ${shapeStr(t.shape)}`,
  });
}
