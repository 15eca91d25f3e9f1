import { defineConfig } from 'vitest/config';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeKernelSources } from './scripts/kernel-sources.mjs';

// The WGSL kernels are bundled into kernels/sources.ts (generated); refresh it before any test imports it.
writeKernelSources();

// GPU tests share one lavapipe device per worker; two workers keep both cores busy without
// oversubscribing llvmpipe's own threads.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Kernel autotuning (train/tune-cache.ts) caches into a fresh folder, never the user's ~/.cache.
    env: { WEBVIG_CACHE_DIR: mkdtempSync(join(tmpdir(), 'webvig-test-cache-')) },
    // A test that checks nothing fails instead of passing.
    expect: { requireAssertions: true },
  },
});
