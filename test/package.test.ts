// The published package: `npm pack` builds first, and the tarball, installed into an empty project,
// imports as `webvig`, `webvig/models` and `webvig/train` with types, computes with its shipped
// kernels, and its `webvig` bin runs. Dependencies are linked from this checkout's node_modules
// (no network), exactly where npm would install them.
import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'webvig-pack-'));
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', project], { cwd: root, encoding: 'utf8' }).trim().split('\n').pop()!;
  const pkg = join(project, 'node_modules', manifest.name);
  mkdirSync(pkg, { recursive: true });
  execFileSync('tar', ['xzf', join(project, tarball), '-C', pkg, '--strip-components=1']);
  for (const dep of [...Object.keys(manifest.dependencies), 'typescript', '@types/node', '@webgpu/types']) {
    const link = join(project, 'node_modules', dep);
    mkdirSync(join(link, '..'), { recursive: true });
    symlinkSync(join(root, 'node_modules', dep), link, 'dir');
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
}, 300_000);

describe('npm pack', () => {
  it('ships the build, kernels and types, and no sources, maps or build state', () => {
    const files = execFileSync('tar', ['tzf', join(project, `${manifest.name}-${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}.tgz`)], { encoding: 'utf8' }).split('\n');
    expect(files).toContain('package/dist/kernels/index.js');
    expect(files).toContain('package/dist/kernels/index.d.ts');
    // The WGSL is bundled into the JS (kernels/sources.ts), not read from files at run time.
    expect(files).toContain('package/dist/kernels/sources.js');
    expect(files.filter((f) => f.endsWith('.wgsl'))).toEqual([]);
    expect(files).toContain('package/dist/models/index.d.ts');
    expect(files).toContain('package/dist/models/label-embeddings/coco-glove-300.json');
    expect(files).toContain('package/dist/models/label-embeddings/voc-glove-300.json');
    expect(files).toContain('package/dist/train/index.d.ts');
    // The browser entry: one ESM bundle with its types; the demo page's own script is not shipped.
    expect(files).toContain('package/dist/browser/webvig.js');
    expect(files).toContain('package/dist/web/webvig.d.ts');
    expect(files).not.toContain('package/dist/browser/app.js');
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map') || f.includes('tsbuildinfo') || f.includes('.webvig-build'))).toEqual([]);
  });

  it('imports as webvig, webvig/models and webvig/train, and computes with the shipped kernels', () => {
    writeFileSync(
      join(project, 'use.mjs'),
      `import { init, Tensor, F, backward } from 'webvig';
import { buildModel, Gkgnet } from 'webvig/models';
import { train, AdamW, cocoMetrics, defaultLabelEmbeddings } from 'webvig/train';
await init();
const a = Tensor.from([1, 2, 3], [3]);
a.requiresGrad = true;
const y = F.sum(F.mul(a, a));
backward(y);
const out = { y: await y.item(), grad: Array.from(await a.grad.toArray()),
  kinds: [typeof buildModel, typeof Gkgnet, typeof train, typeof AdamW, typeof cocoMetrics],
  glove: defaultLabelEmbeddings(['tvmonitor', 'sofa']).source };
process.stdout.write(JSON.stringify(out));
process.exit(0);
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['use.mjs'], { cwd: project, encoding: 'utf8' }));
    // The shipped label vectors are found from the installed package.
    expect(out).toEqual({ y: 14, grad: [2, 4, 6], kinds: ['function', 'function', 'function', 'function', 'function'], glove: 'glove-voc' });
  });

  it('type-checks a consumer against the shipped declarations', () => {
    writeFileSync(
      join(project, 'use.ts'),
      `import { Tensor, F, type Shape } from 'webvig';
import { buildModel, type MultiLabelModel } from 'webvig/models';
import { type TrainConfig, MetricAccumulator } from 'webvig/train';
const s: Shape = [2, 3];
const t: Tensor = F.matmul(Tensor.from(new Float32Array(6), s), Tensor.from(new Float32Array(12), [3, 4]));
const m: MultiLabelModel = buildModel('gkgnet-tiny', { size: 64, numLabels: 5 });
// @ts-expect-error: the declarations are strict enough to reject a wrong argument
F.matmul(t, 'no');
export type Used = [TrainConfig, typeof m, typeof MetricAccumulator];
`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node', '@webgpu/types'] }, files: ['use.ts'] }),
    );
    let diagnostics = '';
    try {
      execFileSync(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project, encoding: 'utf8' });
    } catch (e) {
      diagnostics = (e as { stdout: string }).stdout;
    }
    expect(diagnostics, 'tsc rejected the consumer').toBe('');
  });

  it('ships webvig/browser: one self-contained ESM bundle with no Node built-in, typed', () => {
    const pkgDir = join(project, 'node_modules', manifest.name);
    const exp = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).exports['./browser'];
    expect(exp).toEqual({ types: './dist/web/webvig.d.ts', default: './dist/browser/webvig.js' });
    const bundle = readFileSync(join(pkgDir, exp.default), 'utf8');
    expect(bundle).not.toMatch(/from ["']node:|import\(["']node:|require\(["']node:/);
    expect(bundle).not.toMatch(/^import .* from ["'](?!\.)/m); // no bare imports left: self-contained
    expect(bundle).toContain('@compute'); // the WGSL is inside
    expect(bundle).toMatch(/export \{[^}]*\bbuildModel\b/);
    writeFileSync(
      join(project, 'use-browser.ts'),
      `import { init, Tensor, F, buildModel, parseSafetensors, type MultiLabelModel } from 'webvig/browser';
export async function run(): Promise<number> {
  await init();
  const m: MultiLabelModel = buildModel('gkgnet-tiny', { size: 64, numLabels: 3 });
  const y = F.sum(m.forward(Tensor.from(new Float32Array(3 * 64 * 64), [1, 3, 64, 64])));
  return parseSafetensors(new Uint8Array(16)).tensors.size + (await y.item());
}
`,
    );
    writeFileSync(
      join(project, 'tsconfig.browser.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, skipLibCheck: true, types: ['@webgpu/types'] }, files: ['use-browser.ts'] }),
    );
    let diagnostics = '';
    try {
      execFileSync(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(project, 'tsconfig.browser.json')], { cwd: project, encoding: 'utf8' });
    } catch (e) {
      diagnostics = (e as { stdout: string }).stdout;
    }
    expect(diagnostics, 'tsc rejected the browser consumer').toBe('');
  });

  it('its webvig bin runs', () => {
    const bin = join(project, 'node_modules', manifest.name, manifest.bin.webvig);
    expect(existsSync(bin)).toBe(true);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    const help = execFileSync(process.execPath, [bin, '--help'], { cwd: project, encoding: 'utf8' });
    expect(help).toMatch(/Usage: webvig <command>/);
    expect(help).toMatch(/train/);
  });
});
