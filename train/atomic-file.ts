// The one atomic file writer: everything goes to a temporary file beside the target (named
// `<target>.tmp-<pid>-<random hex>`), which is fsynced and renamed over the target, then the folder
// is fsynced so the rename itself survives a power cut. On any error the temporary file is removed
// and an existing target is left untouched; the error names the target. A crash (kill -9) may leave
// a temporary file behind: `isAtomicTemp` recognises them so the next run can remove them.
//
// Node only (train/): the engine parses and serialises bytes; files are written here.
import type { FileHandle } from 'node:fs/promises';

/** `<target>.tmp-<pid>` or `<target>.tmp-<pid>-<hex>`: the temporary names this writer uses (and older versions used). */
export const ATOMIC_TEMP = /^(.+)\.tmp-(\d+)(?:-[0-9a-f]+)?$/;

export function isAtomicTemp(name: string): boolean {
  return ATOMIC_TEMP.test(name);
}

/** The error with the path it concerns (Node's write/fsync errors, e.g. ENOSPC, name none). */
function withPath(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.message !== 'string' || err.message.includes(path) || err.name === 'SafetensorsError') return err;
  const reason = err.code === 'ENOSPC' ? 'no space left on the device' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.code === 'EROFS' ? 'read-only file system' : err.message;
  return Object.assign(new Error(`cannot write ${path}: ${reason}${err.code && !reason.includes(err.code) ? ` (${err.code})` : ''}`, { cause: e }), { code: err.code });
}

/**
 * Writes `path` atomically. `content` is the whole file, or a function that streams it into the
 * open temporary file.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array | ((fh: FileHandle) => Promise<void>)): Promise<void> {
  const { open, rename, rm } = await import('node:fs/promises');
  const { randomBytes } = await import('node:crypto');
  const { dirname } = await import('node:path');
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
    if (typeof content === 'function') await content(fh);
    else await fh.writeFile(content);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined); // the original error matters more
    await rm(tmp, { force: true }).catch(() => undefined);
    throw withPath(path, e);
  }
  // Make the rename itself durable. Windows cannot open a directory for fsync.
  if (process.platform !== 'win32') {
    try {
      const dir = await open(dirname(path), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (e) {
      throw withPath(dirname(path), e);
    }
  }
}
