// The run folder (`--out`): one writer at a time, and never an old run overwritten by accident.
//
// - `RUN_FILES` are what a run writes; a folder holding any of them "holds a run".
// - `lockRunDir` creates `<dir>/.lock` holding the writer's pid (exclusive create). A lock whose pid
//   is no longer running (a killed run) is taken over with a note; a live one refuses, naming it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from './args.js';

export const RUN_FILES = ['config.json', 'metrics.jsonl', 'summary.json', 'last.safetensors', 'best.safetensors', 'curves.png'];
export const LOCK_FILE = '.lock';

/** The run files present in `dir` (empty when it holds no run). */
export function runFilesIn(dir: string): string[] {
  return RUN_FILES.filter((f) => existsSync(join(dir, f)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export interface RunLock {
  path: string;
  release(): Promise<void>;
}

/** Creates `dir` (naming it when that is impossible) and takes its lock. `note` receives the stale-lock message. */
export async function lockRunDir(dir: string, flag: string, note: (line: string) => void): Promise<RunLock> {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: exists and is not a folder`);
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`${flag} ${dir}: cannot create the folder (${err.code === 'EEXIST' || err.code === 'ENOTDIR' ? 'a file is in the way' : err.code ?? err.message})`);
  }
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      let released = false;
      return {
        path,
        release: async () => {
          if (released) return;
          released = true;
          // Only our own lock (a takeover by another process after we were presumed dead is theirs).
          const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
          if (owner === process.pid) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        const err = e as NodeJS.ErrnoException;
        throw new UsageError(`${flag} ${dir}: cannot create the lock file ${path} (${err.code ?? err.message})`);
      }
    }
    const text = readFileSync(path, 'utf8').trim();
    const pid = Number.parseInt(text, 10);
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) {
      throw new UsageError(
        `${flag} ${dir}: another run (pid ${pid}${pid === process.pid ? ', this process' : ''}) is writing there (lock ${path}); wait for it to finish or choose another folder`,
      );
    }
    note(`note: ${path}: taking over the stale lock of ${Number.isSafeInteger(pid) && pid > 0 ? `pid ${pid}, which is no longer running` : `unreadable content ${JSON.stringify(text.slice(0, 20))}`}`);
    await rm(path, { force: true });
  }
  throw new UsageError(`${flag} ${dir}: could not take the lock ${path} (another process keeps taking it)`);
}

/** Deletes the files of a previous run (for --overwrite), with the lock held. */
export async function clearRun(dir: string): Promise<void> {
  for (const f of RUN_FILES) await rm(join(dir, f), { force: true });
}
