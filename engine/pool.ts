// Size-class buffer pool. A released buffer goes straight back to its free list: every later use of
// it is encoded after every earlier use, and the queue executes in order, so the GPU has finished
// with the old contents before it touches the new ones. The one way to break that order is a CPU
// write (queue.writeBuffer) into a buffer that unsubmitted commands still reference; the device
// flushes those commands first (see Device.write). Release is explicit and deterministic.

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  /** Capacity in bytes (the size class). */
  readonly capacity: number;
  readonly id: number;
  readonly usage: number;
  /** In the pool's free lists (not held by anyone); recorded steps (engine/replay.ts) check it. */
  free: boolean;
}

/** Size classes: 256 B minimum, then four steps per power of two (at most 25 % slack). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 16) * 16);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  private free = new Map<string, PooledBuffer[]>();
  private nextId = 1;
  liveBytes = 0;
  pooledBytes = 0;
  allocations = 0;
  /** High-water mark of the bytes the pool holds (live + pooled) since creation or resetPeak(). */
  peakBytes = 0;
  /** High-water mark of the live bytes alone (what tensors hold at once, in size classes), likewise. */
  peakLiveBytes = 0;
  /** Incremented by trim(): buffers of an older generation may have been destroyed. */
  generation = 0;
  onDestroy: ((b: PooledBuffer) => void) | null = null;

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  acquire(bytes: number, usage: number, label = ''): PooledBuffer {
    const capacity = sizeClass(bytes);
    if (capacity > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes${label ? ` for ${label}` : ''} exceeds the adapter's maxBufferSize ${this.maxBufferSize}`);
    }
    const key = `${usage}:${capacity}`;
    const list = this.free.get(key);
    let pb = list?.pop();
    if (pb) {
      this.pooledBytes -= capacity;
    } else {
      const buffer = this.device.createBuffer({ size: capacity, usage, label });
      pb = { buffer, capacity, id: this.nextId++, usage, free: false };
      this.allocations++;
      this.peakBytes = Math.max(this.peakBytes, this.liveBytes + this.pooledBytes + capacity);
    }
    pb.free = false;
    this.liveBytes += capacity;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
    return pb;
  }

  release(pb: PooledBuffer): void {
    const key = `${pb.usage}:${pb.capacity}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    // Sorted by descending id, so acquire() pops the lowest id: the buffer an op gets depends only on
    // which buffers are free, not on the order they were released in. A repeated training step then
    // gets the same buffers, hence the same cached bind groups (with LIFO order it took ~40 steps).
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].id > pb.id) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, pb);
    pb.free = true;
    this.liveBytes -= pb.capacity;
    this.pooledBytes += pb.capacity;
  }

  /** Destroy every pooled (not live) buffer. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const pb of list) {
        this.onDestroy?.(pb);
        pb.free = false;
        pb.buffer.destroy();
      }
    }
    this.free.clear();
    this.pooledBytes = 0;
    this.generation++;
  }

  /** Start a new high-water mark from what the pool holds now. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes + this.pooledBytes;
    this.peakLiveBytes = this.liveBytes;
  }
}
