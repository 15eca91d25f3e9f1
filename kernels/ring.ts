// storeAt: copy a tensor into one slot of a ring buffer, the slot index read on the GPU from a u32
// tensor (the training loop's loss ring: the slot changes every step, the recorded command does not).
// No gradient.
import type { Tensor } from '../engine/tensor.js';
import { launch, shapeStr } from '../engine/launch.js';

/** ring[slot[0]·n … +n) = src (n = src.size, 32-bit elements); a slot past the ring's end writes nothing. */
export function storeAt(ring: Tensor, src: Tensor, slot: Tensor): void {
  if (slot.dtype === 'f32' || slot.size < 1) throw new Error(`storeAt: slot must be an integer tensor, got ${slot.describe()}`);
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
