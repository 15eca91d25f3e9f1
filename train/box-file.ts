// Box files for the region models' `-boxes` source (format in models/regions.ts): read, validated with
// errors naming the file and the entry, and normalised by each image's size (read from its header).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { BoxTable } from '../models/regions.js';

interface RawEntry {
  width?: number;
  height?: number;
  boxes: number[][];
}

/**
 * Read and validate a box file (see the module comment). `sizeOf(name)` gives an image's pixel size
 * for entries without width/height; an entry it does not know (not an image at hand) is left out.
 * Errors name the file and the entry.
 */
export async function readBoxFile(path: string, sizeOf: (name: string) => Promise<{ width: number; height: number } | undefined>): Promise<BoxTable> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`box file ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `not valid JSON (${(e as Error).message})`}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`box file ${path}: expected an object keyed by image file name`);
  const table: BoxTable = new Map();
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    const where = `box file ${path}: entry "${name}"`;
    let e: RawEntry;
    if (Array.isArray(v)) e = { boxes: v as number[][] };
    else if (typeof v === 'object' && v !== null && Array.isArray((v as RawEntry).boxes)) e = v as RawEntry;
    else throw new Error(`${where}: expected a list of [x0, y0, x1, y1] boxes or {width, height, boxes}`);
    const corners: number[][] = [];
    e.boxes.forEach((b, i) => {
      if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw new Error(`${where}: box ${i} must be [x0, y0, x1, y1] (4 finite numbers), got ${JSON.stringify(b)}`);
      }
      if (b[2] < b[0] || b[3] < b[1]) throw new Error(`${where}: box ${i} ${JSON.stringify(b)} has x1 < x0 or y1 < y0`);
      corners.push(b);
    });
    let { width, height } = e;
    if (width !== undefined || height !== undefined) {
      if (!(typeof width === 'number' && width > 0 && typeof height === 'number' && height > 0)) throw new Error(`${where}: width and height must be positive numbers`);
    } else {
      const s = await sizeOf(name);
      // Not one of the images at hand (e.g. a training image at evaluation): nothing reads it.
      if (!s) continue;
      ({ width, height } = s);
    }
    const boxes = corners.flatMap(([x0, y0, x1, y1]) => [x0 / width!, y0 / height!, x1 / width!, y1 / height!]);
    table.set(name, Float32Array.from(boxes));
  }
  return table;
}

/**
 * readBoxFile with image sizes read (sharp, header only) from the images among `paths` whose path or
 * base name is an entry's name.
 */
export async function loadBoxTable(file: string, paths: readonly string[]): Promise<BoxTable> {
  const byName = new Map<string, string>();
  for (const p of paths) {
    byName.set(p, p);
    byName.set(basename(p), p);
  }
  const { default: sharp } = await import('sharp');
  return readBoxFile(file, async (name) => {
    const p = byName.get(name);
    if (!p) return undefined;
    const m = await sharp(p).metadata();
    return m.width && m.height ? { width: m.width, height: m.height } : undefined;
  });
}
