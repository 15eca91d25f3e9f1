// The per-kernel profiler (WEBVIG_PROFILE=1 / =sites, device.enableProfiler): every dispatch is timed
// and counted under its kernel's label, or its label and call site, with its fastest and slowest
// call; reset() forgets what came before (warm-up steps); disableProfiler() stops the timing; the CLI
// prints the table after a command.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { init, device, Tensor, F } from '../kernels/index.js';
import { main } from '../train/cli.js';
import { formatProfile } from '../train/profile-report.js';

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
    for (const r of rows) {
      expect(r.minMs).toBeLessThanOrEqual(r.maxMs);
      expect(r.maxMs).toBeLessThanOrEqual(r.ms + 1e-9);
      expect(r.minMs * r.calls).toBeLessThanOrEqual(r.ms + 1e-6);
    }
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

describe('profile report', () => {
  it('the CLI prints it on stderr after the command when WEBVIG_PROFILE is set', async () => {
    const saved = process.env.WEBVIG_PROFILE;
    process.env.WEBVIG_PROFILE = 'sites';
    device().enableProfiler({ bySite: true }); // the device exists already: as WEBVIG_PROFILE at its creation would
    let stdout = '';
    let stderr = '';
    try {
      const code = await main(['bench', '--suite', 'kernels', '--size', 'tiny', '--iters', '1', '--warmup', '0', '--only', 'softmax', '--json'], {
        stdout: (t) => void (stdout += t),
        stderr: (t) => void (stderr += t),
      });
      expect(code, stderr).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.WEBVIG_PROFILE;
      else process.env.WEBVIG_PROFILE = saved;
    }
    expect(() => JSON.parse(stdout)).not.toThrow(); // stdout keeps exactly the JSON
    expect(stderr).toMatch(/GPU time per kernel \(WEBVIG_PROFILE; each dispatch timed in its own pass\): \d+ dispatches/);
    expect(stderr).toMatch(/softmax\.wgsl.* ← softmax/);
  });

  it('shows the slowest 40 and sums the rest in one line', () => {
    const rows = Array.from({ length: 43 }, (_, i) => ({ kernel: `k${i}`, calls: 2, ms: 43 - i, minMs: (43 - i) / 4, maxMs: (43 - i) / 2 }));
    const lines = formatProfile(rows).trimEnd().split('\n');
    expect(lines).toHaveLength(2 + 40 + 1);
    expect(lines[0]).toContain('86 dispatches, 946.0 ms');
    expect(lines[2]).toMatch(/^\s+43\.0\s+4\.5%\s+2\s+10\.750\s+21\.500  k0$/);
    expect(lines[42]).toMatch(/^\s+6\.0\s+6 {2}\(3 more kernels\)$/);
  });
});
