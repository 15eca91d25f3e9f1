// WebGPU's default limits (init({ limits: 'default' }), env WEBVIG_LIMITS=default), the ones every
// WebGPU device offers: 8 storage buffers per shader stage where lavapipe offers 16. BatchNorm's fused
// train-mode entries bind 9 or 10, so here it runs its split passes: checked against the float64
// reference on both kernel profiles, and inside whole GKGNet blocks and networks against the PyTorch
// fixtures (train mode: outputs, gradients, running statistics).
import { describe, it, expect, beforeAll, beforeEach, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import { init, device } from '../kernels/index.js';
import { limitsOf } from '../engine/device.js';
import { parityFile } from '../train/parity/parity-file.js';
import { main } from '../train/cli.js';
import { forEachKernelProfile } from './ref.js';
import { checkBatchNorm } from './batchnorm-check.js';

beforeAll(async () => {
  await init({ limits: 'default' });
});

describe('a device with WebGPU\'s default limits', () => {
  it('has 8 storage buffers per shader stage, fewer than this adapter offers, and says so', async () => {
    expect(device().limits.maxStorageBuffersPerShaderStage).toBe(8);
    expect(device().limits.maxBufferSize).toBe(256 * 2 ** 20);
    expect(device().describe()).toMatch(/ via dawn \(node\), WebGPU's default limits$/);
    let stdout = '';
    expect(await main(['info', '--json'], { stdout: (s) => void (stdout += s), stderr: () => {} })).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.limitsRequested).toBe('default');
    expect(r.limits.maxStorageBuffersPerShaderStage).toBe(8);
  });

  it('refuses a kernel that binds more storage buffers than that, naming it and the limit', () => {
    const bindings = Array.from({ length: 9 }, (_, i) => `@group(0) @binding(${i}) var<storage, read_write> b${i}: array<f32>;`);
    const code = `${bindings.join('\n')}\n@compute @workgroup_size(1) fn main() { ${bindings.map((_, i) => `b${i}[0] = 1.0;`).join(' ')} }`;
    expect(() => device().pipeline('nine-bindings.wgsl', 'main', {}, code)).toThrow(
      'kernel nine-bindings.wgsl:main binds 9 storage buffers; this device allows 8 per shader stage (maxStorageBuffersPerShaderStage)',
    );
  });
});

forEachKernelProfile((profile) => `${profile} kernel profile, 8 storage buffers: batchNorm2d's split passes vs float64 reference`, () => {
  it('train: odd sizes, several chunks per channel, a B×C×S×1 label tensor, planes of 1', async () => {
    await checkBatchNorm({ shape: [2, 3, 5, 7], training: true, offset: 0, scale: 1, seed: 1 });
    await checkBatchNorm({ shape: [2, 3, 49, 50], training: true, offset: 20, scale: 0.5, seed: 3 });
    await checkBatchNorm({ shape: [3, 4, 20, 1], training: true, offset: 0, scale: 2, seed: 2 });
    await checkBatchNorm({ shape: [7, 3], training: true, offset: 0.5, scale: 1, seed: 9 });
  });
  it('train with a fused GELU, the residual and drop path\'s per-image scale; x with and without a gradient', async () => {
    await checkBatchNorm({ shape: [2, 5, 6, 4], training: true, act: true, offset: 0.3, scale: 1, seed: 4 });
    await checkBatchNorm({ shape: [4, 3, 3, 3], training: true, residual: true, scaled: true, act: true, offset: 0, scale: 1, seed: 19 });
    await checkBatchNorm({ shape: [3, 2, 49, 50], training: true, residual: true, scaled: true, offset: 2, scale: 1, seed: 18 });
    await checkBatchNorm({ shape: [2, 3, 5, 7], training: true, act: true, constantX: true, offset: 0, scale: 1, seed: 12 });
  });
  it('eval with a fused GELU and with the residual: backward too', async () => {
    await checkBatchNorm({ shape: [2, 3, 5, 7], training: false, act: true, offset: 0.2, scale: 1, seed: 5 });
    await checkBatchNorm({ shape: [3, 3, 5, 7], training: false, residual: true, scaled: true, offset: 0.2, scale: 1, seed: 23 });
  });
});

describe('parity with the official PyTorch modules under the default limits', () => {
  const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));
  for (const name of ['gkg_block_self', 'gkg_net']) {
    it(name, async () => {
      const reports = await parityFile(fixture(name));
      expect(reports.map((r) => r.mode)).toEqual(['eval', 'train']);
      for (const r of reports) {
        const failed = r.checks.filter((c) => !c.pass).map((c) => `${c.tensor} ${c.rel_err.toExponential(2)} > ${c.tol}`);
        expect(failed, `${name} [${r.mode}]`).toEqual([]);
        expect(r.pass).toBe(true);
      }
    });
  }
});

describe('WEBVIG_LIMITS', () => {
  const ambient = process.env.WEBVIG_LIMITS;
  beforeEach(() => {
    delete process.env.WEBVIG_LIMITS;
  });
  afterEach(() => {
    if (ambient === undefined) delete process.env.WEBVIG_LIMITS;
    else process.env.WEBVIG_LIMITS = ambient;
  });
  it('takes adapter or default, from the option or the environment (empty: unset), and names a bad value', () => {
    expect(limitsOf()).toBe('adapter');
    process.env.WEBVIG_LIMITS = '';
    expect(limitsOf()).toBe('adapter');
    expect(limitsOf({ limits: 'default' })).toBe('default');
    process.env.WEBVIG_LIMITS = 'default';
    expect(limitsOf()).toBe('default');
    process.env.WEBVIG_LIMITS = 'low';
    expect(() => limitsOf()).toThrow("WEBVIG_LIMITS=low: expected 'adapter' (the adapter's limits) or 'default' (WebGPU's default limits)");
    expect(() => limitsOf({ limits: 'small' as never })).toThrow('limits=small: expected');
  });
  it('a bad value is a usage error of the CLI (exit 2), before any device opens', async () => {
    process.env.WEBVIG_LIMITS = 'low';
    let stderr = '';
    expect(await main(['info'], { stdout: () => {}, stderr: (s) => void (stderr += s) })).toBe(2);
    expect(stderr).toBe("webvig info: WEBVIG_LIMITS=low: expected 'adapter' (the adapter's limits) or 'default' (WebGPU's default limits)\n");
  });
});
