// The architecture as a rule: imports only go down engine → kernels → models → train → bench. Every
// static and dynamic import of every source file is read and checked against the layer order. The
// command line (train/commands/) is the one place that sees every layer: it runs the bench suites.
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const LAYERS = ['engine', 'kernels', 'models', 'train'] as const;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Project-relative targets of a file's relative imports (static, re-exports and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
  return specs.map((s) => relative(root, resolve(dirname(file), s)));
}

describe('layering', () => {
  for (const [i, layer] of LAYERS.entries()) {
    const above = [...LAYERS.slice(i + 1), 'bench'];
    it(`${layer}/ imports nothing from ${above.join(', ')}`, () => {
      const files = sources(join(root, layer)).filter((f) => !relative(root, f).startsWith('train/commands/'));
      const violations = files.flatMap((f) =>
        importsOf(f)
          .filter((target) => above.some((a) => target.startsWith(`${a}/`)))
          .map((target) => `${relative(root, f)} → ${target}`),
      );
      expect(violations).toEqual([]);
    });
  }

  it('model code holds no module-level mutable hook or generator state', () => {
    const offenders = sources(join(root, 'models')).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/^export (?:const|let) (\w+) = \{/gm)].map((m) => `${relative(root, f)}: ${m[1]}`),
    );
    expect(offenders).toEqual([]);
  });

  // The browser bundle (npm run build:web) is made from these three layers: no Node built-in may be
  // reachable from them, statically or dynamically, and the only package they use is wgsl_reflect
  // (gpu.ts loads Dawn's `webgpu` by a computed name, only where there is no navigator.gpu).
  it('engine/, kernels/ and models/ import no Node built-in and no package but wgsl_reflect', () => {
    const offenders = ['engine', 'kernels', 'models'].flatMap((layer) =>
      sources(join(root, layer)).flatMap((f) => {
        const text = readFileSync(f, 'utf8');
        const specs = [
          ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]);
        const bad = specs.filter((s) => !s.startsWith('.') && !s.startsWith('wgsl_reflect/'));
        // Also any mention of a node: module in code (e.g. `import type`, a string built for import()).
        if (/['"`]node:/.test(text)) bad.push('a node: module name');
        return bad.map((s) => `${relative(root, f)} → ${s}`);
      }),
    );
    expect(offenders).toEqual([]);
  });

  it('the reader sees every kind of import (guards the check itself)', () => {
    const imports = importsOf(join(root, 'train', 'cli.ts'));
    expect(imports).toContain('train/commands/train.js');
    expect(importsOf(join(root, 'kernels', 'index.ts'))).toContain('engine/index.js');
  });
});
