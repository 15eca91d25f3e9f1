// ROIAlign (Mask R-CNN; torchvision.ops.roi_align semantics) on a backbone feature map (kernel:
// roi-align.wgsl). The boxes are always known on the CPU (a fixed grid, a JSON file, ground truth),
// so the bilinear sampling is planned there once per batch as a sparse matrix — for each output bin
// the feature-map pixels it reads and their weights — and its transpose for the backward pass. The
// GPU then only runs two fixed-order sparse sums: deterministic, no float atomics.
import { Tensor, isFloat } from '../engine/tensor.js';
import { record } from '../engine/autograd.js';
import { launch, grid1d, shapeStr } from '../engine/launch.js';

export interface RoiAlignOptions {
  /** Output bins per side (P×P). */
  pooled: number;
  /** Box coordinates × spatialScale = feature-map coordinates (1/stride). */
  spatialScale: number;
  /** Samples per bin per side; ≤ 0: adaptive ⌈roi side / P⌉ as torchvision's −1. */
  samplingRatio?: number;
  /** Pixel-centre alignment (shift by −0.5), torchvision's aligned=True. Default true. */
  aligned?: boolean;
}

/** A planned ROIAlign: CSR rows per output bin (forward) and per feature-map pixel (backward). */
export interface RoiPlan {
  batch: number;
  rois: number;
  height: number;
  width: number;
  pooled: number;
  fwd: { offsets: Uint32Array; index: Uint32Array; weight: Float32Array };
  bwd: { offsets: Uint32Array; index: Uint32Array; weight: Float32Array };
}

/**
 * Plan ROIAlign for `boxes` ([R × 5]: batch index, x0, y0, x1, y1 in input pixels) on a B×·×H×W map.
 * The weights are torchvision's roi_align_forward_kernel's: per bin, a grid of sampling points, each
 * bilinearly interpolated (points beyond [−1, H] or [−1, W] count zero, coordinates clamped at the
 * border), averaged over the points. Entries of one pixel in one bin are merged.
 */
export function planRoiAlign(boxes: ArrayLike<number>, batch: number, height: number, width: number, o: RoiAlignOptions): RoiPlan {
  const R = boxes.length / 5;
  if (!Number.isInteger(R)) throw new Error(`roiAlign: boxes must be [R, 5] (batch, x0, y0, x1, y1), got ${boxes.length} numbers`);
  const P = o.pooled;
  if (!Number.isInteger(P) || P < 1) throw new Error(`roiAlign: pooled size must be a positive integer, got ${P}`);
  const H = height;
  const W = width;
  const off = o.aligned === false ? 0 : 0.5;
  const rowsFwd: Map<number, number>[] = [];
  for (let r = 0; r < R; r++) {
    const b = boxes[r * 5];
    if (!Number.isInteger(b) || b < 0 || b >= batch) throw new Error(`roiAlign: box ${r} has batch index ${b}, outside [0, ${batch})`);
    const [x0, y0, x1, y1] = [1, 2, 3, 4].map((i) => boxes[r * 5 + i] * o.spatialScale - off);
    let rw = x1 - x0;
    let rh = y1 - y0;
    if (o.aligned === false) {
      rw = Math.max(rw, 1);
      rh = Math.max(rh, 1);
    }
    const bw = rw / P;
    const bh = rh / P;
    const sr = o.samplingRatio ?? 0;
    const gh = sr > 0 ? sr : Math.ceil(rh / P);
    const gw = sr > 0 ? sr : Math.ceil(rw / P);
    const count = Math.max(gh * gw, 1);
    for (let ph = 0; ph < P; ph++) {
      for (let pw = 0; pw < P; pw++) {
        const acc = new Map<number, number>();
        for (let iy = 0; iy < gh; iy++) {
          const yy = y0 + ph * bh + ((iy + 0.5) * bh) / gh;
          for (let ix = 0; ix < gw; ix++) {
            const xx = x0 + pw * bw + ((ix + 0.5) * bw) / gw;
            if (yy < -1 || yy > H || xx < -1 || xx > W) continue;
            let y = Math.max(yy, 0);
            let x = Math.max(xx, 0);
            let yl = Math.floor(y);
            let xl = Math.floor(x);
            let yh: number;
            let xh: number;
            if (yl >= H - 1) { yl = yh = H - 1; y = yl; } else yh = yl + 1;
            if (xl >= W - 1) { xl = xh = W - 1; x = xl; } else xh = xl + 1;
            const ly = y - yl;
            const lx = x - xl;
            const hy = 1 - ly;
            const hx = 1 - lx;
            const add = (yi: number, xi: number, w: number) => {
              if (w === 0) return;
              const pix = b * H * W + yi * W + xi;
              acc.set(pix, (acc.get(pix) ?? 0) + w / count);
            };
            add(yl, xl, hy * hx);
            add(yl, xh, hy * lx);
            add(yh, xl, ly * hx);
            add(yh, xh, ly * lx);
          }
        }
        rowsFwd.push(acc);
      }
    }
  }
  const fwd = toCsr(rowsFwd);
  // Transpose: for each pixel, the (bin row, weight) entries reading it, in ascending bin order.
  const rowsBwd: Map<number, number>[] = Array.from({ length: batch * H * W }, () => new Map());
  rowsFwd.forEach((m, row) => {
    for (const [pix, w] of m) rowsBwd[pix].set(row, w);
  });
  return { batch, rois: R, height: H, width: W, pooled: P, fwd, bwd: toCsr(rowsBwd) };
}

function toCsr(rows: Map<number, number>[]): RoiPlan['fwd'] {
  const offsets = new Uint32Array(rows.length + 1);
  rows.forEach((m, i) => (offsets[i + 1] = offsets[i] + m.size));
  const n = offsets[rows.length];
  const index = new Uint32Array(Math.max(n, 1));
  const weight = new Float32Array(Math.max(n, 1));
  rows.forEach((m, i) => {
    let k = offsets[i];
    for (const [j, w] of [...m].sort((a, b) => a[0] - b[0])) {
      index[k] = j;
      weight[k++] = w;
    }
  });
  return { offsets, index, weight };
}

/**
 * roi_align(feat, boxes, P): feat [B, C, H, W] → [R, C, P, P], the sampling planned by planRoiAlign
 * (or given as boxes and options). The gradient flows to feat; boxes are constants. feat may be
 * f16: the output and feat's gradient are then f16 too (the weighted sums are f32).
 */
export function roiAlign(feat: Tensor, planOrBoxes: RoiPlan | ArrayLike<number>, o?: RoiAlignOptions): Tensor {
  feat.assertAlive('roiAlign');
  if (!isFloat(feat.dtype) || feat.rank !== 4) throw new Error(`roiAlign: feature map must be f32 [B, C, H, W] (or f16), got ${feat.describe()}`);
  const [B, C, H, W] = feat.shape;
  let plan: RoiPlan;
  if ('fwd' in planOrBoxes) plan = planOrBoxes as RoiPlan;
  else {
    if (!o) throw new Error('roiAlign: options (pooled, spatialScale) are needed with raw boxes');
    plan = planRoiAlign(planOrBoxes, B, H, W, o);
  }
  if (plan.batch !== B || plan.height !== H || plan.width !== W) {
    throw new Error(`roiAlign: plan made for [${plan.batch}, ·, ${plan.height}, ${plan.width}], feature map is ${shapeStr(feat.shape)}`);
  }
  const P = plan.pooled;
  const ctx = `roiAlign ${shapeStr(feat.shape)} ${plan.rois} boxes → ${P}×${P}`;
  const out = Tensor.empty([plan.rois, C, P, P], feat.dtype, 'roi_align');
  const up = (c: RoiPlan['fwd']) => [Tensor.from(c.offsets, [c.offsets.length], 'u32'), Tensor.from(c.index, [c.index.length], 'u32'), Tensor.from(c.weight, [c.weight.length])];
  if (out.size > 0) {
    const [offs, idx, w] = up(plan.fwd);
    launch({ file: 'roi-align.wgsl', entry: 'forward', storage: { src: feat.dtype, dst: out.dtype }, args: [feat, offs, idx, w, out], params: [plan.rois * P * P, C, H * W, P * P], workgroups: grid1d(out.size), context: ctx });
    offs.release();
    idx.release();
    w.release();
  }
  return record(out, 'roi_align', [feat], (g) => {
    const dx = Tensor.empty(feat.shape, feat.dtype, 'roi_align dfeat');
    if (dx.size > 0) {
      const [offs, idx, w] = up(plan.bwd);
      launch({ file: 'roi-align.wgsl', entry: 'backward', storage: { src: g.dtype, dst: dx.dtype }, args: [g, offs, idx, w, dx], params: [B * H * W, C, H * W, P * P], workgroups: grid1d(dx.size), context: `${ctx} (backward)` });
      offs.release();
      idx.release();
      w.release();
    }
    return [dx];
  });
}
