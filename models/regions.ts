// What the region-based multi-label models (IA-GCN, GM-MLIC) share: the trunk (any ViG/GKGNet
// backbone of ours), the pluggable instance source (feature-map cells, a fixed multi-scale grid of
// boxes, or boxes per image from a JSON file), the box file format and its validation, the fixed
// graphs they pass messages over, and small layers (LayerNorm, the ML-SGM-style MLP, L2 normalise).
//
// Box file (`--boxes FILE`, for the `*-boxes` models): a JSON object keyed by image file name (the
// base name, or the path relative to the data folder) whose value is either a list of boxes
// [[x0, y0, x1, y1], ...] in pixels of the original image (its size is then read from the image
// header), or `{ "width": W, "height": H, "boxes": [[x0, y0, x1, y1], ...] }`. Any detector's
// output fits, as do the COCO / VOC ground-truth boxes (`scripts/boxes-from-annotations.mjs`).
// Each image gets exactly `maxBoxes` instances: its first maxBoxes boxes (in file order, so sort
// by score first), padded with the whole-image box; an image without an entry gets the whole image.
import { Tensor, F, device } from '../kernels/index.js';
import { FixedGraph } from '../kernels/graph.js';
import { Layer, Linear, parameterTensor, uniform } from './layers.js';
import { captured } from './module.js';
import { VigTrunk } from './pyramid-vig.js';
import { GkgnetBackbone } from './gkgnet.js';
import { tinyGkgnetConfig } from './factory.js';
import { gkgnetConfig } from './gkgnet.js';
import { VIG_VARIANTS } from './pyramid-vig.js';

import { type RegionTrunkName } from './region-names.js';
export * from './region-names.js';

// ------------------------------------------------------------------ trunk

/**
 * The backbone: a Pyramid ViG trunk (stem, pos_embed, blocks) or GKGNet's backbone (its label stream
 * runs too; only the patch map is used). Child name `backbone`, so `--pretrained` finds the trunk.
 */
export function buildTrunk(t: RegionTrunkName, size: number, numLabels: number, dropPath: number): VigTrunk {
  if (t === '' ) return new VigTrunk({ ...tinyGkgnetConfig(size, numLabels, dropPath) });
  if (t === 'gkgnet-tiny') return new GkgnetBackbone(tinyGkgnetConfig(size, numLabels, dropPath));
  if (t.startsWith('gkgnet-')) return new GkgnetBackbone(gkgnetConfig(t.slice(7) as 't' | 's' | 'b', size, numLabels, { dropPath }));
  return new VigTrunk({ ...VIG_VARIANTS[t.slice(4)], size, k: 9, groups: 1, reduceRatios: [4, 2, 1, 1], dropPath, relativePos: true });
}

/** The trunk's final feature map B×C3×size/32×size/32. */
export function trunkFeatures(trunk: VigTrunk, img: Tensor): Tensor {
  if (trunk instanceof GkgnetBackbone) return trunk.forward(img).patches;
  let x = trunk.embed(img);
  for (const l of trunk.backbone.layers) x = l.call(x);
  return x;
}

// ------------------------------------------------------------------ instance sources

/** Normalised boxes (x0, y0, x1, y1 in [0, 1] of the image) per image path. */
export type BoxTable = Map<string, Float32Array>;

/** The fixed grid: the whole image, then 2×2 and 3×3 tilings (14 boxes), normalised. */
export function gridBoxes(): Float32Array {
  const out: number[] = [];
  for (const n of [1, 2, 3]) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out.push(j / n, i / n, (j + 1) / n, (i + 1) / n);
  return Float32Array.from(out);
}

/** The last segment of a path (either separator), without Node's path module. */
export function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/** An image's entry: by path, by base name. */
export function boxesFor(table: BoxTable, path: string): Float32Array | undefined {
  return table.get(path) ?? table.get(baseName(path));
}

/**
 * Boxes [B·R × 5] (batch index, x0, y0, x1, y1 in input pixels of a size×size image) for a batch:
 * `grid` boxes for every image, or each image's file boxes (first R, padded with the whole image).
 */
export function batchBoxes(source: 'grid' | 'boxes', B: number, size: number, R: number, table?: BoxTable, paths?: readonly string[]): Float32Array {
  const out = new Float32Array(B * R * 5);
  const grid = gridBoxes();
  // Each batch's boxes reach the GPU as a plan made on the CPU (F.roiAlign): a recorded step would
  // replay the first batch's, so a step with per-image boxes always runs the normal way.
  if (source === 'boxes') device().recorder?.abort('per-image boxes are planned on the CPU for each batch');
  for (let b = 0; b < B; b++) {
    let boxes: Float32Array;
    if (source === 'grid') boxes = grid;
    else {
      if (!paths || paths.length !== B) throw new Error(`box source: ${paths ? paths.length : 'no'} image paths for a batch of ${B} (call setImages first)`);
      boxes = (table && boxesFor(table, paths[b])) ?? new Float32Array(0);
    }
    for (let r = 0; r < R; r++) {
      const o = (b * R + r) * 5;
      out[o] = b;
      if (r * 4 < boxes.length) for (let k = 0; k < 4; k++) out[o + 1 + k] = boxes[r * 4 + k] * size;
      else out.set([0, 0, size, size], o + 1);
    }
  }
  return out;
}

// ------------------------------------------------------------------ graphs

/** 4-neighbour grid graph over h×w cells, both directions (ML-SGM's get_adjacent_cells order). */
export function gridGraph(h: number, w: number, name = 'instances'): FixedGraph {
  const s: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      for (const [di, dj] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        const [a, b] = [i + di, j + dj];
        if (a >= 0 && a < h && b >= 0 && b < w) {
          s.push(i * w + j);
          d.push(a * w + b);
        }
      }
  return new FixedGraph(Uint32Array.from(s), Uint32Array.from(d), h * w, h * w, name);
}

/** Every ordered pair (i, j) over n nodes, with or without self loops. */
export function completeGraph(n: number, selfLoops: boolean, name: string): FixedGraph {
  const s: number[] = [];
  const d: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (selfLoops || i !== j) {
    s.push(i);
    d.push(j);
  }
  if (s.length === 0) { s.push(0); d.push(0); }
  return new FixedGraph(Uint32Array.from(s), Uint32Array.from(d), n, n, name);
}

/** Every instance → every label, edge n·S + s (so edge features reshape to [B, N, S, ·]), and its reverse (same edge order). */
export function assignmentGraphs(n: number, S: number): { forward: FixedGraph; reverse: FixedGraph } {
  const s = new Uint32Array(n * S);
  const d = new Uint32Array(n * S);
  for (let i = 0; i < n; i++) for (let j = 0; j < S; j++) {
    s[i * S + j] = i;
    d[i * S + j] = j;
  }
  return { forward: new FixedGraph(s, d, n, S, 'assignment'), reverse: new FixedGraph(d, s, S, n, 'assignment (label → instance)') };
}

// ------------------------------------------------------------------ layers

/** nn.LayerNorm over the last axis (eps 1e-5). */
export class LayerNorm extends Layer {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.addParam('weight', parameterTensor([dim], { value: 1 }));
    this.bias = this.addParam('bias', parameterTensor([dim], { value: 0 }));
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.weight, this.bias, { eps: this.eps });
  }
  /** call(relu(x)), the ReLU applied inside the LayerNorm's own passes. */
  callRelu(x: Tensor): Tensor {
    return captured(this, F.layerNorm(x, this.weight, this.bias, { eps: this.eps, relu: true }));
  }
}

/** x / max(‖x‖₂, 1e-12) over the last axis (F.normalize), in f32 as autocast runs it (x·x of an f16 x ≥ 256 would overflow). */
export function l2Normalize(x: Tensor): Tensor {
  const xf = F.asF32(x);
  return F.mul(xf, F.rsqrt(F.maximum(F.sum(F.mul(xf, xf), -1, true), F.full([1], 1e-24))));
}

/**
 * ML-SGM's MLP: Linear → ReLU → LayerNorm → Linear → ReLU → LayerNorm. The first Linear may be split
 * over a fixed graph (`forwardEdges`): W·[xs[src]; xd[dst]; e] + b computed as (Ws·xs)[src] +
 * (Wd·xd)[dst] + We·e + b, the node products once per node (kernels/graph.ts edgeGather).
 */
export class GraphMlp extends Layer {
  readonly w1: Tensor;
  readonly b1: Tensor;
  readonly w1Dst: Tensor | null;
  readonly w1Edge: Tensor | null;
  readonly ln1: LayerNorm;
  readonly fc2: Linear;
  readonly ln2: LayerNorm;
  /** Input widths: the plain (or source-node) input, and the optional destination-node and edge parts. */
  constructor(readonly inSrc: number, readonly inDst: number, readonly inEdge: number, hidden: number, out: number) {
    super();
    // PyTorch's Linear init over the whole fan-in: the split layer is one nn.Linear on the concatenation.
    const bound = 1 / Math.sqrt(inSrc + inDst + inEdge);
    this.w1 = this.addParam('fc1.weight', uniform([hidden, inSrc], bound));
    this.b1 = this.addParam('fc1.bias', uniform([hidden], bound));
    this.w1Dst = inDst ? this.addParam('fc1.weight_dst', uniform([hidden, inDst], bound)) : null;
    this.w1Edge = inEdge ? this.addParam('fc1.weight_edge', uniform([hidden, inEdge], bound)) : null;
    this.ln1 = this.addChild('ln1', new LayerNorm(hidden));
    this.fc2 = this.addChild('fc2', new Linear(hidden, out));
    this.ln2 = this.addChild('ln2', new LayerNorm(out));
  }
  private lin(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
    const lead = x.shape.slice(0, -1);
    const y = F.matmul(F.reshape(x, [-1, x.shape[x.rank - 1]]), w, { transB: true, ...(bias ? { bias, biasMode: 'col' as const } : {}) });
    return F.reshape(y, [...lead, w.shape[0]]);
  }
  private tail(h: Tensor): Tensor {
    return this.ln2.callRelu(this.fc2.call(this.ln1.callRelu(h)));
  }
  /** Plain MLP on x [..., inSrc]. */
  forward(x: Tensor): Tensor {
    return this.tail(this.lin(x, this.w1, this.b1));
  }
  /** Per-edge MLP on [xs[src]; xd[dst]; e] over graph g: xs [B, Ns, ·], xd [B, Nd, ·], e [B, E, ·] → [B, E, out]. */
  forwardEdges(g: FixedGraph, xs: Tensor, xd: Tensor | null, e: Tensor | null): Tensor {
    if (!!xd !== !!this.w1Dst || !!e !== !!this.w1Edge) throw new Error(`GraphMlp ${this.path}: inputs do not match its parts (dst ${this.inDst}, edge ${this.inEdge})`);
    const hs = this.lin(xs, this.w1, this.b1);
    const hd = xd ? this.lin(xd, this.w1Dst!) : null;
    const he = e ? this.lin(e, this.w1Edge!) : null;
    return this.tail(F.edgeGather(g, hs, hd, he));
  }
}
