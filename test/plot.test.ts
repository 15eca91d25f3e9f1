import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { renderCurves } from '../train/plot.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvig-plot-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('renderCurves', () => {
  it('writes a decodable PNG of sane size and leaves no temp file', async () => {
    const out = join(tmp, 'curves.png');
    const rows = [1, 2, 3, 4, 5].map((epoch) => ({ epoch, trainLoss: 2 / epoch, valMap: epoch === 2 ? NaN : 40 + 5 * epoch }));
    await renderCurves(rows, out);
    const { info, data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect(info.width).toBeGreaterThan(600);
    expect(info.width).toBeLessThan(4000);
    expect(info.height).toBeGreaterThan(250);
    expect(info.height).toBeLessThan(info.width);
    // Not blank: a white background with dark text and coloured lines.
    const distinct = new Set<number>();
    for (let i = 0; i < data.length; i += info.channels) distinct.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    expect(distinct.size).toBeGreaterThan(20);
    expect(readdirSync(tmp)).toEqual(['curves.png']);
    await renderCurves(rows.slice(0, 1), out); // a single point and overwriting both work
    expect(existsSync(out)).toBe(true);
  });
});
