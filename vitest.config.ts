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
    // Trainings in tests run the default kernel variants: timing them would only lengthen the tests
    // (test/autotune.test.ts drives the tuner itself), and no test writes to the user's ~/.cache.
    env: { WEBVIG_AUTOTUNE: '0', WEBVIG_CACHE_DIR: mkdtempSync(join(tmpdir(), 'webvig-test-cache-')) },
    // A test that checks nothing fails instead of passing.
    expect: { requireAssertions: true },
  },
});
