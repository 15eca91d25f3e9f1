// Conv2d + eval-mode BatchNorm2d folded into one convolution (F.foldBatchNorm, eval({ foldBatchNorm }))
// against a float64 CPU reference written here: conv2dRef, then the BN with the running statistics.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, noGrad, backward, device } from '../kernels/index.js';
import { Conv2d, BatchNorm2d, GELU, Sequential } from '../models/layers.js';
import { rand, maxRelErr, conv2dRef, convOutSize, erf, forEachKernelProfile, type ConvCase } from './ref.js';

beforeAll(async () => {
  await init();
});

/** bn(conv(x)) in float64 with running statistics, optionally through the exact GELU. */
function reference(c: ConvCase, x: Float32Array, w: Float32Array, b: Float32Array | null, bn: Float32Array[], gelu: boolean): Float64Array {
  const [gamma, beta, mean, variance] = bn;
  const [Ho, Wo] = convOutSize(c);
  const { y } = conv2dRef(c, x, w, b, new Float64Array(c.B * c.Cout * Ho * Wo));
  const S = Ho * Wo;
  return y.map((v, i) => {
    const co = Math.floor(i / S) % c.Cout;
    const z = ((v - mean[co]) / Math.sqrt(variance[co] + 1e-5)) * gamma[co] + beta[co];
    return gelu ? 0.5 * z * (1 + erf(z / Math.SQRT2)) : z;
  });
}

/** A Conv2d + BatchNorm2d (+ GELU) with random weights and running statistics, as Sequential layers. */
function layers(c: ConvCase, bias: boolean, gelu: boolean, seed: number) {
  const conv = new Conv2d(c.Cin, c.Cout, c.kh, { stride: c.stride, padding: c.pad, groups: c.groups, bias });
  const bn = new BatchNorm2d(c.Cout);
  const w = rand(conv.weight.size, seed);
  const b = bias ? rand(c.Cout, seed + 1) : null;
  const stats = [rand(c.Cout, seed + 2, 0.5, 2), rand(c.Cout, seed + 3), rand(c.Cout, seed + 4), rand(c.Cout, seed + 5, 0.1, 3)];
  conv.weight.write(w);
  if (b) conv.bias!.write(b);
  [bn.weight, bn.bias, bn.runningMean, bn.runningVar].forEach((t, i) => t.write(stats[i]));
  const seq = gelu ? new Sequential(conv, bn, new GELU()) : new Sequential(conv, bn);
  return { seq, w, b, stats };
}

// [name, shape, conv bias, a GELU after the BN (then the BN + GELU pass stays unfolded)]
const CASES: [string, ConvCase, boolean, boolean][] = [
  ['1×1 with bias', { B: 2, Cin: 12, H: 8, W: 8, Cout: 8, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, true, false],
  ['1×1 grouped, no bias', { B: 2, Cin: 8, H: 3, W: 5, Cout: 8, kh: 1, kw: 1, stride: 1, pad: 0, groups: 4 }, false, false],
  ['3×3 stride 2 with bias', { B: 2, Cin: 3, H: 18, W: 16, Cout: 6, kh: 3, kw: 3, stride: 2, pad: 1, groups: 1 }, true, false],
  ['1×1 then GELU', { B: 2, Cin: 8, H: 4, W: 4, Cout: 4, kh: 1, kw: 1, stride: 1, pad: 0, groups: 1 }, true, true],
];

forEachKernelProfile((profile) => `${profile} kernel profile: eval({ foldBatchNorm: true }) vs float64 conv + BN`, () => {
  for (const [name, c, bias, gelu] of CASES) {
    it(name, async () => {
      const { seq, w, b, stats } = layers(c, bias, gelu, 7);
      const x = rand(c.B * c.Cin * c.H * c.W, 3);
      const want = reference(c, x, w, b, stats, gelu);
      const xt = Tensor.from(x, [c.B, c.Cin, c.H, c.W]);
      const run = (fold: boolean) => {
        seq.eval({ foldBatchNorm: fold });
        const before = { ...device().stats };
        const y = noGrad(() => seq.call(xt));
        return { y, dispatches: device().stats.dispatches - before.dispatches, bytes: device().stats.boundBytes - before.boundBytes };
      };
      const folded = run(true);
      const plain = run(false);
      expect(maxRelErr(await folded.y.toArray(), want)).toBeLessThan(1e-5);
      expect(maxRelErr(await plain.y.toArray(), want)).toBeLessThan(1e-5);
      if (gelu) {
        expect(folded).toMatchObject({ dispatches: plain.dispatches, bytes: plain.bytes });
      } else {
        // The fold reads the weights instead of a pass over the activations: one dispatch fewer.
        expect(folded.bytes).toBeLessThan(plain.bytes);
        expect(folded.dispatches).toBe(plain.dispatches - 1);
      }
      seq.release();
    });
  }
});

describe('BatchNorm folding is for inference only', () => {
  it('F.foldBatchNorm refuses to run while gradients are recorded', () => {
    const { seq } = layers(CASES[0][1], true, false, 1);
    const [conv, bn] = seq.layers as [Conv2d, BatchNorm2d];
    expect(() => F.foldBatchNorm(conv.weight, conv.bias, bn)).toThrow(/foldBatchNorm conv weight \[8,12,1,1\]: folding is for inference; run it under noGrad\(\)/);
    seq.release();
  });

  it('with gradients recorded, eval({ foldBatchNorm: true }) runs the pair unfolded, so the conv weight gets its gradient', async () => {
    const c = CASES[0][1];
    const { seq, w, b, stats } = layers(c, true, false, 2);
    seq.eval({ foldBatchNorm: true });
    const x = rand(c.B * c.Cin * c.H * c.W, 5);
    const y = seq.call(Tensor.from(x, [c.B, c.Cin, c.H, c.W]));
    backward(F.sum(y));
    // d sum(bn(conv(x))) / dw = conv's dw for gy = γ/√(var + eps) per output channel.
    const S = c.H * c.W;
    const gy = new Float64Array(c.B * c.Cout * S).map((_, i) => {
      const co = Math.floor(i / S) % c.Cout;
      return stats[0][co] / Math.sqrt(stats[3][co] + 1e-5);
    });
    const { dw } = conv2dRef(c, x, w, b, gy);
    const conv = seq.layers[0] as Conv2d;
    expect(maxRelErr(await conv.weight.grad!.toArray(), dw)).toBeLessThan(1e-5);
    seq.release();
  });

  it('train() clears the flag: a training step normalises with the batch statistics', () => {
    const { seq } = layers(CASES[0][1], true, false, 3);
    seq.eval({ foldBatchNorm: true });
    expect([...seq.modules()].every((m) => m.foldBatchNorm && !m.training)).toBe(true);
    seq.train();
    expect([...seq.modules()].some((m) => m.foldBatchNorm)).toBe(false);
    seq.eval();
    expect([...seq.modules()].some((m) => m.foldBatchNorm)).toBe(false);
    seq.release();
  });
});

describe('eval({ foldBatchNorm: true }) on a whole model', () => {
  it('gkgnet-tiny: one dispatch fewer per folded conv + BN pair, logits as the unfolded eval (which the parity tests pin to PyTorch)', async () => {
    const { buildModel } = await import('../models/index.js');
    const model = buildModel('gkgnet-tiny', { size: 64, numLabels: 5, seed: 4 });
    // Running statistics away from (0, 1), so that the fold has something to fold.
    model.train();
    noGrad(() => model.forward(Tensor.randn([4, 3, 64, 64], 8)));
    const x = Tensor.randn([2, 3, 64, 64], 9);
    // Count the pairs that run folded (the others: a GELU follows the BN, in the Sequential or its caller).
    let foldedPairs = 0;
    const forwardFolded = Conv2d.prototype.forwardFolded;
    Conv2d.prototype.forwardFolded = function (this: Conv2d, ...args: Parameters<typeof forwardFolded>) {
      foldedPairs++;
      return forwardFolded.apply(this, args);
    };
    const run = async (fold: boolean) => {
      model.eval({ foldBatchNorm: fold });
      const d0 = device().stats.dispatches;
      const y = noGrad(() => model.forward(x));
      return { dispatches: device().stats.dispatches - d0, y: await y.toArray() };
    };
    const plain = await run(false);
    expect(foldedPairs).toBe(0);
    const folded = await run(true);
    Conv2d.prototype.forwardFolded = forwardFolded;
    // Every conv + BN pair of gkgnet-tiny with no GELU after the BN (the 16 fc2 pairs' convolutions
    // also add the blocks' residuals in their stores).
    expect(foldedPairs).toBe(28);
    expect(plain.dispatches - folded.dispatches).toBe(foldedPairs);
    expect(maxRelErr(folded.y, plain.y)).toBeLessThan(1e-5);
    model.release();
  });
});
