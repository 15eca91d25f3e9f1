#!/usr/bin/env node
// Writes the ground-truth boxes of a COCO-2014 or VOC2007 folder as a box file for the `*-boxes`
// region models (`webvig train --model gm-mlic-boxes --boxes OUT.json`): one entry per image file
// name, {"width": W, "height": H, "boxes": [[x0, y0, x1, y1], ...]} in pixels (COCO's [x, y, w, h]
// turned into corners; VOC's <bndbox>). Node built-ins only.
//   node scripts/boxes-from-annotations.mjs coco|voc DIR OUT.json
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [layout, dir, out] = process.argv.slice(2);
if (!['coco', 'voc'].includes(layout) || !dir || !out) {
  console.error('usage: boxes-from-annotations.mjs coco|voc DIR OUT.json');
  process.exit(2);
}
const table = {};
if (layout === 'coco') {
  for (const split of ['train2014', 'val2014']) {
    const f = join(dir, 'annotations', `instances_${split}.json`);
    if (!existsSync(f)) continue;
    const j = JSON.parse(readFileSync(f, 'utf8'));
    const byId = new Map(j.images.map((im) => [im.id, { width: im.width, height: im.height, boxes: [], name: im.file_name }]));
    for (const a of j.annotations) {
      const e = byId.get(a.image_id);
      if (!e || !Array.isArray(a.bbox) || a.bbox.length !== 4) {
        console.error(`${f}: annotation ${a.id}: no image ${a.image_id} or no [x, y, w, h] bbox`);
        process.exit(2);
      }
      const [x, y, w, h] = a.bbox;
      e.boxes.push([x, y, x + w, y + h]);
    }
    for (const e of byId.values()) table[e.name] = { width: e.width, height: e.height, boxes: e.boxes };
  }
} else {
  const ann = join(dir, 'Annotations');
  const num = (xml, tag, file) => {
    const m = new RegExp(`<${tag}>\\s*([-0-9.]+)\\s*</${tag}>`).exec(xml);
    if (!m) {
      console.error(`${file}: no <${tag}>`);
      process.exit(2);
    }
    return Number(m[1]);
  };
  for (const f of readdirSync(ann).filter((n) => n.endsWith('.xml')).sort()) {
    const path = join(ann, f);
    const xml = readFileSync(path, 'utf8');
    const name = /<filename>\s*([^<]+?)\s*<\/filename>/.exec(xml)?.[1] ?? f.replace(/\.xml$/, '.jpg');
    const size = /<size>([\s\S]*?)<\/size>/.exec(xml)?.[1];
    const boxes = [...xml.matchAll(/<bndbox>([\s\S]*?)<\/bndbox>/g)].map((m) => ['xmin', 'ymin', 'xmax', 'ymax'].map((t) => num(m[1], t, path)));
    table[name] = size ? { width: num(size, 'width', path), height: num(size, 'height', path), boxes } : boxes;
  }
}
writeFileSync(out, JSON.stringify(table));
console.log(`wrote boxes of ${Object.keys(table).length} images to ${out}`);
