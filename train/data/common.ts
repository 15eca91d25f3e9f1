// Helpers shared by the dataset readers.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Sample } from './dataset.js';

/**
 * Per-sample problems (missing file, unknown label, …). Without skipBad the first one is thrown,
 * so a bad dataset fails before training starts; with it the sample is dropped and the message kept
 * for one summary warning.
 */
export class Issues {
  readonly skipped: string[] = [];
  /** Likely mistakes that do not stop the run (a class seen once, a label with spaces); reported before training. */
  readonly warnings: string[] = [];
  constructor(private readonly skipBad: boolean) {}

  report(message: string): void {
    if (!this.skipBad) throw new Error(message);
    this.skipped.push(message);
  }

  warn(message: string): void {
    this.warnings.push(message);
  }
}

/** Per class: how many images carry it and where it was first seen (file or file:line). */
export type ClassCounts = Map<string, { images: number; first: string }>;

export function countClass(counts: ClassCounts, name: string, where: string): void {
  const c = counts.get(name);
  if (c) c.images++;
  else counts.set(name, { images: 1, first: where });
}

/**
 * Likely typos: a class carried by at most 2 images while the median class is carried by 50× as
 * many (e.g. "dgo" once among thousands of "dog"). Only for class lists read off the labels: a list
 * given in classes.txt (or VOC's own) is deliberate.
 */
export function warnRareClasses(counts: ClassCounts, issues: Issues): void {
  const n = [...counts.values()].map((c) => c.images).sort((a, b) => a - b);
  if (n.length < 2) return;
  const median = n[Math.floor(n.length / 2)];
  for (const [name, c] of counts) {
    if (c.images <= 2 && c.images * 50 <= median) {
      issues.warn(`class "${name}" appears in only ${c.images} image${c.images > 1 ? 's' : ''} (first at ${c.first}) while the median class appears in ${median}: a typo? (fix the label, or list the classes in classes.txt to keep it)`);
    }
  }
}

/** Warnings for a label with leading/trailing whitespace or inner spaces; returns it trimmed. */
export function checkLabelText(label: string, where: string, issues: Issues): string {
  const t = label.trim();
  if (t !== label && t !== '') issues.warn(`${where}: label ${JSON.stringify(label)} has leading/trailing whitespace (read as ${JSON.stringify(t)})`);
  if (/\s/.test(t)) issues.warn(`${where}: label ${JSON.stringify(t)} contains whitespace (labels are separated by ';' or '|'): a typo?`);
  return t;
}

/** Reads a file the layout requires; its absence is an error naming it. */
export function readRequired(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`missing ${path}`);
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Drops (or reports) samples whose image file does not exist: one readdir per folder, so cheap even for 100k images. */
export function keepExisting(samples: Sample[], issues: Issues): Sample[] {
  const listings = new Map<string, Set<string>>();
  const listing = (dir: string): Set<string> => {
    let names = listings.get(dir);
    if (!names) {
      try {
        names = new Set(readdirSync(dir));
      } catch {
        names = new Set();
      }
      listings.set(dir, names);
    }
    return names;
  };
  return samples.filter((s) => {
    if (listing(dirname(s.path)).has(basename(s.path))) return true;
    issues.report(`missing image ${s.path}`);
    return false;
  });
}

/** Datasets up to this many images get every image header checked before training starts. */
export const VALIDATE_LIMIT = 20_000;

/**
 * Drops (or reports) samples whose file is not a decodable image, reading only the headers (about a
 * millisecond each), so that a corrupt file stops the run before it starts rather than mid-epoch.
 */
export async function keepDecodable(samples: Sample[], issues: Issues): Promise<Sample[]> {
  const { default: sharp } = await import('sharp');
  const ok = new Array<boolean>(samples.length).fill(true);
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < samples.length; i = next++) {
      try {
        const m = await sharp(samples[i].path).metadata();
        if (!m.width || !m.height) throw new Error('no image size in the header');
      } catch (e) {
        ok[i] = false;
        failures[i] = `unreadable image ${samples[i].path}: ${(e as Error).message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  // Reported in dataset order, so the first error named is the same on every run.
  return samples.filter((_, i) => ok[i] || (issues.report(failures[i]), false));
}

/** A label vector of length `classes` with 1 at each index in `positives`. */
export function multiHot(classes: number, positives: Iterable<number>): Int8Array {
  const labels = new Int8Array(classes);
  for (const c of positives) labels[c] = 1;
  return labels;
}
