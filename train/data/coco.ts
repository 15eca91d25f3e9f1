// MS-COCO 2014: DIR/annotations/instances_{train,val}2014.json, images in DIR/{train,val}2014/.
// Labels are the set of category_ids annotated on an image, mapped to 0..79 in the order of the
// `categories` list; images without annotations stay in the set as all-negative.
import { join } from 'node:path';
import { Issues, readRequired } from './common.js';
import type { MultiLabelDataset, Sample } from './dataset.js';

type Scalar = string | number | boolean | null;
type Row = Record<string, Scalar>;

export async function readCoco(dir: string, issues: Issues): Promise<MultiLabelDataset> {
  let classes: string[] | undefined;
  const read = (folder: string): Sample[] => {
    const file = join(dir, 'annotations', `instances_${folder}.json`);
    const index = scanCoco(readRequired(file), file);
    checkCocoIndex(index, file);
    const names = index.categories.map((c) => String(c.name));
    if (classes && names.join('\n') !== classes.join('\n')) throw new Error(`${file}: categories differ from the train file's`);
    classes = names;
    const classOf = new Map(index.categories.map((c, i) => [c.id, i]));
    const images = new Map(index.images.map((im) => [im.id, { path: join(dir, folder, String(im.file_name)), labels: new Int8Array(names.length) }]));
    const bad = new Set<Sample>();
    for (const a of index.annotations) {
      const sample = images.get(a.image_id);
      const c = classOf.get(a.category_id);
      if (!sample) issues.report(`${file}: annotation ${a.id} refers to unknown image_id ${a.image_id}`);
      else if (c === undefined) {
        issues.report(`${sample.path}: category_id ${a.category_id} is not in the categories of ${file}`);
        bad.add(sample);
      } else sample.labels[c] = 1;
    }
    return [...images.values()].filter((s) => !bad.has(s));
  };
  const train = read('train2014');
  const val = read('val2014');
  return { name: 'coco2014', classes: classes!, train, val, hasDifficult: false };
}

/**
 * The checks whose absence made later messages misleading: the three lists exist, every image and
 * category has the fields the labels need, and no image or category id repeats.
 */
function checkCocoIndex(index: ReturnType<typeof scanCoco>, file: string): void {
  for (const key of ['images', 'annotations', 'categories'] as const) {
    if (!index.present.has(key)) throw new Error(`${file}: no "${key}" list (is this a COCO instances_*.json file?)`);
  }
  if (index.categories.length === 0) throw new Error(`${file}: the "categories" list is empty`);
  const unique = (key: 'images' | 'categories', need: string[]) => {
    const seen = new Map<Scalar, number>();
    index[key].forEach((r, i) => {
      for (const f of need) if (r[f] === undefined || r[f] === null || r[f] === '') throw new Error(`${file}: ${key}[${i}] has no "${f}"`);
      const j = seen.get(r.id);
      if (j !== undefined) throw new Error(`${file}: ${key === 'images' ? 'image' : 'category'} id ${JSON.stringify(r.id)} appears twice in "${key}" (entries ${j} and ${i})`);
      seen.set(r.id, i);
    });
  };
  unique('images', ['id', 'file_name']);
  unique('categories', ['id', 'name']);
  index.annotations.forEach((a, i) => {
    for (const f of ['image_id', 'category_id']) if (a[f] === undefined || a[f] === null) throw new Error(`${file}: annotations[${i}] has no "${f}"`);
  });
}

/**
 * The `images`, `annotations` and `categories` records of a COCO instances file, flat scalar fields
 * only. instances_train2014.json is ~330 MB, mostly segmentation polygons, and JSON.parse would build
 * a multi-GB object tree; this walks the bytes once and materialises only what the labels need.
 */
export function scanCoco(buf: Buffer, file: string): { images: Row[]; annotations: Row[]; categories: Row[]; present: Set<string> } {
  const out = { images: [] as Row[], annotations: [] as Row[], categories: [] as Row[], present: new Set<string>() };
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${file}: invalid JSON at byte ${i}: ${what}`);
  };
  const ws = () => {
    while (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09) i++;
  };
  const expect = (ch: string) => {
    ws();
    if (buf[i] !== ch.charCodeAt(0)) fail(`expected '${ch}'`);
    i++;
  };
  // Index just past the closing quote of the string starting at `start`.
  const stringEnd = (start: number): number => {
    let j = start + 1;
    for (;;) {
      j = buf.indexOf(0x22, j);
      if (j < 0) fail('unterminated string');
      let backslashes = 0;
      while (buf[j - 1 - backslashes] === 0x5c) backslashes++;
      if (backslashes % 2 === 0) return j + 1;
      j++;
    }
  };
  const isDelimiter = (c: number | undefined) => c === undefined || c === 0x2c || c === 0x7d || c === 0x5d || c <= 0x20;
  const scalar = (): Scalar => {
    ws();
    const start = i;
    if (buf[i] === 0x22) i = stringEnd(i);
    else while (!isDelimiter(buf[i])) i++;
    if (i === start) fail('expected a value');
    return JSON.parse(buf.toString('utf8', start, i)) as Scalar;
  };
  const skipValue = () => {
    ws();
    if (buf[i] !== 0x7b && buf[i] !== 0x5b) return void scalar();
    let depth = 0;
    do {
      const c = buf[i];
      if (c === undefined) fail('unexpected end of file');
      if (c === 0x22) i = stringEnd(i) - 1;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) depth--;
      i++;
    } while (depth > 0);
  };
  // Calls `each` once per member (object) or element (array); `each` consumes the value.
  const items = (open: string, close: string, each: (key: string) => void) => {
    expect(open);
    ws();
    if (buf[i] === close.charCodeAt(0)) return void i++;
    for (;;) {
      let key = '';
      if (open === '{') {
        key = String(scalar());
        expect(':');
      }
      each(key);
      ws();
      if (buf[i] !== 0x2c) return expect(close);
      i++;
    }
  };
  const row = (): Row => {
    const r: Row = {};
    items('{', '}', (key) => {
      ws();
      if (buf[i] === 0x7b || buf[i] === 0x5b) skipValue();
      else r[key] = scalar();
    });
    return r;
  };
  items('{', '}', (key) => {
    if (key === 'images' || key === 'annotations' || key === 'categories') {
      ws();
      if (buf[i] !== 0x5b) fail(`"${key}" is not a list`);
      out.present.add(key);
      items('[', ']', () => out[key].push(row()));
    }
    else skipValue();
  });
  return out;
}
