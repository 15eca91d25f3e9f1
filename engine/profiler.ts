// Per-kernel GPU time (WEBVIG_PROFILE=1, or =sites per kernel and call site, or
// device.enableProfiler()): every dispatch gets its own compute pass with timestamp writes, and the
// resolved times are summed per label when the batches are read back (at reset() or report(): a
// read left pending would keep Dawn's Node binding polling, engine/quiet-wait.ts, and take a CPU
// adapter's cores from the kernels being timed). Costs a pass per dispatch, so it is for finding hot
// kernels, not for speed.

export interface KernelTime {
  kernel: string;
  calls: number;
  /** Summed over the calls. */
  ms: number;
  /** The fastest and slowest call: a CPU adapter shares its cores, and one slow call can dominate a sum. */
  minMs: number;
  maxMs: number;
}

const CAPACITY = 2048; // dispatches measured per submitted batch; later ones in the batch are not timed

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private labels: string[] = [];
  /** Submitted batches whose timestamps are not read yet. */
  private readonly unread: { read: GPUBuffer; labels: string[] }[] = [];
  readonly totals = new Map<string, { calls: number; ns: bigint; min: bigint; max: bigint }>();

  constructor(private readonly device: GPUDevice, readonly bySite: boolean, private readonly wait: (p: Promise<unknown>) => Promise<unknown>) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * CAPACITY });
    this.resolveBuf = device.createBuffer({ size: 16 * CAPACITY, usage: 0x200 /* QUERY_RESOLVE */ | 0x04 /* COPY_SRC */ });
  }

  /** Timestamp writes for the next dispatch's pass, or undefined when this batch is full. */
  next(label: string): GPUComputePassTimestampWrites | undefined {
    const i = this.labels.length;
    if (i >= CAPACITY) return undefined;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Before the batch is finished: resolve its timestamps into a buffer to read back after submit. */
  resolve(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.labels.length;
    if (n === 0) return null;
    const labels = this.labels;
    this.labels = [];
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
    const read = this.device.createBuffer({ size: 16 * n, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
    encoder.copyBufferToBuffer(this.resolveBuf, 0, read, 0, 16 * n);
    return () => {
      this.unread.push({ read, labels });
    };
  }

  /** Read the submitted batches' timestamps into the totals. */
  private async collect(): Promise<void> {
    const batches = this.unread.splice(0);
    await this.wait(Promise.all(batches.map((b) => b.read.mapAsync(1))));
    for (const { read, labels } of batches) {
      const t = new BigInt64Array(read.getMappedRange());
      labels.forEach((label, k) => {
        const ns = t[2 * k + 1] - t[2 * k];
        const e = this.totals.get(label) ?? { calls: 0, ns: 0n, min: ns, max: ns };
        e.calls++;
        e.ns += ns;
        if (ns < e.min) e.min = ns;
        if (ns > e.max) e.max = ns;
        this.totals.set(label, e);
      });
      read.unmap();
      read.destroy();
    }
  }

  /** Forget the times so far (after the outstanding batches land), e.g. those of warm-up steps. */
  async reset(): Promise<void> {
    await this.collect();
    this.totals.clear();
  }

  /** Kernel times so far, slowest first (waits for outstanding batches). */
  async report(): Promise<KernelTime[]> {
    await this.collect();
    return [...this.totals]
      .map(([kernel, e]) => ({ kernel, calls: e.calls, ms: Number(e.ns) / 1e6, minMs: Number(e.min) / 1e6, maxMs: Number(e.max) / 1e6 }))
      .sort((a, b) => b.ms - a.ms);
  }
}
