// batchNorm2d (train / eval, optional fused GELU) against the float64 CPU reference (ref.ts's batchNormRef), and
// BN(conv1x1(x)) against the PyTorch fixtures (outputs and running-statistics updates).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { init, device, Tensor, F, backward, tidy, noGrad } from '../kernels/index.js';
import { readSafetensors } from '../train/safetensors-file.js';
import { rand, maxRelErr, forEachKernelProfile, batchNormRef } from './ref.js';
import { checkBatchNorm as check } from './batchnorm-check.js';

beforeAll(async () => {
  await init();
});

// The reference checks run with both kernel profiles (GPU: 256-wide workgroups, one value per
// invocation; CPU adapters: 64-wide, 4 values per invocation).
forEachKernelProfile((profile) => `${profile} kernel profile: batchNorm2d vs float64 reference (y, dx, dweight, dbias, running statistics)`, () => {
  it('train, odd sizes', async () => {
    await check({ shape: [2, 3, 5, 7], training: true, offset: 0, scale: 1, seed: 1 });
  });
  it('train on a B×C×S×1 label tensor', async () => {
    await check({ shape: [3, 4, 20, 1], training: true, offset: 0, scale: 2, seed: 2 });
  });
  it('train, several chunks per channel (ragged last chunk), mean far from zero', async () => {
    await check({ shape: [2, 3, 49, 50], training: true, offset: 20, scale: 0.5, seed: 3 });
  });
  it('train with a fused GELU', async () => {
    await check({ shape: [2, 5, 6, 3], training: true, act: true, offset: 0.3, scale: 1, seed: 4 });
  });
  it('train with a fused GELU, several chunks per channel', async () => {
    await check({ shape: [2, 3, 49, 50], training: true, act: true, offset: -0.2, scale: 1, seed: 11 });
  });
  it('train on 2×2 and 3×1 planes of many images (a 64-lane step spans whole images), fused GELU', async () => {
    await check({ shape: [40, 3, 2, 2], training: true, act: true, offset: 0.1, scale: 1, seed: 13 });
    await check({ shape: [45, 2, 3, 1], training: true, offset: 0, scale: 1, seed: 14 });
  });
  it('train, x without a gradient (dweight and dbias only)', async () => {
    await check({ shape: [2, 3, 5, 7], training: true, act: true, constantX: true, offset: 0, scale: 1, seed: 12 });
  });
  it('train with the residual added (and drop path\'s per-image scale), one and several chunks per channel, vec4 and odd planes', async () => {
    await check({ shape: [3, 4, 4, 4], training: true, residual: true, offset: 0.1, scale: 1, seed: 15 });
    await check({ shape: [4, 3, 4, 4], training: true, residual: true, scaled: true, offset: 0.1, scale: 1, seed: 16 });
    await check({ shape: [5, 3, 3, 3], training: true, residual: true, scaled: true, offset: 0, scale: 1, seed: 17 });
    await check({ shape: [3, 2, 49, 50], training: true, residual: true, scaled: true, offset: 2, scale: 1, seed: 18 });
    await check({ shape: [4, 3, 3, 3], training: true, residual: true, scaled: true, act: true, offset: 0, scale: 1, seed: 19 });
  });
  it('train with the residual and scale, x without a gradient', async () => {
    await check({ shape: [3, 2, 49, 50], training: true, residual: true, scaled: true, constantX: true, offset: 0, scale: 1, seed: 20 });
    await check({ shape: [4, 3, 4, 4], training: true, residual: true, scaled: true, constantX: true, offset: 0, scale: 1, seed: 21 });
  });
  it('eval with the residual added (and a per-image scale)', async () => {
    await check({ shape: [2, 3, 5, 7], training: false, residual: true, offset: 0.2, scale: 1, seed: 22 });
    await check({ shape: [3, 3, 5, 7], training: false, residual: true, scaled: true, offset: 0.2, scale: 1, seed: 23 });
  });
  it('eval (running statistics; running statistics unchanged)', async () => {
    await check({ shape: [2, 3, 5, 7], training: false, offset: 0.2, scale: 1, seed: 5 });
  });
  it('eval with a fused GELU, batch of one, several chunks', async () => {
    await check({ shape: [1, 2, 70, 70], training: false, act: true, offset: 0, scale: 1.5, seed: 6 });
  });
  it('train, planes smaller than a workgroup and than 4 values (S = 1, S = 2): walks wrap images and channels', async () => {
    await check({ shape: [7, 3], training: true, offset: 0.5, scale: 1, seed: 9 });
    await check({ shape: [5, 3, 2, 1], training: true, act: true, offset: 0, scale: 1, seed: 10 });
  });
  it('the float64 reference agrees with finite differences (train, GELU)', () => {
    const shape = [2, 2, 3, 1];
    const x = Float64Array.from(rand(12, 7));
    const w = [0.9, 1.2];
    const b = [0.1, -0.2];
    const g = rand(12, 8);
    const o = { training: true, act: true };
    const ref = batchNormRef(shape, x, w, b, [0, 0], [1, 1], g, o);
    const loss = (xx: Float64Array) => batchNormRef(shape, xx, w, b, [0, 0], [1, 1], g, o).y.reduce((a, v, i) => a + v * g[i], 0);
    const fd = Array.from(x, (_, i) => {
      const p = Float64Array.from(x);
      p[i] += 1e-6;
      const up = loss(p);
      p[i] -= 2e-6;
      return (up - loss(p)) / 2e-6;
    });
    expect(maxRelErr(ref.dx, fd)).toBeLessThan(1e-6);
  });
});

// A device that offers 9 storage buffers per stage: the per-channel fused entries (9) fit, the
// chunked ones (10) do not, so chunked shapes run the split passes. The device's pipeline check
// refuses any kernel over the limit it reads, so a wrong choice fails here.
forEachKernelProfile((profile) => `${profile} kernel profile, 9 storage buffers per stage: batchNorm2d vs float64 reference`, () => {
  let saved: GPUSupportedLimits;
  beforeAll(() => {
    saved = device().limits;
    Object.defineProperty(device(), 'limits', { value: { ...plainLimits(saved), maxStorageBuffersPerShaderStage: 9 }, configurable: true });
  });
  afterAll(() => {
    Object.defineProperty(device(), 'limits', { value: saved, configurable: true });
  });
  it('train and eval, one and several chunks per channel, GELU, residual and scale', async () => {
    await check({ shape: [2, 3, 5, 7], training: true, act: true, offset: 0, scale: 1, seed: 31 });
    await check({ shape: [3, 2, 49, 50], training: true, residual: true, scaled: true, act: true, offset: 2, scale: 1, seed: 32 });
    await check({ shape: [1, 2, 70, 70], training: false, act: true, offset: 0, scale: 1.5, seed: 33 });
  });
});

/** A plain copy of a GPUSupportedLimits (its values are getters on the prototype). */
function plainLimits(l: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k in l) out[k] = (l as unknown as Record<string, number>)[k];
  return out;
}

describe('batchNorm2d properties', () => {
  it('names a residual or branch scale that does not fit x', () => {
    const x = Tensor.from(rand(2 * 3 * 4, 40), [2, 3, 4, 1]);
    const c = () => Tensor.from([1, 1, 1], [3]);
    const bn = (o: { residual?: Tensor; branchScale?: Tensor }) => F.batchNorm2d(x, c(), c(), c(), c(), { training: true, ...o });
    expect(() => bn({ residual: Tensor.from(rand(24, 41), [2, 3, 2, 2]) })).toThrow('batchnorm x [2,3,4,1]: residual [2,3,2,2] must have x\'s shape');
    expect(() => bn({ branchScale: Tensor.from([1, 0], [2, 1, 1, 1]) })).toThrow('batchnorm x [2,3,4,1]: branchScale scales the branch added to a residual; pass residual too');
    expect(() => bn({ residual: Tensor.from(rand(24, 42), [2, 3, 4, 1]), branchScale: Tensor.from([1, 0, 1], [3]) })).toThrow('batchnorm x [2,3,4,1]: branchScale [3] must hold one value per image (2)');
  });
  it('is bitwise deterministic (several chunks per channel)', async () => {
    const shape = [2, 2, 48, 48];
    const run = async () => {
      const x = Tensor.from(rand(2 * 2 * 48 * 48, 31), shape).param();
      const w = Tensor.from([1.1, 0.7], [2]).param();
      const b = Tensor.from([0.1, -0.1], [2]).param();
      const rv = Tensor.from([1, 1], [2]);
      const y = tidy(() => {
        const out = F.batchNorm2d(x, w, b, Tensor.from([0, 0], [2]), rv, { training: true, activation: 'gelu' });
        backward(out, Tensor.from(rand(out.size, 32), shape));
        return out;
      });
      return [y, x.grad!, w.grad!, rv].map((t) => t.toArray());
    };
    const a = await Promise.all(await run());
    const b = await Promise.all(await run());
    a.forEach((v, i) => expect(Array.from(v)).toEqual(Array.from(b[i])));
  });

  it('training with one value per channel is an error naming the op and shape', () => {
    const c = () => Tensor.from([1, 1], [2]);
    expect(() => F.batchNorm2d(Tensor.from([1, 2], [1, 2, 1, 1]), c(), c(), c(), c(), { training: true })).toThrow(
      /batchnorm x \[1,2,1,1\]: training needs more than 1 value per channel/,
    );
    expect(() => F.batchNorm2d(Tensor.from([1, 2, 3, 4], [2, 2]), c(), Tensor.from([1], [1]), c(), c(), { training: false })).toThrow(
      /bias \[1\] must be \[2\]/,
    );
  });
});

async function fixture(file: string, prefix: string) {
  const f = await readSafetensors(new URL(`./fixtures/${file}`, import.meta.url).pathname);
  return (name: string) => {
    const t = f.tensors.get(name.replace('$', prefix));
    if (!t) throw new Error(`${file} lacks ${name.replace('$', prefix)}`);
    return t;
  };
}

/** BN(conv1x1(x)) in both modes from the stored state; the running statistics after train mode. */
async function checkFc1(get: Awaited<ReturnType<typeof fixture>>, x: Tensor) {
  const t = (name: string) => {
    const r = get(name);
    return Tensor.from(r.data as Float32Array, r.shape);
  };
  const w = t('param.$.fc1.0.weight');
  const b = t('param.$.fc1.0.bias');
  const gamma = t('param.$.fc1.1.weight');
  const beta = t('param.$.fc1.1.bias');
  for (const training of [false, true]) {
    const rm = t('buffer.$.fc1.1.running_mean');
    const rv = t('buffer.$.fc1.1.running_var');
    const y = F.batchNorm2d(F.conv2d(x, w, b), gamma, beta, rm, rv, { training });
    const mode = training ? 'train' : 'eval';
    expect(maxRelErr(await y.toArray(), get(`${mode}.inter.$.fc1`).data)).toBeLessThan(1e-4);
    const wantMean = training ? get('train.buffer_after.$.fc1.1.running_mean').data : get('buffer.$.fc1.1.running_mean').data;
    const wantVar = training ? get('train.buffer_after.$.fc1.1.running_var').data : get('buffer.$.fc1.1.running_var').data;
    expect(maxRelErr(await rm.toArray(), wantMean)).toBeLessThan(1e-5);
    expect(maxRelErr(await rv.toArray(), wantVar)).toBeLessThan(1e-5);
  }
  // Eval mode as one convolution with the folded weights (inference), against PyTorch's unfolded pair.
  const bn = { weight: gamma, bias: beta, runningMean: t('buffer.$.fc1.1.running_mean'), runningVar: t('buffer.$.fc1.1.running_var'), eps: 1e-5 };
  const folded = noGrad(() => {
    const [wf, bf] = F.foldBatchNorm(w, b, bn);
    return F.conv2d(x, wf, bf);
  });
  expect(maxRelErr(await folded.toArray(), get('eval.inter.$.fc1').data)).toBeLessThan(1e-4);
}

describe('BN(conv1x1(x)) on the PyTorch fixtures', () => {
  it('gkg_block_xy block.0.fc1: eval and train outputs, running-statistics update', async () => {
    const get = await fixture('gkg_block_xy.safetensors', 'block.0');
    const xr = get('input.x');
    await checkFc1(get, Tensor.from(xr.data as Float32Array, xr.shape));
  });
  it('gkg_cross m.fc1 on the B×C×S×1 label tensor', async () => {
    const get = await fixture('gkg_cross.safetensors', 'm');
    const e = get('input.labels');
    const [B, S, C] = e.shape;
    // L = Eᵀ as B×C×S×1
    const l = new Float32Array(B * C * S);
    for (let bi = 0; bi < B; bi++) for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) l[(bi * C + c) * S + s] = e.data[(bi * S + s) * C + c];
    await checkFc1(get, Tensor.from(l, [B, C, S, 1]));
  });
});
