// Parity from a fixture file (Node): read with train/safetensors-file.ts, run by parity.ts (which a
// page also bundles, with fetched bytes: parityBytes).
import type { SafetensorsFile } from '../../engine/safetensors.js';
import { readSafetensors } from '../safetensors-file.js';
import { FixtureError, parityParsed, type FileReport } from './parity.js';

/** Run one fixture file (any type). */
export async function parityFile(path: string): Promise<FileReport[]> {
  let file: SafetensorsFile;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    throw new FixtureError((e as Error).message);
  }
  return parityParsed(path, file);
}
