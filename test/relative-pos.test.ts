import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../train/safetensors-file.js';
import { relativePosTable } from '../models/relative-pos.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));

async function loadTables(name: string) {
  const { metadata, tensors } = await readSafetensors(fixture(name), { filter: (n) => n.endsWith('.relative_pos') });
  return { config: JSON.parse(metadata.config!) as Record<string, unknown>, tensors };
}

function expectTable(name: string, stored: { shape: number[]; data: ArrayLike<number> }, n: number, channels: number, r: number) {
  expect(stored.shape, name).toEqual([1, n, n / (r * r)]);
  const ours = relativePosTable(n, channels, r);
  expect(ours.length, name).toBe(stored.data.length);
  let maxErr = 0;
  for (let i = 0; i < ours.length; i++) maxErr = Math.max(maxErr, Math.abs(ours[i]! - stored.data[i]!));
  expect(maxErr, `${name}: max |ours − stored|`).toBeLessThanOrEqual(1e-6);
}

describe('relativePosTable vs fixtures', () => {
  it.each(['gkg_block_xy', 'gkg_block_self', 'vig_block'])('%s', async (file) => {
    const { config, tensors } = await loadTables(file);
    const { C, n, r } = config as { C: number; n: number; r: number };
    expectTable(file, tensors.get('param.block.0.relative_pos')!, n, C, r);
  });

  it.each([
    ['gkg_net', 'backbone.backbone'],
    ['vig_net', 'net.backbone'],
  ])('%s stage tables', async (file, prefix) => {
    const { config, tensors } = await loadTables(file);
    const { channels, reduce_ratios: ratios } = config as { channels: number[]; reduce_ratios: number[] };
    // vig_net's config has no size: the huawei constructor fixes the input at 224 (fixture README).
    const size = (config.size as number | undefined) ?? 224;
    const firstBlocks = [0, 3, 6, 13]; // first Grapher of each stage for blocks (2, 2, 6, 2) + downsamples
    for (let stage = 0; stage < 4; stage++) {
      const side = size / 4 / 2 ** stage; // stem /4, then /2 per stage
      const name = `param.${prefix}.${firstBlocks[stage]}.0.relative_pos`;
      expectTable(name, tensors.get(name)!, side * side, channels[stage]!, ratios[stage]!);
    }
  });
});

describe('relativePosTable', () => {
  it('has −1 on the diagonal and values in [−1, 1) elsewhere when r = 1', () => {
    const n = 36;
    const t = relativePosTable(n, 16, 1);
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (a === b) expect(t[a * n + b]).toBeCloseTo(-1, 6);
        else expect(Math.abs(t[a * n + b]!)).toBeLessThan(1);
      }
    }
  });

  it('validates its arguments', () => {
    expect(() => relativePosTable(250, 32, 1)).toThrow(/perfect square/);
    expect(() => relativePosTable(256, 32, 3)).toThrow(/divid/);
    expect(() => relativePosTable(256, 32, 0)).toThrow(/reduce ratio/);
    expect(() => relativePosTable(256, 3, 1)).toThrow(/channels/);
  });
});
