// curves.png: training loss and validation mAP per epoch. A Vega-Lite spec compiled by vega-lite,
// rendered headless to SVG by vega, rasterised by sharp.
import sharp from 'sharp';
import { writeFileAtomic } from './atomic.js';
import type { TopLevelSpec } from 'vega-lite';

export interface CurveRow {
  epoch: number;
  trainLoss: number;
  valMap: number;
}

/** Writes a two-panel PNG (loss | mAP against epoch) atomically: temp file, then rename. */
export async function renderCurves(rows: CurveRow[], outPng: string, title = 'Training curves'): Promise<void> {
  // Imported here so commands that never plot do not pay for loading vega.
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  // Missing values (NaN, e.g. no evaluation that epoch) become gaps rather than breaking the scale.
  const values = rows.map((r) => ({
    epoch: r.epoch,
    trainLoss: Number.isFinite(r.trainLoss) ? r.trainLoss : null,
    valMap: Number.isFinite(r.valMap) ? r.valMap : null,
  }));
  const panel = (field: string, label: string, color: string) => ({
    width: 360,
    height: 240,
    mark: { type: 'line' as const, color, point: { filled: true, color } },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field, type: 'quantitative' as const, title: label, scale: { zero: false } },
    },
  });
  const spec: TopLevelSpec = {
    title: { text: title, fontSize: 16 },
    data: { values },
    hconcat: [panel('trainLoss', 'train loss', '#d62728'), panel('valMap', 'val mAP', '#1f77b4')],
    config: { background: 'white', font: 'DejaVu Sans, Arial, sans-serif' },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG(2);
    await writeFileAtomic(outPng, await sharp(Buffer.from(svg)).png().toBuffer());
  } finally {
    view.finalize();
  }
}
