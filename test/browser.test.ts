// The engine in a browser: the demo page (web/), bundled by esbuild from the sources, served from
// 127.0.0.1 by scripts/serve-web.mjs, opened in Debian's Chromium (headless, SwiftShader WebGPU)
// through playwright-core. `/?selftest=1` must train, see the loss fall, pass a block fixture's
// parity and report through `document.title` and `window.webvigSelftest` (a contract with scripts
// outside the project). Screenshots go to test-output/browser/. Skipped, with the reason, when no
// Chromium is installed (scripts/setup.mjs --browser installs it as root on Debian).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
// @ts-expect-error: plain .mjs scripts (Node built-ins, esbuild)
import { buildWeb } from '../scripts/build-web.mjs';
// @ts-expect-error: plain .mjs scripts
import { startServer } from '../scripts/serve-web.mjs';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, 'test-output', 'browser');
const executable = [process.env.WEBVIG_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));

let server: Server;
let url: string;
let browser: Browser;

async function openPage(path: string, viewport: { width: number; height: number }): Promise<{ page: Page; messages: string[] }> {
  const page = await browser.newPage({ viewport });
  const messages: string[] = [];
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  await page.goto(new URL(path, url).href);
  return { page, messages };
}

// npm test's set-up installs Chromium or stops saying what to install, so a missing one fails here.
describe(`the page in headless Chromium (${executable ?? 'no Chromium found: apt-get install chromium'})`, () => {
  beforeAll(async () => {
    if (!executable) throw new Error('no Chromium found: apt-get install -y chromium, or set WEBVIG_CHROMIUM to a Chromium/Chrome binary');
    const bundleDir = mkdtempSync(join(tmpdir(), 'webvig-web-'));
    await buildWeb({ outdir: bundleDir });
    ({ server, url } = await startServer({ port: 0, bundleDir }));
    // The three flags of the measured recipe (shared notes): no GPU flags beyond them.
    browser = await chromium.launch({ executablePath: executable, args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'] });
    mkdirSync(outDir, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('/?selftest=1 trains with a falling loss, passes a block fixture, and reports by title and window.webvigSelftest', async () => {
    const { page, messages } = await openPage('/?selftest=1', { width: 1200, height: 900 });
    try {
      await page.waitForFunction(() => /^selftest (pass|fail)/.test(document.title), null, { timeout: 540_000, polling: 500 });
    } finally {
      writeFileSync(join(outDir, 'selftest-console.txt'), messages.join('\n'));
      await page.screenshot({ path: join(outDir, 'selftest.png'), fullPage: true });
    }
    const title = await page.title();
    const r = (await page.evaluate(() => (window as unknown as { webvigSelftest: unknown }).webvigSelftest)) as {
      pass: boolean; steps: number; firstLoss: number; lastLoss: number; parityWorstError: number; adapter: string;
      parity: { pass: boolean; file: string }; limits: Record<string, number>;
    };
    writeFileSync(join(outDir, 'selftest.json'), JSON.stringify(r, null, 2));
    expect(title, messages.filter((m) => /error|fail/i.test(m)).join('\n')).toBe('selftest pass');
    expect(r.pass).toBe(true);
    expect(r.steps).toBeGreaterThanOrEqual(4);
    expect(r.lastLoss).toBeLessThan(r.firstLoss);
    expect(r.parity.pass).toBe(true);
    expect(r.parityWorstError).toBeLessThan(1e-3);
    expect(r.adapter).toMatch(/navigator\.gpu/);
    // The browser's own limit (SwiftShader: 256) is what the kernels ran under.
    expect(r.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThan(0);
    expect(messages.filter((m) => m.startsWith('pageerror'))).toEqual([]);
  }, 600_000);

  it('the demo page renders on a phone-sized and a desktop screen', async () => {
    for (const [name, viewport] of [['phone', { width: 390, height: 844 }], ['desktop', { width: 1280, height: 900 }]] as const) {
      const { page, messages } = await openPage('/', viewport);
      await page.waitForFunction(() => !/starting WebGPU/.test(document.getElementById('adapter')!.textContent!), null, { timeout: 60_000 });
      expect(await page.textContent('#adapter')).toMatch(/navigator\.gpu/);
      // Nothing wider than the screen.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name}: page wider than the screen`).toBeLessThanOrEqual(1);
      await page.screenshot({ path: join(outDir, `page-${name}.png`), fullPage: true });
      expect(messages.filter((m) => m.startsWith('pageerror'))).toEqual([]);
      await page.close();
    }
  }, 120_000);
});
