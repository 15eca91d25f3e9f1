// Launchers of pointwise-subgroup.wgsl: 1×1 convs on CPU adapters with fixed-size subgroups, where a
// subgroup shuffle hands one lane's load to the others for the cost of a register permute. Its two
// entry points, as general products (shuffleGemmLaunch, shuffleDotLaunch), also serve the matmuls
// (kernels/matmul.ts) and the KNN's inner products (kernels/knn.ts) there.
import { Tensor } from '../engine/tensor.js';
import type { PendingGrads } from '../engine/autograd.js';
import { operandPrecision } from '../engine/context.js';
import { kernelSource, composedSource } from '../engine/kernel.js';
import { launch, unusedOperand, unusedOutput } from '../engine/launch.js';
import { operandSource } from './operand.js';
import { imageChunks, chunkedWeightGrad } from './chunked-grads.js';
import { vectorPrelude, widthOf } from './vector-prelude.js';

/** A 1×1 stride-1 unpadded convolution: images, channels, groups, positions per plane. */
export interface PointwiseShape {
  B: number;
  Cin: number;
  Cout: number;
  groups: number;
  S: number;
  context: string;
}

// Planes as 4-position vectors where they split into them, else one position per lane.
const OPERAND_PRELUDE = {
  4: 'fn opv(x: V) -> V { return opnd4(x); }\nfn vdot(a: V, b: V) -> f32 { return dot(a, b); }\n',
  1: 'fn opv(x: V) -> V { return opnd(x); }\nfn vdot(a: V, b: V) -> f32 { return a * b; }\n',
} as const;

/** The kernel for SG lanes, planes of V = `width` positions and TN dw columns per lane, per operand precision. */
function source(sg: number, width: 1 | 4, tn = 1): string {
  return composedSource(`pointwise-subgroup ${sg} ${width} ${tn} ${operandPrecision()}`, () =>
    'enable subgroups;\n' + operandSource(vectorPrelude(width) + OPERAND_PRELUDE[width] + kernelSource('pointwise-subgroup.wgsl', { SG: sg, TN: tn })));
}


/**
 * gemm: out[b, g·M + m, s] = Σ_k op(w)[g](m, k) · x[b, g·K + k, s] (+ bias[g·M + m]) (+ addend), for
 * `images` b, `groups` g and S positions per plane; op(w)[g] is w's [M, K] block g, or with `transA`
 * its [K, M] block read transposed.
 */
export interface ShuffleGemmShape {
  images: number;
  groups: number;
  M: number;
  K: number;
  S: number;
  transA: boolean;
  context: string;
}

export function shuffleGemmLaunch(s: ShuffleGemmShape, sg: number, w: Tensor, x: Tensor, bias: Tensor | null, out: Tensor, addend: Tensor | null): void {
  const width = widthOf(s.S);
  const SV = s.S / width;
  const planes = s.images * SV;
  launch({
    file: 'pointwise-subgroup.wgsl',
    entry: 'gemm',
    code: source(sg, width),
    constants: { TRANS_A: +s.transA, ADDEND: +!!addend },
    args: [w, x, bias ?? unusedOperand(), out, addend ?? unusedOperand()],
    params: [s.M, s.K, SV, s.groups, s.groups * s.K * SV, s.groups * s.M * SV, planes, bias ? 1 : 0],
    workgroups: [Math.ceil(planes / sg), Math.ceil(s.M / sg), s.groups],
    context: s.context,
  });
}

/** forward (w = weight, x = input) or dx (w read transposed, x = dy; + addend when given) into `out`. */
export function shuffleGemm(dx: boolean, c: PointwiseShape, sg: number, w: Tensor, x: Tensor, bias: Tensor | null, out: Tensor, addend: Tensor | null): void {
  const [M, K] = dx ? [c.Cin / c.groups, c.Cout / c.groups] : [c.Cout / c.groups, c.Cin / c.groups];
  const context = `${c.context} (${dx ? 'input gradient' : 'forward'}, pointwise subgroup)`;
  shuffleGemmLaunch({ images: c.B, groups: c.groups, M, K, S: c.S, transA: dx, context }, sg, w, x, bias, out, addend);
}

/**
 * weight_grad: out[chunk, g, m, n] = Σ_{b ∈ chunk} Σ_s dy[b, g·M + m, s] · x[b, g·N + n, s], the
 * images in chunks of `perChunk`, (+ db[chunk, g, m] = Σ dy with `biasGrad`), (+ bias[n] or bias[m]
 * per `biasAdd`: a matmul's epilogue).
 */
export interface ShuffleDotShape {
  images: number;
  perChunk: number;
  splits: number;
  groups: number;
  M: number;
  N: number;
  S: number;
  biasGrad: boolean;
  biasAdd: 'none' | 'col' | 'row';
  context: string;
}

export function shuffleDotLaunch(s: ShuffleDotShape, sg: number, dy: Tensor, x: Tensor, bias: Tensor | null, out: Tensor, db: Tensor | null): void {
  const width = widthOf(s.S);
  const SV = s.S / width;
  // Two dw columns per lane where there are more than one subgroup's worth (GKGNet-T: 10–30 %), four
  // from 16 subgroups' worth (Cin ≥ 128 on lavapipe: 1.2–1.3× on GKGNet-T's shapes; narrower ones
  // lose more to the partly empty last block than the shared dy shuffles save).
  const tn = s.N >= 16 * sg ? 4 : s.N > sg ? 2 : 1;
  launch({
    file: 'pointwise-subgroup.wgsl',
    entry: 'weight_grad',
    code: source(sg, width, tn),
    constants: { BIAS_GRAD: +s.biasGrad, BIAS_ADD: { none: 0, col: 1, row: 2 }[s.biasAdd] },
    args: [x, bias ?? unusedOperand(), dy, out, db ?? unusedOutput()],
    params: [s.M, s.N, SV, s.groups, s.groups * s.N * SV, s.groups * s.M * SV, s.perChunk, s.images],
    workgroups: [Math.ceil(s.N / (tn * sg)), Math.ceil(s.M / sg), s.splits * s.groups],
    context: s.context,
  });
}

/** dw: split the images until about this many workgroups run (one CPU thread each; each split costs a sum dispatch). */
const DW_TARGET_WORKGROUPS = 4;

/** dw (and db with `biasGrad`), images summed in chunks added in a fixed order; unsplit, straight into the gradients' homes. */
export function shuffleWeightGrad(c: PointwiseShape, sg: number, dy: Tensor, x: Tensor, biasGrad: boolean, pending: PendingGrads): [Tensor, Tensor | null] {
  const [M, N] = [c.Cout / c.groups, c.Cin / c.groups];
  // The image split counts SG×SG tiles all the same: each split costs sum dispatches.
  const { perChunk, splits } = imageChunks(c.B, Math.ceil(N / sg) * Math.ceil(M / sg) * c.groups, DW_TARGET_WORKGROUPS);
  const context = `${c.context} (weight${biasGrad ? ' and bias' : ''} gradient, pointwise subgroup)`;
  return chunkedWeightGrad([c.Cout, N, 1, 1], biasGrad, splits, pending, (partial, dbPartial) =>
    shuffleDotLaunch({ images: c.B, perChunk, splits, groups: c.groups, M, N, S: c.S, biasGrad, biasAdd: 'none', context }, sg, dy, x, null, partial, dbPartial),
  );
}
