import { describe, it, expect, beforeAll } from 'vitest';
import { init, device, Tensor, F } from '../kernels/index.js';
import { timeGpu } from '../engine/timing.js';
import { runSuite, SUITES } from '../bench/run.js';
import { main } from '../train/cli.js';
import { UsageError } from '../train/args.js';

beforeAll(async () => {
  await init();
});

const RESULT_KEYS = ['suite', 'name', 'shape', 'ms', 'minMs', 'gflops', 'gbps', 'precision', 'method', 'dense_bytes', 'fused_bytes'];

describe('timeGpu', () => {
  it('times with timestamps when the device has them, else wall clock', async () => {
    const a = Tensor.randn([96, 96], 1);
    const t = await timeGpu(() => F.matmul(a, a), { warmup: 1, iters: 4 });
    expect(t.method).toBe(device().features.has('timestamp-query') ? 'timestamp' : 'wallclock');
    expect(t.samples).toHaveLength(4);
    expect(t.samples.every((s) => Number.isFinite(s) && s >= 0)).toBe(true);
    expect(t.minMs).toBe(Math.min(...t.samples));
    expect(t.medianMs).toBeGreaterThan(0);
    expect(t.medianMs).toBeGreaterThanOrEqual(t.minMs);
    a.release();
  });

  it('timestamps bracket the work: a matmul takes longer than an empty pass', async (ctx) => {
    if (!device().features.has('timestamp-query')) ctx.skip();
    const a = Tensor.randn([128, 128], 1);
    const empty = await timeGpu(() => {}, { warmup: 0, iters: 3, method: 'timestamp' });
    const mm = await timeGpu(() => F.matmul(F.matmul(a, a), a), { warmup: 1, iters: 3, method: 'timestamp' });
    expect(mm.medianMs).toBeGreaterThan(empty.medianMs);
    a.release();
  });

  it('falls back to wall clock when the work leaves the timed pass', async () => {
    const a = Tensor.randn([64], 1);
    const b = Tensor.randn([64], 2);
    // A buffer copy ends the open compute pass.
    const copy = () => device().copy(a.pooled, 0, b.pooled, 0, 64);
    const w = await timeGpu(copy, { warmup: 0, iters: 2 });
    expect(w.method).toBe('wallclock');
    expect(w.samples).toHaveLength(2);
    if (device().features.has('timestamp-query')) {
      await expect(timeGpu(copy, { iters: 1, method: 'timestamp' })).rejects.toThrow(/one compute pass/);
    }
    const forced = await timeGpu(() => F.add(a, b), { warmup: 0, iters: 2, method: 'wallclock' });
    expect(forced.method).toBe('wallclock');
    a.release();
    b.release();
  });

  it('rejects bad counts', async () => {
    await expect(timeGpu(() => {}, { iters: 0 })).rejects.toThrow(/iters must be a positive integer/);
  });
});

describe('bench suites', () => {
  it('runs the kernels suite in-process and reports GFLOP/s and GB/s', async () => {
    const seen: string[] = [];
    const report = await runSuite({ suite: 'kernels', size: 'tiny', warmup: 1, iters: 2, onResult: (r) => seen.push(r.name), log: () => {} });
    expect(report.suite).toBe('kernels');
    expect(report.config).toEqual({ size: 'tiny', warmup: 1, iters: 2, timer: 'auto' });
    expect(typeof report.device.adapter.vendor).toBe('string');
    expect(report.device.limits.maxBufferSize).toBeGreaterThan(0);
    const names = report.results.map((r) => r.name);
    expect(seen).toEqual(names);
    for (const n of ['matmul', 'add', 'add_bias', 'relu', 'gelu', 'sum_rows', 'sum_cols', 'sum_all', 'max_rows', 'softmax', 'dispatch_encode']) {
      expect(names).toContain(n);
    }
    for (const r of report.results) {
      for (const k of Object.keys(r)) expect(RESULT_KEYS).toContain(k);
      expect(r.suite).toBe('kernels');
      expect(r.shape.every((d) => Number.isInteger(d) && d > 0)).toBe(true);
      expect(r.ms).toBeGreaterThan(0);
      expect(r.minMs).toBeLessThanOrEqual(r.ms);
      expect(['timestamp', 'wallclock', 'cpu']).toContain(r.method);
      for (const rate of [r.gflops, r.gbps]) if (rate !== undefined) expect(Number.isFinite(rate) && rate > 0).toBe(true);
    }
    const matmuls = report.results.filter((r) => r.name === 'matmul');
    expect(matmuls.map((r) => r.shape)).toEqual([[32, 32, 32], [65, 65, 65]]);
    for (const r of matmuls) {
      expect(r.gflops).toBeGreaterThan(0);
      // GFLOP/s is 2·n³ over the median time.
      expect(r.gflops!).toBeCloseTo((2 * r.shape[0] ** 3) / (r.ms * 1e6), 6);
      expect(r.method).toBe(device().features.has('timestamp-query') ? 'timestamp' : 'wallclock');
    }
    expect(report.results.find((r) => r.name === 'add')!.gbps).toBeGreaterThan(0);
    expect(report.results.find((r) => r.name === 'dispatch_encode')!.method).toBe('cpu');
    // A plain object that survives JSON.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('`bench --json` prints exactly one JSON object on stdout', async () => {
    let stdout = '';
    let stderr = '';
    const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s) };
    const code = await main(['bench', '--suite', 'kernels', '--size', 'tiny', '--iters', '2', '--warmup', '1', '--only', 'matmul,softmax', '--json'], io);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    const r = JSON.parse(stdout);
    expect(Object.keys(r).sort()).toEqual(['config', 'device', 'results', 'suite']);
    expect(r.results.map((x: { name: string }) => x.name)).toEqual(['matmul', 'matmul', 'softmax']);
  });

  it('prints a table without --json', async () => {
    let stdout = '';
    const io = { stdout: (s: string) => void (stdout += s), stderr: () => {} };
    expect(await main(['bench', '--size', 'tiny', '--iters', '1', '--warmup', '0', '--only', 'softmax'], io)).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[1]).toMatch(/^name\s+shape\s+ms\s+GFLOP\/s\s+GB\/s\s+method$/);
    expect(lines[2]).toMatch(/^softmax\s+\[7,33\]\s+[\d.]+\s+[\d.]+\s+(timestamp|wallclock)$/);
  });

  it('unknown suites and families are usage errors listing what exists', async () => {
    await expect(runSuite({ suite: 'train2' })).rejects.toThrow(UsageError);
    await expect(runSuite({ suite: 'train2' })).rejects.toThrow(`known suites: ${Object.keys(SUITES).join(', ')}`);
    await expect(runSuite({ suite: 'kernels', only: ['matmul', 'conv9'] })).rejects.toThrow(/--only: no family conv9 in suite kernels; it has matmul, /);
  });
});
