#!/usr/bin/env node
// The browser builds (esbuild): `dist/browser/webvig.js`, the engine + kernels (WGSL inside) + models
// as one ESM module (the package's `webvig/browser` entry; its types are tsc's dist/web/webvig.d.ts),
// and `dist/browser/app.js`, the demo page's script (web/app.ts). Both come from the TypeScript
// sources, so they need no tsc build. kernels/sources.ts is refreshed first.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeKernelSources } from './kernel-sources.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Builds both bundles into `outdir` (default dist/browser); returns the files written. */
export async function buildWeb({ outdir = join(root, 'dist', 'browser'), minify = false } = {}) {
  writeKernelSources();
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: { webvig: join(root, 'web', 'webvig.ts'), app: join(root, 'web', 'app.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: false,
    logLevel: 'warning',
    // The engine reaches Dawn only by a computed module name where navigator.gpu is missing.
    external: ['webgpu'],
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs);
  const node = inputs.filter((f) => f.startsWith('node:') || /(^|\/)node_modules\/(sharp|webgpu)\//.test(f));
  if (node.length) throw new Error(`the browser bundle reaches Node-only modules: ${node.join(', ')}`);
  return Object.keys(result.metafile.outputs);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = await buildWeb({ minify: process.argv.includes('--minify') });
  process.stderr.write(`[build-web] ${files.join(', ')}\n`);
}
