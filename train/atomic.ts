// Run-folder files (config, metrics, summary, curves, checkpoints) go through the engine's one
// atomic writer (temporary file, fsync, rename, folder fsync): a reader or a crash never sees half
// a file. `removeStaleTemps` deletes what a killed write left behind.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, isAtomicTemp, ATOMIC_TEMP } from './atomic-file.js';

export { writeFileAtomic, isAtomicTemp };

/**
 * Removes the temporary files of interrupted atomic writes in `dir` (only names of the form
 * `<file>.tmp-<pid>[-<hex>]`, and never one of this process's). Call it while holding the folder's
 * run lock, so no other writer is live. Returns the names removed.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = ATOMIC_TEMP.exec(name);
    if (!m || Number(m[2]) === process.pid) continue;
    await rm(join(dir, name), { force: true, recursive: true });
    removed.push(name);
  }
  return removed;
}
