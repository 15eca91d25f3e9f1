// The kernel families conv, knn, maxrel, bn, adamw and the train suite, run in-process at the tiny
// size: result shapes, rates recomputed from the documented work formulas, the train suite's JSON
// contract and its per-step counters after warm-up.
import { describe, it, expect, beforeAll, vi } from 'vitest';
import { init, device } from '../kernels/index.js';
import { runSuite } from '../bench/run.js';
import { gkgnetShapes } from '../bench/adamw.js';
import type { BenchResult } from '../bench/common.js';
import { main } from '../train/cli.js';
import { IaGcn } from '../models/ia-gcn.js';
import { GmMlic } from '../models/gm-mlic.js';

beforeAll(async () => {
  await init();
});

const NEW_FAMILIES = ['conv', 'knn', 'maxrel', 'bn', 'adamw'];
const BASE_KEYS = ['suite', 'name', 'shape', 'ms', 'minMs', 'gflops', 'gbps', 'precision', 'method'];
const TRAIN_KEYS = [
  'suite', 'name', 'shape', 'ms', 'minMs', 'images_per_s', 'dispatches_per_step', 'submits_per_step', 'allocations_per_step', 'bind_groups_per_step',
  'host_ms_per_step', 'pipelines_per_step', 'bytes_per_step', 'peak_gpu_bytes', 'peak_live_bytes', 'replayed_per_step', 'adapter', 'matrix_tiles', 'activations', 'precision', 'method',
  'loss_after',
];

const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Forward FLOPs of a conv case [B, Cin, H, W, Cout, k, stride, groups], padding (k − 1)/2. */
function convFlops([B, Cin, H, W, Cout, k, stride, groups]: number[]): number {
  const p = (k - 1) / 2;
  const Ho = Math.floor((H + 2 * p - k) / stride) + 1;
  const Wo = Math.floor((W + 2 * p - k) / stride) + 1;
  return 2 * B * Cout * Ho * Wo * (Cin / groups) * k * k;
}

describe('kernel families', () => {
  let results: BenchResult[] = [];

  beforeAll(async () => {
    const report = await runSuite({ suite: 'kernels', size: 'tiny', warmup: 1, iters: 1, only: NEW_FAMILIES, log: () => {} });
    expect(report.suite).toBe('kernels');
    expect(report.config).toEqual({ size: 'tiny', warmup: 1, iters: 1, timer: 'auto' });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    results = report.results;
  });

  const byName = (n: string) => results.filter((r) => r.name === n);

  it('every result is positive and finite', () => {
    expect(results.map((r) => r.name)).toEqual([
      ...['stem0', 'stem1', 'stem2', 'fc1', 'gconv'].flatMap((c) => [`conv_${c}`, `conv_${c}_fwd_bwd`]),
      'knn', 'maxrel', 'maxrel_fwd_bwd', 'bn_train', 'bn_train_fwd_bwd', 'adamw',
    ]);
    for (const r of results) {
      expect(r.suite).toBe('kernels');
      for (const k of Object.keys(r)) expect([...BASE_KEYS, 'dense_bytes', 'fused_bytes']).toContain(k);
      expect(r.shape.every((d) => Number.isInteger(d) && d > 0)).toBe(true);
      expect(positive(r.ms)).toBe(true);
      expect(positive(r.minMs) && r.minMs <= r.ms).toBe(true);
      expect(['timestamp', 'wallclock']).toContain(r.method);
      expect(r.gflops !== undefined || r.gbps !== undefined).toBe(true);
      for (const rate of [r.gflops, r.gbps]) if (rate !== undefined) expect(positive(rate)).toBe(true);
    }
  });

  it('conv: stage-0 stem, fc1 and grouped graph_conv; fwd_bwd counts 3× the forward FLOPs', () => {
    // tiny: B = 2, C0 = 8, 32 px input → stage 0 at 8×8.
    const shapes = { conv_stem0: [2, 3, 32, 32, 4, 3, 2, 1], conv_stem1: [2, 4, 16, 16, 8, 3, 2, 1], conv_stem2: [2, 8, 8, 8, 8, 3, 1, 1], conv_fc1: [2, 8, 8, 8, 32, 1, 1, 1], conv_gconv: [2, 16, 8, 8, 16, 1, 1, 4] };
    for (const [name, shape] of Object.entries(shapes)) {
      const [fwd] = byName(name);
      const [fb] = byName(`${name}_fwd_bwd`);
      expect(fwd.shape).toEqual(shape);
      expect(fb.shape).toEqual(shape);
      expect(fwd.gflops!).toBeCloseTo(convFlops(shape) / (fwd.ms * 1e6), 9);
      expect(fb.gflops!).toBeCloseTo((3 * convFlops(shape)) / (fb.ms * 1e6), 9);
    }
  });

  it('knn: inner-product GFLOP/s and the memory of a materialised distance matrix vs the fused op', () => {
    const [r] = byName('knn');
    const [rows, N, M, cg, k] = r.shape;
    expect(r.shape).toEqual([4, 100, 25, 8, 9]);
    expect(r.gflops!).toBeCloseTo((2 * rows * N * M * cg) / (r.ms * 1e6), 9);
    expect(r.dense_bytes).toBe(rows * N * M * 4);
    // Normalised copies of query and source (B·C = rows·cg channels), squared norms, i32 indices.
    expect(r.fused_bytes).toBe(4 * (rows * cg * (N + M) + rows * (N + M) + rows * N * k));
  });

  it('maxrel and bn: GB/s over the bytes each direction must move', () => {
    for (const r of [...byName('maxrel'), ...byName('maxrel_fwd_bwd')]) {
      const [B, C, N, M, G, k] = r.shape;
      expect(r.shape).toEqual([2, 8, 100, 25, 2, 9]);
      const pass = 4 * (2 * B * C * N + B * C * M + B * G * N * k);
      expect(r.gbps!).toBeCloseTo(((r.name === 'maxrel' ? 1 : 2) * pass) / (r.ms * 1e6), 9);
    }
    for (const r of [...byName('bn_train'), ...byName('bn_train_fwd_bwd')]) {
      expect(r.shape).toEqual([2, 8, 7, 9]);
      expect(r.gbps!).toBeCloseTo(((r.name === 'bn_train' ? 2 : 5) * 4 * prod(r.shape)) / (r.ms * 1e6), 9);
    }
  });

  it('adamw: 28 bytes per parameter value over a GKGNet layout', () => {
    const [r] = byName('adamw');
    const [values, tensors] = r.shape;
    expect(tensors).toBe(gkgnetShapes({ widths: [4, 8, 16, 32], blocks: [1, 1, 1, 1], labels: 8, side: 32 }).length);
    expect(r.gbps!).toBeCloseTo((28 * values) / (r.ms * 1e6), 9);
    // The step stays in one compute pass (parameters live in the flat buffers, gradients are
    // gathered by dispatches), so GPU timestamps time it where the device has them.
    expect(r.method).toBe(device().features.has('timestamp-query') ? 'timestamp' : 'wallclock');
  });
});

describe('adamw layout', () => {
  it('is GKGNet-S / -T: the trainable counts of spec models.md §4.6', () => {
    const count = (widths: [number, number, number, number], side: number) =>
      gkgnetShapes({ widths, blocks: [2, 2, 6, 2], labels: 80, side }).reduce((a, s) => a + prod(s), 0);
    expect(count([80, 160, 400, 640], 224)).toBe(33_265_200);
    expect(count([80, 160, 400, 640], 448)).toBe(34_017_840);
    expect(count([80, 160, 400, 640], 576)).toBe(34_673_200);
    expect(count([48, 96, 240, 384], 448)).toBe(12_550_288);
  });
});

describe('train suite', () => {
  it('`bench --suite train --json` prints the contract object; a warm step allocates nothing', async () => {
    let stdout = '';
    let stderr = '';
    const io = { stdout: (s: string) => void (stdout += s), stderr: (s: string) => void (stderr += s) };
    // Three warm-up steps: one the normal way, then two recordings that must agree; the timed steps
    // are replays of the recorded one.
    const code = await main(['bench', '--suite', 'train', '--size', 'tiny', '--warmup', '3', '--iters', '2', '--json'], io);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(stdout);
    expect(Object.keys(report).sort()).toEqual(['config', 'device', 'results', 'suite']);
    expect(report.suite).toBe('train');
    expect(report.config).toEqual({ size: 'tiny', warmup: 3, iters: 2, timer: 'auto' });
    expect(report.results).toHaveLength(1);
    const [r] = report.results;
    expect(Object.keys(r).sort()).toEqual([...TRAIN_KEYS].sort());
    expect(r).toMatchObject({ suite: 'train', name: 'gkgnet-tiny@64', shape: [2, 3, 64, 64], precision: 'fp32', method: 'wallclock', matrix_tiles: 'none', activations: 'f32' });
    for (const k of ['ms', 'minMs', 'images_per_s', 'dispatches_per_step', 'host_ms_per_step', 'bytes_per_step', 'peak_gpu_bytes', 'loss_after']) expect(positive(r[k]), k).toBe(true);
    expect(r.images_per_s).toBeCloseTo((2 * 1000) / r.ms, 9);
    expect(r.host_ms_per_step).toBeLessThanOrEqual(r.ms);
    expect(r.submits_per_step).toBe(1);
    expect(r.replayed_per_step).toBe(1);
    expect(r.allocations_per_step).toBe(0);
    expect(r.bind_groups_per_step).toBe(0);
    expect(r.pipelines_per_step).toBe(0);
    expect(Number.isInteger(r.bytes_per_step) && r.bytes_per_step % 4 === 0).toBe(true);
    expect(r.peak_gpu_bytes).toBeGreaterThan(r.bytes_per_step / r.dispatches_per_step);
    expect(r.peak_live_bytes).toBeGreaterThan(0);
    expect(r.peak_live_bytes).toBeLessThanOrEqual(r.peak_gpu_bytes);
    expect(typeof r.adapter === 'string' && r.adapter.length > 0).toBe(true);
    expect(r.adapter).toContain(report.device.adapter.vendor);
  });

  it('--case MODEL@SIZE:BATCH runs that one case; a malformed or misplaced --case is a usage error', async () => {
    const run = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await main(['bench', ...args], { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t) });
      return { code, stdout, stderr };
    };
    const ok = await run(['--suite', 'train', '--case', 'gkgnet-mini@64:3', '--warmup', '3', '--iters', '1', '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const { results } = JSON.parse(ok.stdout);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ name: 'gkgnet-mini@64', shape: [3, 3, 64, 64], allocations_per_step: 0, replayed_per_step: 1 });
    // One warm-up step is fewer than the recording needs (a normal step and two recorded ones): the
    // bench warms up through it, so the timed steps still replay.
    const short = await run(['--suite', 'train', '--case', 'gkgnet-mini@64:3', '--warmup', '1', '--iters', '2', '--json']);
    expect(short.code, short.stderr).toBe(0);
    expect(JSON.parse(short.stdout).results[0]).toMatchObject({ replayed_per_step: 1, allocations_per_step: 0 });
    for (const [args, msg] of [
      [['--suite', 'train', '--case', 'gkgnet-t@224'], /^webvig bench: --case gkgnet-t@224: expected MODEL@SIZE:BATCH/],
      [['--suite', 'train', '--case', 'resnet@224:4'], /^webvig bench: --case resnet@224:4: unknown model resnet; models: /],
      [['--suite', 'train', '--case', 'gkgnet-t@100:4'], /^webvig bench: --case gkgnet-t@100:4: size 100 must be a positive multiple of 32/],
      [['--suite', 'kernels', '--case', 'gkgnet-t@224:4'], /^webvig bench: --case is for --suite train, not kernels/],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stdout).toBe('');
    }
  });

  it('a region model steps with its own training loss; a -boxes one gets boxes per image and runs the normal way', async () => {
    const spies = [vi.spyOn(IaGcn.prototype, 'trainingLoss'), vi.spyOn(GmMlic.prototype, 'trainingLoss')];
    try {
      const one = async (trainCase: string) => (await runSuite({ suite: 'train', size: 'tiny', trainCase, warmup: 1, iters: 1, log: () => {} })).results[0];
      expect(await one('ia-gcn-gkgnet-tiny-boxes@64:2')).toMatchObject({ name: 'ia-gcn-gkgnet-tiny-boxes@64', replayed_per_step: 0 });
      expect(spies[0]).toHaveBeenCalled();
      expect(await one('gm-mlic-gkgnet-tiny-grid@64:2')).toMatchObject({ name: 'gm-mlic-gkgnet-tiny-grid@64', replayed_per_step: 1 });
      expect(spies[1]).toHaveBeenCalled();
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });
});
