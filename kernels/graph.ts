// Message passing over a fixed graph (kernel: graph.wgsl), for the region models' Graph Network
// blocks: gather node features onto the edges of a fixed edge list (the first, split layer of a
// per-edge MLP on [src, dst, edge]: W·[xs; xd; e] = (Ws·xs)[src] + (Wd·xd)[dst] + We·e, so the
// node-side products are computed once per node, not once per edge) and reduce edge features onto
// nodes (scatter-sum / scatter-mean). The edge list is fixed for the life of the model, so its CSR
// lists (edges grouped by source and by destination, ascending) are built once on the CPU; every
// reduction sums in that fixed order (no float atomics, bitwise reproducible). The kernels read f32
// (their V prelude is f32 vectors); f16 features go through f32 copies (not on GKGNet's path).
import { Tensor, type DType } from '../engine/tensor.js';
import { keep } from '../engine/context.js';
import { record } from '../engine/autograd.js';
import { launch, grid1d, shapeStr, unusedOperand } from '../engine/launch.js';
import { composedSource, kernelSource } from '../engine/kernel.js';
import { vectorPrelude, widthOf } from './vector-prelude.js';
import { asF32, cast } from './elementwise.js';

interface Csr {
  offsets: Tensor;
  list: Tensor;
  degree: Uint32Array;
}

/**
 * A fixed directed edge list from `numSrc` source-side nodes to `numDst` destination-side nodes
 * (the same node set for a graph within one kind of node, two sets for a bipartite one). Its GPU
 * tensors are kept until release().
 */
export class FixedGraph {
  readonly edges: number;
  readonly src: Tensor;
  readonly dst: Tensor;
  readonly bySrc: Csr;
  readonly byDst: Csr;
  constructor(readonly srcIndex: Uint32Array, readonly dstIndex: Uint32Array, readonly numSrc: number, readonly numDst: number, readonly name = 'graph') {
    if (srcIndex.length !== dstIndex.length) throw new Error(`FixedGraph ${name}: ${srcIndex.length} sources but ${dstIndex.length} destinations`);
    if (srcIndex.length === 0) throw new Error(`FixedGraph ${name}: no edges`);
    srcIndex.forEach((s, e) => {
      if (s >= numSrc || dstIndex[e] >= numDst) throw new Error(`FixedGraph ${name}: edge ${e} (${s} → ${dstIndex[e]}) is outside ${numSrc} × ${numDst} nodes`);
    });
    this.edges = srcIndex.length;
    this.src = keep(Tensor.from(srcIndex, [this.edges], 'u32'));
    this.dst = keep(Tensor.from(dstIndex, [this.edges], 'u32'));
    this.bySrc = csr(srcIndex, numSrc);
    this.byDst = csr(dstIndex, numDst);
  }
  release(): void {
    for (const t of [this.src, this.dst, this.bySrc.offsets, this.bySrc.list, this.byDst.offsets, this.byDst.list]) t.release();
  }
}

function csr(node: Uint32Array, n: number): Csr {
  const degree = new Uint32Array(n);
  for (const v of node) degree[v]++;
  const offsets = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + degree[i];
  const cursor = offsets.slice(0, n);
  const list = new Uint32Array(node.length);
  node.forEach((v, e) => (list[cursor[v]++] = e));
  return { offsets: keep(Tensor.from(offsets, [n + 1], 'u32')), list: keep(Tensor.from(list, [node.length], 'u32')), degree };
}

/** graph.wgsl walking C channels as V's, and C in V's. */
function kernelFor(C: number): { code: string; cv: number } {
  const width = widthOf(C);
  return { code: composedSource(`graph ${width}`, () => vectorPrelude(width) + kernelSource('graph.wgsl')), cv: C / width };
}

/**
 * `f` on f32 copies of `xs` (graph.wgsl reads f32), its result cast to `dtype`. The copies and the
 * f32 result are released at once when no gradient is recorded, else with the enclosing scope.
 */
function viaF32(dtype: DType, xs: (Tensor | null)[], f: (xs: (Tensor | null)[]) => Tensor): Tensor {
  const copies = xs.map((t) => t && asF32(t));
  const out32 = f(copies);
  const out = cast(out32, dtype);
  if (!out.node) for (const t of new Set([...copies, out32])) if (t && t !== out && !xs.includes(t)) t.release();
  return out;
}

function check3(op: string, t: Tensor, B: number, n: number, C: number, what: string): void {
  t.assertAlive(op);
  if (t.dtype !== 'f32' || t.rank !== 3 || t.shape[0] !== B || t.shape[1] !== n || t.shape[2] !== C) {
    throw new Error(`${op}: ${what} must be f32 [${B}, ${n}, ${C}] (or all f16), got ${t.describe()}`);
  }
}

/**
 * out[b, e, :] = xs[b, src[e], :] + xd[b, dst[e], :] + xe[b, e, :] (xd, xe optional): xs [B, Ns, C],
 * xd [B, Nd, C], xe [B, E, C] → [B, E, C]. Gradients: scatter-sums over the CSR lists, and xe's as is.
 * With every input f16 the output is f16 (computed in f32).
 */
export function edgeGather(g: FixedGraph, xs: Tensor, xd: Tensor | null, xe: Tensor | null): Tensor {
  if ([xs, xd, xe].every((t) => !t || t.dtype === 'f16')) return viaF32('f16', [xs, xd, xe], ([s, d, e]) => edgeGather(g, s!, d, e));
  const [B, , C] = xs.shape;
  const op = `edgeGather(${g.name})`;
  check3(op, xs, B, g.numSrc, C, 'source features');
  if (xd) check3(op, xd, B, g.numDst, C, 'destination features');
  if (xe) check3(op, xe, B, g.edges, C, 'edge features');
  const E = g.edges;
  const flags = (xd ? 1 : 0) | (xe ? 2 : 0);
  const out = Tensor.empty([B, E, C], 'f32', 'edge_gather');
  const ctx = `${op} ${shapeStr(xs.shape)} → ${shapeStr(out.shape)}`;
  if (out.size > 0) {
    const { code, cv } = kernelFor(C);
    launch({
      file: 'graph.wgsl', entry: 'edge_gather', code, args: [xs, xd ?? unusedOperand(), xe ?? unusedOperand(), g.src, g.dst, out],
      params: [B, E, 0, cv, g.numSrc, g.numDst, flags, 0], workgroups: grid1d(B * E * cv), context: ctx,
    });
  }
  const inputs = [xs, ...(xd ? [xd] : []), ...(xe ? [xe] : [])];
  return record(out, 'edge_gather', inputs, (grad) => {
    const gs = xs.requiresGrad ? reduceEdges(grad, g, 'src', false) : null;
    const gd = xd?.requiresGrad ? reduceEdges(grad, g, 'dst', false) : null;
    const ge = xe?.requiresGrad ? grad : null;
    return [gs, ...(xd ? [gd] : []), ...(xe ? [ge] : [])];
  });
}

/** Σ (or mean) of edge features [B, E, C] onto the `side` nodes, raw (no autograd). */
function reduceEdges(x: Tensor, g: FixedGraph, side: 'src' | 'dst', mean: boolean): Tensor {
  const [B, E, C] = x.shape;
  const c = side === 'src' ? g.bySrc : g.byDst;
  const n = side === 'src' ? g.numSrc : g.numDst;
  const out = Tensor.empty([B, n, C], 'f32', mean ? 'scatter_mean' : 'scatter_sum');
  if (out.size > 0) {
    const { code, cv } = kernelFor(C);
    launch({
      file: 'graph.wgsl', entry: 'reduce', code, args: [x, out, c.offsets, c.list], params: [B, E, n, cv, 0, 0, mean ? 4 : 0, 0],
      workgroups: grid1d(B * n * cv), context: `scatter ${mean ? 'mean' : 'sum'}(${g.name}) ${shapeStr(x.shape)} onto ${side} ${n}`,
    });
  }
  return out;
}

/**
 * Scatter-mean (or sum) of edge features onto nodes: x [B, E, C] → [B, N, C] with N the `side`'s
 * node count; out[b, n] = mean over the edges whose `side` end is n (0 for a node without edges).
 * The gradient spreads each node's gradient back over its edges (÷ degree for the mean). An f16 x
 * gives an f16 output (computed in f32).
 */
export function scatterEdges(x: Tensor, g: FixedGraph, side: 'src' | 'dst', reduce: 'mean' | 'sum' = 'mean'): Tensor {
  if (x.dtype === 'f16') return viaF32('f16', [x], ([x32]) => scatterEdges(x32!, g, side, reduce));
  const op = `scatter${reduce === 'mean' ? 'Mean' : 'Sum'}(${g.name})`;
  x.assertAlive(op);
  if (x.dtype !== 'f32' || x.rank !== 3 || x.shape[1] !== g.edges) throw new Error(`${op}: edge features must be f32 [B, ${g.edges}, C] (or f16), got ${x.describe()}`);
  const mean = reduce === 'mean';
  const out = reduceEdges(x, g, side, mean);
  return record(out, op, [x], (grad) => {
    const [B, E, C] = x.shape;
    const c = side === 'src' ? g.bySrc : g.byDst;
    const n = side === 'src' ? g.numSrc : g.numDst;
    const dx = Tensor.empty(x.shape, 'f32', `${op} dx`);
    if (dx.size > 0) {
      const { code, cv } = kernelFor(C);
      launch({
        file: 'graph.wgsl', entry: 'spread', code, args: [grad, dx, c.offsets, side === 'src' ? g.src : g.dst], params: [B, E, n, cv, 0, 0, mean ? 4 : 0, 0],
        workgroups: grid1d(B * E * cv), context: `${op} backward`,
      });
    }
    return [dx];
  });
}

/** Mean of edge features onto the `side` nodes (see scatterEdges). */
export function scatterMean(x: Tensor, g: FixedGraph, side: 'src' | 'dst'): Tensor {
  return scatterEdges(x, g, side, 'mean');
}

/**
 * Max over the instance axis: x [B, N, S] → [B, S] (an image's score per label is its best
 * instance's), gradient to the first maximising instance. The reduce kernel's max (reduce.wgsl) with
 * its argmax backward.
 */
export { max as maxOverAxis } from './reduce.js';
