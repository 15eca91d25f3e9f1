// Launchers of pointwise-subgroup.wgsl: 1×1 convs on CPU adapters with fixed-size subgroups, where a
// subgroup shuffle hands one lane's load to the others for the cost of a register permute.
import { Tensor } from '../engine/tensor.js';
import type { PendingGrads } from '../engine/autograd.js';
import { keep, operandPrecision } from '../engine/context.js';
import { kernelSource, composedSource } from '../engine/kernel.js';
import { launch } from '../engine/launch.js';
import { operandSource } from './operand.js';
import { imageChunks, chunkedWeightGrad } from './chunked-grads.js';

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
const VECTOR_PRELUDE = {
  4: 'alias V = vec4f;\nfn opv(x: V) -> V { return opnd4(x); }\nfn hsum(v: V) -> f32 { return (v.x + v.y) + (v.z + v.w); }\nfn vdot(a: V, b: V) -> f32 { return dot(a, b); }\n',
  1: 'alias V = f32;\nfn opv(x: V) -> V { return opnd(x); }\nfn hsum(v: V) -> f32 { return v; }\nfn vdot(a: V, b: V) -> f32 { return a * b; }\n',
} as const;

/** The kernel for SG lanes, planes of V = `width` positions and TN dw columns per lane, per operand precision. */
function source(sg: number, width: 1 | 4, tn = 1): string {
  return composedSource(`pointwise-subgroup ${sg} ${width} ${tn} ${operandPrecision()}`, () =>
    'enable subgroups;\n' + operandSource(VECTOR_PRELUDE[width] + kernelSource('pointwise-subgroup.wgsl', { SG: sg, TN: tn })));
}

const widthOf = (S: number): 1 | 4 => (S % 4 === 0 ? 4 : 1);

let noTensor: Tensor | undefined;
const none = () => (noTensor ??= keep(Tensor.from([0, 0, 0, 0], [4])));

/** forward (w = weight, x = input) or dx (w read transposed, x = dy; + addend when given) into `out`. */
export function shuffleGemm(dx: boolean, c: PointwiseShape, sg: number, w: Tensor, x: Tensor, bias: Tensor | null, out: Tensor, addend: Tensor | null): void {
  const width = widthOf(c.S);
  const SV = c.S / width;
  const [M, K] = dx ? [c.Cin / c.groups, c.Cout / c.groups] : [c.Cout / c.groups, c.Cin / c.groups];
  const planes = c.B * SV;
  launch({
    file: 'pointwise-subgroup.wgsl',
    entry: 'gemm',
    code: source(sg, width),
    constants: { TRANS_A: +dx, ADDEND: +!!addend },
    args: [w, x, bias ?? none(), out, addend ?? none()],
    params: [M, K, SV, c.groups, (dx ? c.Cout : c.Cin) * SV, (dx ? c.Cin : c.Cout) * SV, planes, bias ? 1 : 0],
    workgroups: [Math.ceil(planes / sg), Math.ceil(M / sg), c.groups],
    context: `${c.context} (${dx ? 'input gradient' : 'forward'}, pointwise subgroup)`,
  });
}

/** dw: split the images until about this many workgroups run (one CPU thread each; each split costs a sum dispatch). */
const DW_TARGET_WORKGROUPS = 4;

/** dw (and db with `biasGrad`), images summed in chunks added in a fixed order; unsplit, straight into the gradients' homes. */
export function shuffleWeightGrad(c: PointwiseShape, sg: number, dy: Tensor, x: Tensor, biasGrad: boolean, pending: PendingGrads): [Tensor, Tensor | null] {
  const width = widthOf(c.S);
  const SV = c.S / width;
  const [M, N] = [c.Cout / c.groups, c.Cin / c.groups];
  // Two dw columns per lane where there are more than one subgroup's worth (GKGNet-T: 10–30 %), four
  // from 16 subgroups' worth (Cin ≥ 128 on lavapipe: 1.2–1.3× on GKGNet-T's shapes; narrower ones
  // lose more to the partly empty last block than the shared dy shuffles save). The image split
  // counts SG×SG tiles all the same: each split costs sum dispatches.
  const tn = N >= 16 * sg ? 4 : N > sg ? 2 : 1;
  const { perChunk, splits } = imageChunks(c.B, Math.ceil(N / sg) * Math.ceil(M / sg) * c.groups, DW_TARGET_WORKGROUPS);
  return chunkedWeightGrad([c.Cout, N, 1, 1], biasGrad, splits, pending, (partial, dbPartial) =>
    launch({
      file: 'pointwise-subgroup.wgsl',
      entry: 'weight_grad',
      code: source(sg, width, tn),
      constants: { BIAS_GRAD: +biasGrad },
      args: [x, dy, partial, dbPartial ?? none()],
      params: [M, N, SV, c.groups, c.Cin * SV, c.Cout * SV, perChunk, c.B],
      workgroups: [Math.ceil(N / (tn * sg)), Math.ceil(M / sg), splits * c.groups],
      context: `${c.context} (weight${biasGrad ? ' and bias' : ''} gradient, pointwise subgroup)`,
    }),
  );
}
