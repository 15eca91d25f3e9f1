// Many small tensors into slots of one flat buffer in a few dispatches (flat-gather.wgsl: GATHER
// sources per dispatch, one compute pass) instead of a buffer copy each: the optimizer's gradients
// into its gradient arena, and split reductions' partial sums into their gradient homes (a slot is
// then the sum of its source's chunks, added in chunk order).
import type { Tensor } from '../engine/tensor.js';
import type { PooledBuffer } from '../engine/pool.js';
import type { BufferArg } from '../engine/device.js';
import { device } from '../engine/context.js';
import { launch, unusedOperand } from '../engine/launch.js';

/** Sources per flat-gather.wgsl dispatch (its source bindings). */
export const GATHER = 8;

export interface GatherItem {
  /** `chunks` rows of `stride` values (one row: a copy); the slot gets their sum, row by row. */
  src: Tensor;
  chunks: number;
  stride: number;
  /** The slot: `n` values at `byteOffset` (a multiple of 256) of buffer `dst`, alive as long as `owner`. */
  n: number;
  dst: PooledBuffer;
  byteOffset: number;
  owner: Tensor;
}

/** Whether an item of `n` values fits one dispatch row of the kernel (else it needs a buffer copy). */
export function gatherFits(n: number): boolean {
  const l = device().limits;
  return l.maxStorageBuffersPerShaderStage > GATHER && n <= l.maxComputeWorkgroupsPerDimension * 256;
}

/**
 * Fill every item's slot: up to GATHER items of one buffer per dispatch, each dispatch binding the
 * span of the buffer its items fill (slots in ascending order; unused sources bind a placeholder).
 */
export function gather(items: readonly GatherItem[], context: string): void {
  for (const it of items) {
    // Parameter gradients are f32 (flat-gather.wgsl moves and sums 32-bit words): an f16 one is a bug upstream.
    if (it.src.dtype === 'f16' || it.owner.dtype === 'f16') {
      throw new Error(`${context}: ${it.src.describe()} into ${it.owner.describe()}: flat buffers hold f32 gradients, not f16`);
    }
  }
  const byBuffer = new Map<PooledBuffer, GatherItem[]>();
  for (const it of items) {
    const list = byBuffer.get(it.dst);
    if (list) list.push(it);
    else byBuffer.set(it.dst, [it]);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.byteOffset - b.byteOffset);
    for (let i = 0; i < list.length; i += GATHER) launchBatch(list.slice(i, i + GATHER), context);
  }
}

function launchBatch(batch: GatherItem[], context: string): void {
  const first = batch[0];
  const last = batch[batch.length - 1];
  const bytes = last.byteOffset + last.n * 4 - first.byteOffset;
  const dst: BufferArg = {
    pooled: first.dst,
    bytes,
    byteOffset: first.byteOffset,
    describe: () => `${first.owner.describe()} bytes [${first.byteOffset}, ${first.byteOffset + bytes})`,
    assertAlive: (op: string) => first.owner.assertAlive(op),
    // The slots, not the span between them (which may hold other parameters' gradients).
    touched: batch.reduce((s, it) => s + it.n * 4, 0),
  };
  const params = new Uint32Array(4 + 4 * GATHER);
  params[0] = batch.length;
  let most = 0;
  batch.forEach((it, k) => {
    params.set([it.n, (it.byteOffset - first.byteOffset) / 4, it.chunks, it.stride], 4 + 4 * k);
    most = Math.max(most, it.n);
  });
  launch({
    file: 'flat-gather.wgsl',
    args: [...batch.map(source), ...Array.from({ length: GATHER - batch.length }, unusedOperand), dst],
    params,
    workgroups: [Math.ceil(most / 256), batch.length],
    context: `${context} (${batch.length} tensors)`,
  });
}

/** An item's source as bound: the kernel reads n values of each chunk, not the rows' gaps. */
function source(it: GatherItem): BufferArg {
  const t = it.src;
  return t.binding(t.bytes, { words: true, touched: it.chunks * it.n * 4 });
}
