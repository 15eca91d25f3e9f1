// Every case of the PyTorch loss fixture (float32 CPU torch 1.13, logits with saturating entries):
// loss value and d loss / d logits within 1e-5 of max |ref|. BCE-with-logits (mean) has no fixture
// case and is checked against a float64 reference written here.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, backward, tidy } from '../kernels/index.js';
import { readSafetensors } from '../train/safetensors-file.js';
import type { TensorRecord } from '../engine/safetensors.js';
import { relErr } from './ref.js';
import {
  asymmetricLossMmcls, labelSmoothBce, gkgnetLoss, asymmetricLossAlibaba, asymmetricLossOptimized, bceWithLogits,
} from '../models/losses.js';

const FIXTURE = new URL('./fixtures/losses.safetensors', import.meta.url).pathname;
let recs: Map<string, TensorRecord>;

beforeAll(async () => {
  await init();
  recs = (await readSafetensors(FIXTURE)).tensors;
});

function rec(name: string): Float32Array {
  const r = recs.get(name);
  if (!r) throw new Error(`fixture has no ${name}`);
  return r.data as Float32Array;
}

type LossFn = (x: Tensor, t: Tensor) => Tensor;

/** The loss and the gradient of the loss w.r.t. the logits. */
async function run(fn: LossFn, xs: Float32Array, ts: Float32Array, shape: number[]): Promise<{ loss: number; grad: Float32Array }> {
  const x = Tensor.from(xs, shape).param('logits');
  const t = Tensor.from(ts, shape);
  try {
    const loss = tidy(() => {
      const l = fn(x, t);
      backward(l);
      return l;
    });
    const out = { loss: await loss.item(), grad: await x.grad!.toArray() };
    loss.release();
    return out;
  } finally {
    x.grad?.release();
    x.release();
    t.release();
  }
}

function parse(tag: string, key: string): number {
  const m = new RegExp(`_${key}([0-9.]+)`).exec(tag);
  if (!m) throw new Error(`case ${tag} has no ${key}`);
  return Number(m[1].replace(/\.$/, ''));
}

function caseFn(tag: string): LossFn {
  if (tag === 'mmcls_label_smooth_0.1') return (x, t) => labelSmoothBce(x, t, 0.1);
  if (tag === 'gkgnet_head_total') return (x, t) => gkgnetLoss(x, t).loss;
  if (tag.startsWith('mmcls_asl_')) {
    const o = { gammaPos: parse(tag, 'gp'), gammaNeg: parse(tag, 'gn'), clip: parse(tag, 'clip') };
    return (x, t) => asymmetricLossMmcls(x, t, o);
  }
  const m = /^alibaba_(AsymmetricLoss|AsymmetricLossOptimized)_gn(\d+)_gp(\d+)_nograd([01])$/.exec(tag);
  if (!m) throw new Error(`unknown loss case ${tag}`);
  const o = { gammaNeg: Number(m[2]), gammaPos: Number(m[3]), detachFocalWeight: m[4] === '1' };
  return m[1] === 'AsymmetricLoss' ? (x, t) => asymmetricLossAlibaba(x, t, o) : (x, t) => asymmetricLossOptimized(x, t, o);
}

describe('losses vs PyTorch fixture', () => {
  it('covers every case in the file', () => {
    const cases = [...recs.keys()].filter((k) => k.endsWith('.loss'));
    expect(cases.length).toBe(18);
  });

  const tags = [
    'mmcls_asl_gp0_gn2_clip0.05', 'mmcls_asl_gp0_gn4_clip0.05', 'mmcls_asl_gp1_gn4_clip0.05', 'mmcls_asl_gp0_gn2_clip0',
    'mmcls_label_smooth_0.1', 'gkgnet_head_total',
    ...['AsymmetricLoss', 'AsymmetricLossOptimized'].flatMap((v) =>
      ['gn4_gp1', 'gn4_gp0', 'gn2_gp0'].flatMap((g) => [1, 0].map((d) => `alibaba_${v}_${g}_nograd${d}`)),
    ),
  ];
  for (const tag of tags) {
    it(tag, async () => {
      const xs = rec('input.logits');
      const ts = rec('input.target');
      const { loss, grad } = await run(caseFn(tag), xs, ts, recs.get('input.logits')!.shape);
      const refLoss = rec(`${tag}.loss`)[0];
      const refGrad = rec(`${tag}.grad.logits`);
      expect(Math.abs(loss - refLoss) / Math.abs(refLoss)).toBeLessThanOrEqual(1e-5);
      expect(relErr(grad, refGrad)).toBeLessThanOrEqual(1e-5);
      expect(grad.every(Number.isFinite)).toBe(true);
    });
  }

  it('the default options are the documented ones', async () => {
    const xs = rec('input.logits');
    const ts = rec('input.target');
    const shape = recs.get('input.logits')!.shape;
    const pairs: [LossFn, string][] = [
      [(x, t) => asymmetricLossMmcls(x, t), 'mmcls_asl_gp0_gn2_clip0.05'],
      [(x, t) => asymmetricLossAlibaba(x, t), 'alibaba_AsymmetricLoss_gn4_gp1_nograd1'],
      [(x, t) => asymmetricLossOptimized(x, t), 'alibaba_AsymmetricLossOptimized_gn4_gp1_nograd0'],
    ];
    for (const [fn, tag] of pairs) {
      const { loss, grad } = await run(fn, xs, ts, shape);
      expect(Math.abs(loss - rec(`${tag}.loss`)[0]) / Math.abs(rec(`${tag}.loss`)[0])).toBeLessThanOrEqual(1e-5);
      expect(relErr(grad, rec(`${tag}.grad.logits`))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('gkgnetLoss returns its parts', async () => {
    const shape = recs.get('input.logits')!.shape;
    const x = Tensor.from(rec('input.logits'), shape);
    const t = Tensor.from(rec('input.target'), shape);
    const parts = tidy(() => gkgnetLoss(x, t));
    const [loss, bce, asy, asy10] = await Promise.all([parts.loss.item(), parts.bce.item(), parts.asymmetric.item(), parts.asymmetricX10.item()]);
    expect(Math.abs(bce - rec('mmcls_label_smooth_0.1.loss')[0])).toBeLessThanOrEqual(1e-5 * Math.abs(bce));
    expect(Math.abs(asy - rec('mmcls_asl_gp0_gn2_clip0.05.loss')[0])).toBeLessThanOrEqual(1e-5 * Math.abs(asy));
    expect(asy10).toBeCloseTo(10 * asy, 4);
    expect(Math.abs(loss - rec('gkgnet_head_total.loss')[0])).toBeLessThanOrEqual(1e-5 * Math.abs(loss));
    for (const v of [x, t, parts.loss, parts.bce, parts.asymmetric, parts.asymmetricX10]) v.release();
  });
});

describe('bceWithLogits', () => {
  it('matches a float64 reference (mean over every element, soft targets, odd shape)', async () => {
    const shape = [5, 61, 1]; // more than one workgroup
    const n = 305;
    const xs = Float32Array.from({ length: n }, (_, i) => [40, -40, 0, 17.5, -17.5][i % 5] * (i < 5 ? 1 : 0) + (i >= 5 ? Math.sin(i) * 6 : 0));
    const ts = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : 0.3));
    const { loss, grad } = await run(bceWithLogits, xs, ts, shape);
    let ref = 0;
    const refGrad: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = xs[i];
      const t = ts[i];
      ref += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
      refGrad.push((1 / (1 + Math.exp(-x)) - t) / n);
    }
    ref /= n;
    expect(Math.abs(loss - ref) / Math.abs(ref)).toBeLessThanOrEqual(1e-5);
    expect(relErr(grad, refGrad)).toBeLessThanOrEqual(1e-5);
  });

  it('names the op and shapes on a mismatch', () => {
    const x = Tensor.from([1, 2, 3, 4], [2, 2]);
    const t = Tensor.from([1, 0], [1, 2]);
    expect(() => bceWithLogits(x, t)).toThrow(/lossTerms\(bce\).*\[2,2\].*\[1,2\]/);
    x.release();
    t.release();
  });
});
