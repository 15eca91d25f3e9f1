// Pascal VOC2007: Annotations/*.xml, ImageSets/Main/{trainval,test}.txt, JPEGImages/. Train on
// trainval, evaluate on test. A class seen only on objects marked difficult is -1 (ignored).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Issues, readRequired } from './common.js';
import type { MultiLabelDataset, Sample } from './dataset.js';

export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

export async function readVoc(dir: string, issues: Issues): Promise<MultiLabelDataset> {
  // Accept the VOC2007 folder itself or a folder holding it (as the tarballs unpack).
  const base = [dir, join(dir, 'VOC2007'), join(dir, 'VOCdevkit', 'VOC2007')].find((d) => existsSync(join(d, 'ImageSets', 'Main'))) ?? dir;
  const read = (split: string): Sample[] => {
    const ids = readRequired(join(base, 'ImageSets', 'Main', `${split}.txt`)).toString('utf8').split(/\s+/).filter(Boolean);
    return ids.flatMap((id) => {
      const xml = join(base, 'Annotations', `${id}.xml`);
      try {
        return [{ path: join(base, 'JPEGImages', `${id}.jpg`), labels: parseVocXml(readRequired(xml).toString('utf8'), xml) }];
      } catch (e) {
        issues.report((e as Error).message);
        return [];
      }
    });
  };
  const train = read('trainval');
  const val = read('test');
  const hasDifficult = [...train, ...val].some((s) => s.labels.includes(-1));
  return { name: 'voc2007', classes: VOC_CLASSES, train, val, valIsTest: true, hasDifficult };
}

/** Label vector of one annotation file: 1 if any non-difficult object of the class, else -1 if only difficult ones. */
export function parseVocXml(xml: string, file: string): Int8Array {
  const labels = new Int8Array(VOC_CLASSES.length);
  // Objects hold their own <name> before any <part><name>, so the first <name> is the class.
  for (const [, body] of xml.matchAll(/<object>([\s\S]*?)<\/object>/g)) {
    const name = /<name>\s*([^<]*?)\s*<\/name>/.exec(body)?.[1] ?? '';
    const c = VOC_CLASSES.indexOf(name);
    if (c < 0) throw new Error(`${file}: unknown class "${name}"`);
    const difficult = /<difficult>\s*1\s*<\/difficult>/.test(body);
    if (!difficult) labels[c] = 1;
    else if (labels[c] === 0) labels[c] = -1;
  }
  return labels;
}
