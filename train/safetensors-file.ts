// Safetensors files on disk (Node): the engine's reader and writer (engine/safetensors.ts, bytes
// only) over a file handle. Reads are positioned, so files larger than one buffer work; writes are
// atomic (train/atomic-file.ts: temporary file, fsync, rename, folder fsync), and every tensor is
// validated before any file is touched, so on any error an existing file is left untouched.
import { open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.js';
import {
  planSafetensors,
  readSafetensorsFrom,
  readSafetensorsHeaderFrom,
  type SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsSink,
  type SafetensorsSource,
  type TensorToWrite,
} from '../engine/safetensors.js';

/** A file handle as the engine's positioned byte source. */
export function fileSource(fh: FileHandle): SafetensorsSource {
  return {
    size: async () => (await fh.stat()).size,
    read: async (target, offset, length, position) => (await fh.read(target, offset, length, position)).bytesRead,
  };
}

/** A file handle as the engine's sequential sink (loops over short writes). */
export function fileSink(fh: FileHandle): SafetensorsSink {
  return {
    async write(bytes) {
      for (let done = 0; done < bytes.length;) done += (await fh.write(bytes, done, bytes.length - done)).bytesWritten;
    },
  };
}

/** Reads and validates only the header (a small positioned read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, 'r');
  try {
    return await readSafetensorsHeaderFrom(fileSource(fh), path);
  } finally {
    await fh.close();
  }
}

/** Reads a safetensors file tensor by tensor; `filter` selects which tensors to load (all by default). */
export async function readSafetensors(path: string, opts: { filter?: (name: string) => boolean } = {}): Promise<SafetensorsFile> {
  const fh = await open(path, 'r');
  try {
    return await readSafetensorsFrom(fileSource(fh), path, opts);
  } finally {
    await fh.close();
  }
}

/** Streams a safetensors file into an open handle (validated and planned before the first byte). */
export async function writeSafetensorsTo(fh: FileHandle, tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>, label = '<handle>'): Promise<void> {
  await planSafetensors(tensors, metadata, label).write(fileSink(fh));
}

/** Writes a safetensors file atomically; tensors in the given order, large ones in chunks. */
export async function writeSafetensors(path: string, tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>): Promise<void> {
  const plan = planSafetensors(tensors, metadata, path);
  await writeFileAtomic(path, (fh) => plan.write(fileSink(fh)));
}
