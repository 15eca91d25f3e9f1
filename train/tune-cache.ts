// The autotuner's choices on disk (kernels/autotune.ts): one JSON file per adapter, in
// $WEBVIG_CACHE_DIR, else $XDG_CACHE_HOME/webvig, else ~/.cache/webvig; replaced atomically after
// each tuning. A file that cannot be read or parsed is ignored with a warning (the shapes are then
// tuned again and the file rewritten), never an error: it is only a cache. WEBVIG_AUTOTUNE=0 turns
// tuning off (the default variants, no file read or written).
import { readFile, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { adapterKey, attachTuneCache, autotune, tunePending, type TuneEntries } from '../kernels/autotune.js';
import { hash } from '../engine/kernel.js';
import { writeFileAtomic } from './atomic-file.js';

const VERSION = 1;

export function autotuneEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.WEBVIG_AUTOTUNE !== '0';
}

export function tuneCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.WEBVIG_CACHE_DIR) return env.WEBVIG_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webvig');
}

/** The adapter's file: named by a hash of the adapter (and driver) it was timed on. */
export function tuneCachePath(adapter: string, dir = tuneCacheDir()): string {
  return join(dir, `autotune-${hash(adapter)}.json`);
}

function parse(text: string, adapter: string): TuneEntries {
  const doc = JSON.parse(text) as { version?: unknown; adapter?: unknown; entries?: unknown };
  if (doc === null || typeof doc !== 'object' || doc.version !== VERSION || typeof doc.entries !== 'object' || doc.entries === null || Array.isArray(doc.entries)) {
    throw new Error(`not a version ${VERSION} autotune cache`);
  }
  // Another adapter whose description hashes alike: not ours.
  if (doc.adapter !== adapter) throw new Error(`made for adapter ${JSON.stringify(doc.adapter)}`);
  const entries: TuneEntries = {};
  for (const [k, v] of Object.entries(doc.entries)) if (v !== null && typeof v === 'object' && !Array.isArray(v)) entries[k] = v;
  return entries;
}

/**
 * Load the current adapter's choices (before the first step, so that they apply from it) and have
 * new ones saved. `warn` receives a line when the file is unreadable.
 */
export async function useTuneCache(warn: (msg: string) => void, dir = tuneCacheDir()): Promise<void> {
  const adapter = adapterKey();
  const path = tuneCachePath(adapter, dir);
  let entries: TuneEntries = {};
  try {
    entries = parse(await readFile(path, 'utf8'), adapter);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'ENOENT') warn(`ignoring the autotune cache ${path} (${err.message}); the kernels will be timed again`);
  }
  attachTuneCache(entries, async (all) => {
    try {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(path, `${JSON.stringify({ version: VERSION, adapter, entries: all }, null, 1)}\n`);
    } catch (e) {
      warn(`cannot save the autotune cache: ${(e as Error).message}`);
    }
  });
}

/** Between steps: time the shapes the last step met for the first time, if any. */
export async function tuneNewShapes(): Promise<void> {
  if (tunePending() > 0) await autotune();
}
