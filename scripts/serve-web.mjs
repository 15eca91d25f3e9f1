#!/usr/bin/env node
// `npm run web [-- --port N]`: builds the browser bundles (scripts/build-web.mjs) and serves the demo
// page on 127.0.0.1 with node:http: web/ (index.html, style.css), the bundles (app.js, webvig.js)
// and the block fixtures under /fixtures/ (from test/fixtures/, for the page's parity checks).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.safetensors': 'application/octet-stream', '.png': 'image/png' };

/**
 * Serves the page; `bundleDir` holds app.js and webvig.js. Resolves to { server, url } once listening
 * (port 0: any free port).
 */
export function startServer({ port = 8080, host = '127.0.0.1', bundleDir = join(root, 'dist', 'browser'), fixtureDir = join(root, 'test', 'fixtures') } = {}) {
  const routes = (path) => {
    if (path === '/' || path === '/index.html') return join(root, 'web', 'index.html');
    if (path === '/style.css') return join(root, 'web', 'style.css');
    if (path === '/app.js' || path === '/webvig.js') return join(bundleDir, path.slice(1));
    const m = path.match(/^\/fixtures\/([\w-]+\.safetensors)$/);
    if (m) return join(fixtureDir, basename(m[1]));
    return null;
  };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = routes(path);
    if (!file || !existsSync(file) || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, url: `http://${host}:${server.address().port}/` }));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  let port = 8080;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port' && /^\d+$/.test(args[i + 1] ?? '')) port = Number(args[++i]);
    else if (/^--port=\d+$/.test(args[i])) port = Number(args[i].slice(7));
    else if (args[i] === '--help' || args[i] === '-h') {
      process.stdout.write('Usage: npm run web [-- --port N]   serve the demo page on http://127.0.0.1:N/ (default 8080)\n');
      process.exit(0);
    } else {
      process.stderr.write(`npm run web: unknown or bad argument ${args[i]} (usage: npm run web [-- --port N])\n`);
      process.exit(2);
    }
  }
  const { buildWeb } = await import('./build-web.mjs');
  await buildWeb();
  try {
    const { url } = await startServer({ port });
    process.stdout.write(`webvig demo: ${url} (self-test: ${url}?selftest=1). WebGPU needed: in Chromium on Linux, --enable-unsafe-webgpu. Ctrl-C stops.\n`);
  } catch (e) {
    process.stderr.write(`npm run web: cannot listen on 127.0.0.1:${port}: ${e.message}\n`);
    process.exit(1);
  }
}
