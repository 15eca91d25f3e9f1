#!/usr/bin/env node
// Idempotent set-up for `npm test` / `npm run train` on a fresh machine, using only Node built-ins:
//   1. node_modules present and matching package-lock.json (else `npm ci`);
//   2. a WebGPU adapter exists (else, as root on Debian, install Mesa lavapipe from bookworm-backports;
//      otherwise stop with one message saying what to install);
//   3. kernels/sources.ts (the WGSL kernels bundled as strings) regenerated when a kernel changed;
//   4. with --build: compile TypeScript to dist/ (esbuild file by file; tsc with --clean) when any
//      source is newer than the last build or its output is missing, and bundle the browser entry
//      and demo page (scripts/build-web.mjs, esbuild) into dist/browser/;
//   5. for `npm test` (--browser): Chromium for the headless page test (test/browser.test.ts), from
//      Debian as root when missing, else one message saying what to install.
// --no-adapter skips step 2 (packing needs a build, not a GPU); --clean rebuilds dist/ from nothing
// with tsc (types included).
// A second run touches no network and costs well under two seconds.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync, copyFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeKernelSources } from './kernel-sources.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const log = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function fail(msg) {
  process.stderr.write(`\nwebvig setup: ${msg}\n\n`);
  process.exit(1);
}

function run(cmd, argv, opts = {}) {
  log(`${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) fail(`\`${cmd} ${argv.join(' ')}\` failed (exit ${r.status ?? r.signal}).`);
}

// 1. Dependencies: the stamp records the lockfile hash of the last successful install.
function ensureDependencies() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.webvig-deps');
  const hash = existsSync(lock) ? createHash('sha256').update(readFileSync(lock)).digest('hex') : 'no-lock';
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return;
  if (existsSync(lock)) run('npm', ['ci', '--no-audit', '--no-fund']);
  else run('npm', ['install', '--no-audit', '--no-fund']);
  writeFileSync(stamp, hash);
}

// 2. WebGPU adapter: probed in a child process so a driver crash cannot take this script down.
const PROBE = `
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const a = await gpu.requestAdapter();
globalThis.__keep = gpu;
console.log(a ? JSON.stringify({ ok: true, vendor: a.info.vendor, device: a.info.device }) : '{"ok":false}');
process.exit(0);
`;

function probeAdapter() {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
  });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  try { return JSON.parse(line).ok === true; } catch { return false; }
}

function installLavapipe() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const isDebian = existsSync('/etc/debian_version');
  const advice =
    'No WebGPU adapter was found. Install a Vulkan driver that Dawn accepts: on Debian bookworm, as root,\n' +
    '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list\n' +
    '  apt-get update && apt-get install -y libvulkan1 && apt-get install -y -t bookworm-backports mesa-vulkan-drivers\n' +
    '(Mesa >= 23 lavapipe for CPU-only machines), or run on a machine with a GPU and its Vulkan driver.';
  if (!isRoot || !isDebian) fail(advice);
  const codename = readFileSync('/etc/os-release', 'utf8').match(/VERSION_CODENAME=(\w+)/)?.[1];
  if (codename !== 'bookworm') fail(`${advice}\n(This machine is Debian "${codename}", not bookworm: install the equivalent packages.)`);
  log('no WebGPU adapter: installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports');
  let mirror = 'http://deb.debian.org/debian';
  const sources = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(sources)) mirror = readFileSync(sources, 'utf8').match(/^URIs:\s*(\S+)/m)?.[1] ?? mirror;
  const list = '/etc/apt/sources.list.d/backports.list';
  const line = `deb ${mirror} bookworm-backports main\n`;
  if (!existsSync(list) || readFileSync(list, 'utf8') !== line) writeFileSync(list, line);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update'], { env });
  run('apt-get', ['install', '-y', 'libvulkan1'], { env });
  run('apt-get', ['install', '-y', '-t', 'bookworm-backports', 'mesa-vulkan-drivers'], { env });
  if (!probeAdapter()) fail(`lavapipe was installed but Dawn still finds no adapter.\n${advice}`);
}

function ensureAdapter() {
  const stamp = join(root, 'node_modules', '.webvig-adapter');
  // The adapter probe costs ~0.3 s; skip it when it passed before and the Vulkan ICDs are unchanged.
  const icdDir = '/usr/share/vulkan/icd.d';
  const icds = existsSync(icdDir) ? readdirSync(icdDir).sort().join(',') : '';
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === icds && icds !== '') return;
  if (!probeAdapter()) installLavapipe();
  writeFileSync(stamp, existsSync(icdDir) ? readdirSync(icdDir).sort().join(',') : '');
}

// 4. Build when a source file is newer than dist/: each TypeScript file to JavaScript by esbuild (a
// third of a second; tsc takes ~17 s here and its checks are `npm run typecheck`'s and the tests'),
// or with --clean (npm pack) by tsc, which also writes the .d.ts types the package ships. Then
// the shipped label embeddings (models/label-embeddings/*.json) beside the JS. The WGSL is inside
// dist/kernels/sources.js.

// One walk of the source folders: the newest mtime of the files that make the build, and the
// TypeScript sources (declaration files aside), each of which must have its .js in dist/.
const BUILD_INPUTS = ['.ts', '.wgsl', '.json', '.html', '.css'];
function scanSources(dir, found = { newest: 0, typescript: [] }) {
  if (!existsSync(dir)) return found;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) scanSources(p, found);
    else if (BUILD_INPUTS.some((x) => e.name.endsWith(x))) {
      found.newest = Math.max(found.newest, statSync(p).mtimeMs);
      if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) found.typescript.push(p);
    }
  }
  return found;
}

function copyAssets(dir, ext) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) copyAssets(p, ext);
    else if (e.name.endsWith(ext)) {
      const out = join(root, 'dist', relative(root, p));
      mkdirSync(dirname(out), { recursive: true });
      copyFileSync(p, out);
    }
  }
}

const outputOf = (source) => join(root, 'dist', relative(root, source)).replace(/\.ts$/, '.js');

async function compile(sources) {
  if (args.has('--clean')) {
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', root]);
    return;
  }
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: sources, outdir: join(root, 'dist'), outbase: root, bundle: false, format: 'esm', platform: 'node',
    target: 'es2022', sourcemap: true, tsconfig: join(root, 'tsconfig.json'), logLevel: 'warning',
  });
}

async function ensureBuild() {
  // --clean (npm pack): build from nothing, so no output of a since-removed source is shipped.
  if (args.has('--clean')) rmSync(join(root, 'dist'), { recursive: true, force: true });
  const stamp = join(root, 'dist', '.webvig-build');
  const found = { newest: statSync(join(root, 'tsconfig.json')).mtimeMs, typescript: [] };
  for (const d of ['engine', 'kernels', 'models', 'train', 'bench', 'web']) scanSources(join(root, d), found);
  const { newest, typescript: sources } = found;
  const missing = sources.find((f) => !existsSync(outputOf(f)));
  if (!missing && existsSync(stamp) && statSync(stamp).mtimeMs >= newest) return;
  if (missing && existsSync(stamp)) log(`dist/ lacks the output of ${relative(root, missing)}`);
  log('compiling TypeScript to dist/');
  await compile(sources);
  copyAssets(join(root, 'models', 'label-embeddings'), '.json');
  const { buildWeb } = await import('./build-web.mjs');
  await buildWeb();
  writeFileSync(stamp, new Date().toISOString());
}

// 5. Chromium (Debian's package: it ships its own SwiftShader Vulkan, so WebGPU works on a CPU).
export const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

function ensureChromium() {
  if (process.env.WEBVIG_CHROMIUM || CHROMIUM_CANDIDATES.some((p) => existsSync(p))) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !existsSync('/etc/debian_version')) {
    fail('Chromium not found: the headless page test (test/browser.test.ts) needs it. Install it (Debian: apt-get install -y chromium) or set WEBVIG_CHROMIUM to a Chromium/Chrome binary.');
  }
  log('installing Chromium from Debian for the headless page test');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update'], { env });
  run('apt-get', ['install', '-y', 'chromium'], { env });
}

ensureDependencies();
if (!args.has('--no-adapter')) ensureAdapter();
if (writeKernelSources()) log('bundled kernels/*.wgsl into kernels/sources.ts');
if (args.has('--browser')) ensureChromium();
if (args.has('--build')) await ensureBuild();
