// User datasets: `csv:FILE` (path,labels[,split]; labels separated by ';' or '|'; an optional header
// row naming the columns) or `jsonl:FILE` ({"path", "labels": [...], "split"?} per line). Paths are
// relative to the file's folder. Classes come from classes.txt beside the file when present, else
// the sorted unique label names. Without a split the 80/20 train/val split is a seeded hash of the path.
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Issues, multiHot, readRequired, checkLabelText, countClass, warnRareClasses, type ClassCounts } from './common.js';
import type { MultiLabelDataset, Sample } from './dataset.js';
import { hashString } from './rng.js';

interface Row {
  path: string;
  labels: string[];
  split: string;
  /** file:line, for messages. */
  where: string;
}

const VAL_FRACTION = 0.2;

export async function readCsv(file: string, issues: Issues, seed: number): Promise<MultiLabelDataset> {
  const lines = numberedLines(file);
  let columns = { path: 0, labels: 1, split: 2 };
  const header = lines[0] ? splitCsvLine(lines[0].text).map((h) => h.toLowerCase()) : [];
  if (header[0] === 'path') {
    columns = { path: 0, labels: header.indexOf('labels'), split: header.indexOf('split') };
    if (columns.labels < 0) throw new Error(`${file}: the header has no "labels" column`);
    lines.shift();
  }
  const rows = lines.map(({ text, where }) => {
    const cells = splitCsvLine(text);
    const labels = (cells[columns.labels] ?? '').split(/[;|]/).map((l) => checkLabelText(l, where, issues)).filter(Boolean);
    return { path: cells[columns.path], labels, split: cells[columns.split] ?? '', where };
  });
  return build(file, rows, issues, seed);
}

export async function readJsonl(file: string, issues: Issues, seed: number): Promise<MultiLabelDataset> {
  const rows = numberedLines(file).flatMap(({ text, where }): Row[] => {
    try {
      const r = JSON.parse(text) as { path?: unknown; labels?: unknown; split?: unknown };
      if (typeof r.path !== 'string' || !Array.isArray(r.labels)) throw new Error('expected {"path": string, "labels": [...]}');
      const labels = r.labels.map((l) => checkLabelText(String(l), where, issues)).filter(Boolean);
      return [{ path: r.path, labels, split: typeof r.split === 'string' ? r.split : '', where }];
    } catch (e) {
      issues.report(`${where}: ${(e as Error).message}`);
      return [];
    }
  });
  return build(file, rows, issues, seed);
}

function numberedLines(file: string): { text: string; where: string }[] {
  return readRequired(file)
    .toString('utf8')
    .split(/\r?\n/)
    .map((text, i) => ({ text: text.trim(), where: `${file}:${i + 1}` }))
    .filter((l) => l.text !== '');
}

/** One CSV record: comma-separated cells, double quotes around cells that contain commas ("" escapes a quote). */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted && ch === '"' && line[i + 1] === '"') cell += line[++i];
    else if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      cells.push(cell.trim());
      cell = '';
    } else cell += ch;
  }
  cells.push(cell.trim());
  return cells;
}

function build(file: string, rows: Row[], issues: Issues, seed: number): MultiLabelDataset {
  const dir = dirname(file);
  const classesFile = join(dir, 'classes.txt');
  const listed = existsSync(classesFile);
  const classes = listed
    ? readRequired(classesFile).toString('utf8').split(/\r?\n/).map((c) => c.trim()).filter(Boolean)
    : [...new Set(rows.flatMap((r) => r.labels))].sort();
  if (!listed) {
    const counts: ClassCounts = new Map();
    for (const r of rows) for (const l of new Set(r.labels)) countClass(counts, l, r.where);
    warnRareClasses(counts, issues);
  }
  const index = new Map(classes.map((c, i) => [c, i]));
  const train: Sample[] = [];
  const val: Sample[] = [];
  for (const r of rows) {
    const unknown = r.labels.filter((l) => !index.has(l));
    const split = r.split || (hashString(r.path, seed) / 2 ** 32 < VAL_FRACTION ? 'val' : 'train');
    const target = split === 'train' ? train : split === 'val' || split === 'test' ? val : undefined;
    if (!r.path) issues.report(`${r.where}: empty path`);
    else if (unknown.length > 0) issues.report(`${r.where}: label(s) ${unknown.join(', ')} not in ${classesFile}`);
    else if (!target) issues.report(`${r.where}: split must be train, val or test, not "${r.split}"`);
    else target.push({ path: resolve(dir, r.path), labels: multiHot(classes.length, r.labels.map((l) => index.get(l)!)) });
  }
  return { name: basename(file, extname(file)), classes, train, val, hasDifficult: false };
}
