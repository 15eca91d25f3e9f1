// The per-kernel profiler (WEBVIG_PROFILE=1 / =sites, device.enableProfiler): every dispatch is timed
// and counted under its kernel's label, or its label and call site; reset() forgets what came before
// (warm-up steps); disableProfiler() stops the timing.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { init, device, Tensor, F } from '../kernels/index.js';

beforeAll(async () => {
  await init();
});

afterEach(() => {
  device().disableProfiler();
});

/** Two adds of one shape, one of another, and a fill; the results released. */
async function work(): Promise<void> {
  const [a, b, c] = [Tensor.randn([4, 64], 1), Tensor.randn([4, 64], 2), Tensor.randn([3, 5], 3)];
  for (const t of [F.add(a, b), F.add(b, a), F.add(c, c), F.zeros([16])]) t.release();
  await a.toArray(); // the batch is submitted and done
  for (const t of [a, b, c]) t.release();
}

describe('profiler', () => {
  it('counts and times every dispatch per kernel', async () => {
    const profiler = device().enableProfiler();
    await work();
    const rows = await profiler.report();
    const adds = rows.filter((r) => r.kernel.includes('elementwise'));
    expect(adds.reduce((s, r) => s + r.calls, 0), JSON.stringify(rows)).toBe(3);
    expect(rows.some((r) => r.kernel.startsWith('fill.wgsl'))).toBe(true);
    expect(rows.every((r) => !r.kernel.includes('←') && r.ms >= 0 && Number.isFinite(r.ms))).toBe(true);
    // Slowest first.
    for (let i = 1; i < rows.length; i++) expect(rows[i].ms).toBeLessThanOrEqual(rows[i - 1].ms);
  });

  it('bySite: one entry per kernel and call site (the launch context: op and shapes)', async () => {
    const profiler = device().enableProfiler({ bySite: true });
    await work();
    const rows = await profiler.report();
    const add4 = rows.find((r) => r.kernel.includes('← add [4,64] [4,64]'));
    const add3 = rows.find((r) => r.kernel.includes('← add [3,5] [3,5]'));
    expect(add4?.calls, JSON.stringify(rows)).toBe(2);
    expect(add3?.calls).toBe(1);
    expect(rows.find((r) => r.kernel.includes('← fill [16]'))?.calls).toBe(1);
  });

  it('reset() forgets the times so far; disableProfiler() stops timing', async () => {
    const profiler = device().enableProfiler();
    await work();
    await profiler.reset();
    expect(await profiler.report()).toEqual([]);
    await work();
    const calls = (await profiler.report()).reduce((s, r) => s + r.calls, 0);
    expect(calls).toBeGreaterThanOrEqual(4);
    device().disableProfiler();
    expect(device().profiler).toBeNull();
    await work();
    expect((await profiler.report()).reduce((s, r) => s + r.calls, 0)).toBe(calls);
  });
});
