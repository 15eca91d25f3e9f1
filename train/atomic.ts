// Small output files (config, summary, curves) written whole or not at all: a temporary file
// beside the target, then a rename, so a reader or a crash never sees half a file.
import { rename, writeFile } from 'node:fs/promises';

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
