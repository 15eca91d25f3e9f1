// Pascal VOC2007: Annotations/*.xml, ImageSets/Main/{trainval,test}.txt, JPEGImages/. Train on
// trainval, evaluate on test. A class seen only on objects marked difficult is -1 (ignored).
// Custom datasets in the same layout bring their own class names (see vocClasses).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Issues, readRequired, countClass, warnRareClasses, type ClassCounts } from './common.js';
import type { MultiLabelDataset, Sample } from './dataset.js';

export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

interface VocObject {
  name: string;
  difficult: boolean;
}

/**
 * The class list: the 20 VOC classes in their standard order when every object name is one of
 * them (VOC2007 itself), else `classes.txt` beside ImageSets when present (one name per line), else
 * the distinct names in sorted order (a custom dataset in the VOC layout).
 */
function vocClasses(base: string, names: Set<string>): { classes: string[]; fixed: boolean } {
  if ([...names].every((n) => VOC_CLASSES.includes(n))) return { classes: VOC_CLASSES, fixed: true };
  const listFile = join(base, 'classes.txt');
  if (existsSync(listFile)) {
    return { classes: readRequired(listFile).toString('utf8').split(/\r?\n/).map((l) => l.trim()).filter(Boolean), fixed: true };
  }
  return { classes: [...names].sort(), fixed: false };
}

export async function readVoc(dir: string, issues: Issues): Promise<MultiLabelDataset> {
  // Accept the VOC2007 folder itself or a folder holding it (as the tarballs unpack).
  const base = [dir, join(dir, 'VOC2007'), join(dir, 'VOCdevkit', 'VOC2007')].find((d) => existsSync(join(d, 'ImageSets', 'Main'))) ?? dir;
  const read = (split: string) => {
    const ids = readRequired(join(base, 'ImageSets', 'Main', `${split}.txt`)).toString('utf8').split(/\s+/).filter(Boolean);
    return ids.flatMap((id) => {
      const file = join(base, 'Annotations', `${id}.xml`);
      try {
        const xml = readRequired(file).toString('utf8');
        return [{ id, file, objects: parseVocObjects(xml, file), image: imagePath(base, id, xml) }];
      } catch (e) {
        issues.report((e as Error).message);
        return [];
      }
    });
  };
  const splits = { train: read('trainval'), val: read('test') };
  const { classes, fixed } = vocClasses(base, new Set([...splits.train, ...splits.val].flatMap((a) => a.objects.map((o) => o.name))));
  if (!fixed) {
    const counts: ClassCounts = new Map();
    for (const a of [...splits.train, ...splits.val]) for (const name of new Set(a.objects.map((o) => o.name))) countClass(counts, name, a.file);
    warnRareClasses(counts, issues);
  }
  const toSamples = (list: typeof splits.train): Sample[] =>
    list.flatMap((a) => {
      try {
        return [{ path: a.image, labels: vocLabels(a.objects, classes, a.file) }];
      } catch (e) {
        issues.report((e as Error).message);
        return [];
      }
    });
  const train = toSamples(splits.train);
  const val = toSamples(splits.val);
  const hasDifficult = [...train, ...val].some((s) => s.labels.includes(-1));
  return { name: 'voc2007', classes, train, val, valIsTest: true, hasDifficult };
}

/** JPEGImages/<filename> from the annotation when that file exists, else <id>.jpg (or .png). */
function imagePath(base: string, id: string, xml: string): string {
  const named = /<filename>\s*([^<]*?)\s*<\/filename>/.exec(xml)?.[1];
  const candidates = [named, `${id}.jpg`, `${id}.png`, `${id}.jpeg`].filter((f): f is string => !!f).map((f) => join(base, 'JPEGImages', f));
  return candidates.find((p) => existsSync(p)) ?? join(base, 'JPEGImages', `${id}.jpg`);
}

/**
 * Checks that an annotation is well-formed XML with an <annotation> root: not empty, every tag
 * closed by its own end tag, nothing truncated. Throws naming the file and the first fault.
 */
export function checkVocXml(xml: string, file: string): void {
  if (xml.trim() === '') throw new Error(`${file}: empty annotation file`);
  const stack: string[] = [];
  let root: string | undefined;
  let rest = '';
  let last = 0;
  const line = (at: number) => xml.slice(0, at).split('\n').length;
  for (const m of xml.matchAll(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<[?!][^>]*>|<(\/?)([A-Za-z_][\w.:-]*)(?:\s+[^<>]*?)?(\/?)>/g)) {
    rest += xml.slice(last, m.index);
    last = m.index + m[0].length;
    const [, close, name, selfClosing] = m;
    if (name === undefined) continue; // declaration, comment, CDATA
    if (close) {
      const open = stack.pop();
      if (open !== name) {
        throw new Error(`${file}: malformed XML at line ${line(m.index)}: </${name}> ${open ? `closes <${open}>` : 'has no opening tag'}`);
      }
    } else {
      if (stack.length === 0) {
        if (root !== undefined) throw new Error(`${file}: malformed XML at line ${line(m.index)}: a second root element <${name}> after </${root}>`);
        root = name;
      }
      if (!selfClosing) stack.push(name);
    }
  }
  rest += xml.slice(last);
  const stray = rest.indexOf('<');
  if (stray >= 0) throw new Error(`${file}: malformed XML: an unterminated tag "${rest.slice(stray, stray + 20).trim()}" (truncated file?)`);
  if (stack.length > 0) throw new Error(`${file}: malformed XML: <${stack[stack.length - 1]}> is never closed (truncated file?)`);
  if (root !== 'annotation') throw new Error(`${file}: not a VOC annotation: the root element is ${root ? `<${root}>` : 'missing'}, expected <annotation>`);
}

/** The objects of one annotation file (the first <name> of an object is its class, not a part's). */
export function parseVocObjects(xml: string, file = '<annotation>'): VocObject[] {
  checkVocXml(xml, file);
  return [...xml.matchAll(/<object>([\s\S]*?)<\/object>/g)].map(([, body], i) => {
    const name = /<name>\s*([^<]*?)\s*<\/name>/.exec(body)?.[1] ?? '';
    if (name === '') throw new Error(`${file}: object ${i + 1} has no <name> (its class)`);
    return { name, difficult: /<difficult>\s*1\s*<\/difficult>/.test(body) };
  });
}

/** Label vector: 1 if any non-difficult object of the class, else -1 if only difficult ones. */
export function vocLabels(objects: VocObject[], classes: string[], file: string): Int8Array {
  const labels = new Int8Array(classes.length);
  for (const o of objects) {
    const c = classes.indexOf(o.name);
    if (c < 0) throw new Error(`${file}: unknown class "${o.name}" (classes: ${classes.join(', ')})`);
    if (!o.difficult) labels[c] = 1;
    else if (labels[c] === 0) labels[c] = -1;
  }
  return labels;
}
