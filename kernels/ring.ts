// storeAt: copy a tensor into one slot of a ring buffer, the slot index read on the GPU from a u32
// tensor (the training loop's loss ring: the slot changes every step, the recorded command does not).
// No gradient.
import { isFloat, type Tensor } from '../engine/tensor.js';
import { launch, shapeStr } from '../engine/launch.js';
import { noGrad } from '../engine/context.js';
import { cast } from './elementwise.js';

/**
 * ring[slot[0]·n … +n) = src (n = src.size, 32-bit elements; an f16 src, such as scores from f16
 * logits, is stored as f32); a slot past the ring's end writes nothing.
 */
export function storeAt(ring: Tensor, src: Tensor, slot: Tensor): void {
  if (isFloat(slot.dtype) || slot.size < 1) throw new Error(`storeAt: slot must be an integer tensor, got ${slot.describe()}`);
  if (ring.dtype === 'f16') throw new Error(`storeAt: the ring must have 32-bit elements, got ${ring.describe()}`);
  if (src.dtype === 'f16') {
    const wide = noGrad(() => cast(src, 'f32'));
    storeAt(ring, wide, slot);
    wide.release();
    return;
  }
  if (ring.size % Math.max(1, src.size) !== 0) throw new Error(`storeAt: ring ${ring.describe()} is not a whole number of ${src.describe()}`);
  if (src.size === 0) return;
  launch({
    file: 'ring.wgsl',
    args: [src, slot, ring],
    params: [src.size, ring.size / src.size],
    workgroups: [Math.ceil(src.size / 64)],
    context: `storeAt ${shapeStr(src.shape)} into ${shapeStr(ring.shape)}`,
  });
}
