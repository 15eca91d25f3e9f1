// Label embeddings from files (Node): the GloVe tables shipped in models/label-embeddings/ and
// user files given to the ML-GCN head. The choice itself (models/ml-gcn.ts) reads no file.
import { readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from './safetensors-file.js';
import { labelEmbeddingsFromTables, type DefaultLabelEmbeddings, type GloveTable, type GloveTableData, type LabelEmbeddings } from '../models/ml-gcn.js';

/**
 * Label embeddings from a file: safetensors (tensor `embeddings`, or the only tensor, [S, d]) or JSON
 * (`{"classes": [...], "vectors": [[...]]}` or `{ "<class>": [...], ... }`), in the dataset's class order.
 */
export async function readLabelEmbeddings(path: string, classes: string[]): Promise<LabelEmbeddings> {
  const S = classes.length;
  let rows: number[][];
  if (path.endsWith('.safetensors')) {
    const f = await readSafetensors(path);
    const t = f.tensors.get('embeddings') ?? (f.tensors.size === 1 ? [...f.tensors.values()][0] : undefined);
    if (!t || t.shape.length !== 2 || t.shape[0] !== S) throw new Error(`${path}: expected a tensor "embeddings" of shape [${S}, d]`);
    return { kind: 'given', vectors: Float32Array.from(t.data), dim: t.shape[1] };
  }
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  if (Array.isArray(json.vectors)) {
    const names = json.classes as string[] | undefined;
    rows = classes.map((c, i) => (json.vectors as number[][])[names ? names.indexOf(c) : i]);
  } else rows = classes.map((c) => json[c] as number[]);
  const dim = rows[0]?.length ?? 0;
  rows.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== dim || dim === 0) throw new Error(`${path}: no ${dim || ''}-dim vector for class "${classes[i]}"`);
  });
  return { kind: 'given', vectors: Float32Array.from(rows.flat()), dim };
}

const gloveCache = new Map<GloveTable, GloveTableData>();

/**
 * A shipped table, `{classes, vectors}`, from models/label-embeddings/ (the build copies it to
 * dist/models/label-embeddings/; from dist/ without the copy it is read from the source tree).
 */
export function gloveTable(name: GloveTable): GloveTableData {
  let t = gloveCache.get(name);
  if (t) return t;
  const file = `label-embeddings/${name}-glove-300.json`;
  const candidates = [new URL(`../models/${file}`, import.meta.url), new URL(`../../models/${file}`, import.meta.url)];
  const url = candidates.find((u) => existsSync(u));
  if (!url) throw new Error(`the shipped label embeddings ${file} are missing (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
  t = JSON.parse(readFileSync(url, 'utf8')) as GloveTableData;
  gloveCache.set(name, t);
  return t;
}

/** The default embeddings for a dataset's classes with the shipped GloVe tables (see labelEmbeddingsFromTables). */
export function defaultLabelEmbeddings(classes: readonly string[]): DefaultLabelEmbeddings {
  return labelEmbeddingsFromTables(classes, gloveTable);
}
