// `--precision mixed` end to end: a short mixed run learns and records its precision and loss-scaler
// state, resumes from it, refuses a resume with another --precision, and an adapter without
// shader-f16 (simulated by taking the feature out of the device's set) exits 2 naming the flag and
// the missing feature, for train and for bench.
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, device, operandPrecision } from '../kernels/index.js';
import { train, type TrainConfig } from '../train/trainer.js';
import { PRESETS } from '../train/presets.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { main } from '../train/cli.js';
import { mixedPrecisionProblem } from '../train/precision.js';

const root = mkdtempSync(join(tmpdir(), 'webvig-mixed-'));
const synthetic = { train: 96, val: 32, size: 64 };

function config(out: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...PRESETS.tiny, preset: 'tiny', epochs: 3, batch: 16, data: undefined, out, seed: 3, workers: 0, skipBad: false,
    root, logEvery: 2, synthetic, precision: 'mixed', ...extra,
  };
}

async function run(argv: string[]) {
  const out = { stdout: '', stderr: '' };
  const code = await main(argv, { stdout: (s) => void (out.stdout += s), stderr: (s) => void (out.stderr += s) });
  return { code, ...out };
}

beforeAll(async () => {
  await init();
});

describe('--precision mixed', () => {
  const out = join(root, 'run');

  it('a short mixed run learns (loss falls), records precision and the loss scale, and resumes', async () => {
    await train(config(out), () => {});
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => r.epoch)).toEqual([1, 2, 3]);
    for (const r of rows) expect(Number.isFinite(r.train_loss)).toBe(true);
    expect(rows[2].train_loss).toBeLessThan(0.97 * rows[0].train_loss);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).precision).toBe('mixed');
    const ck = await loadCheckpoint(join(out, 'last.safetensors'));
    const scale = ck.optimizer.get('grad_scaler.scale')!.data[0];
    // A power of two the dynamic scaling reached (65536 at the start, halved on each overflow).
    expect(Number.isInteger(Math.log2(scale))).toBe(true);
    expect(ck.optimizer.get('grad_scaler.growth_tracker')).toBeDefined();
    // The run leaves the process's kernels as it found them.
    expect(operandPrecision()).toBe('f32');

    await train(config(out, { epochs: 4, resume: out }), () => {});
    const resumed = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(resumed.map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
    expect(Number.isFinite(resumed[3].train_loss)).toBe(true);
  }, 600_000);

  it('bench --precision mixed reports the loss after its steps and the loss scale they left', async () => {
    const b = await run(['bench', '--suite', 'train', '--size', 'tiny', '--precision', 'mixed', '--warmup', '1', '--iters', '2', '--json']);
    expect(b.code, b.stderr).toBe(0);
    const [r] = JSON.parse(b.stdout).results;
    expect(r.precision).toBe('mixed');
    expect(Number.isFinite(r.loss_after) && r.loss_after > 0).toBe(true);
    // 65536 at the start, halved on each overflow, doubled after 2000 clean steps: a power of two.
    expect(Number.isInteger(Math.log2(r.loss_scale)) && r.loss_scale <= 65536).toBe(true);
    expect(operandPrecision()).toBe('f32');
  });

  it('a resume with another --precision is refused (exit 2), naming both', async () => {
    const r = await run(['train', '--resume', out, '--precision', 'fp32']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--precision fp32 contradicts the resumed run's precision mixed/);
  });

  it('an adapter without shader-f16: train and bench exit 2 naming --precision mixed and shader-f16, before touching --out', async () => {
    expect(mixedPrecisionProblem(new Set(['shader-f16']), 'x')).toBeNull();
    expect(mixedPrecisionProblem(new Set(['subgroups']), 'gpu X')).toMatch(/--precision mixed needs .*shader-f16.* gpu X/);
    const features = device().features;
    expect(features.has('shader-f16')).toBe(true);
    features.delete('shader-f16');
    try {
      const fresh = join(root, 'refused');
      const t = await run(['train', '--precision', 'mixed', '--out', fresh, '--synthetic-train', '16', '--synthetic-val', '8']);
      expect(t.code).toBe(2);
      expect(t.stderr).toMatch(/--precision mixed needs the WebGPU feature shader-f16/);
      expect(existsSync(fresh)).toBe(false);
      const b = await run(['bench', '--suite', 'train', '--size', 'tiny', '--precision', 'mixed', '--json']);
      expect(b.code).toBe(2);
      expect(b.stderr).toMatch(/--precision mixed needs the WebGPU feature shader-f16/);
      expect(operandPrecision()).toBe('f32');
    } finally {
      features.add('shader-f16');
    }
  });
});
