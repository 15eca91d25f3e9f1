// Parity of the losses fixture: each case tag names the loss and its hyper-parameters
// (e.g. `mmcls_asl_gp0_gn2_clip0.05`); the value and d loss / d logits are compared.
import type { TensorRecord } from '../../engine/safetensors.js';
import { Tensor, backward } from '../../kernels/index.js';
import { asymmetricLossMmcls, labelSmoothBce, gkgnetLoss, asymmetricLossAlibaba } from '../../models/losses.js';
import { FixtureError, summarize, type FileReport } from './parity.js';
import { relErr } from './rel-err.js';

const TOL = 1e-5;

function lossFor(tag: string, logits: Tensor, target: Tensor): Tensor {
  let m = /^mmcls_asl_gp([\d.]+)_gn([\d.]+)_clip([\d.]+)$/.exec(tag);
  if (m) return asymmetricLossMmcls(logits, target, { gammaPos: +m[1], gammaNeg: +m[2], clip: +m[3] });
  m = /^mmcls_label_smooth_([\d.]+)$/.exec(tag);
  if (m) return labelSmoothBce(logits, target, +m[1]);
  if (tag === 'gkgnet_head_total') return gkgnetLoss(logits, target).loss;
  m = /^alibaba_(AsymmetricLoss|AsymmetricLossOptimized)_gn([\d.]+)_gp([\d.]+)_nograd([01])$/.exec(tag);
  if (m) return asymmetricLossAlibaba(logits, target, { gammaNeg: +m[2], gammaPos: +m[3], detachFocalWeight: m[4] === '1' });
  throw new FixtureError(`losses fixture: unknown case "${tag}"`);
}

export async function parityLosses(file: string, recs: Map<string, TensorRecord>): Promise<FileReport> {
  const logitsRec = recs.get('input.logits');
  const targetRec = recs.get('input.target');
  if (!logitsRec || !targetRec) throw new FixtureError(`${file}: input.logits or input.target is missing`);
  const tags = [...recs.keys()].filter((k) => k.endsWith('.loss')).map((k) => k.slice(0, -'.loss'.length));
  const checks: FileReport['checks'] = [];
  for (const tag of tags) {
    const logits = Tensor.from(logitsRec.data as Float32Array, logitsRec.shape);
    logits.requiresGrad = true;
    const target = Tensor.from(Float32Array.from(targetRec.data), targetRec.shape);
    const loss = lossFor(tag, logits, target);
    const value = await loss.toArray();
    backward(loss);
    const e = relErr(value, recs.get(`${tag}.loss`)!.data);
    checks.push({ tensor: `${tag}.loss`, rel_err: e, tol: TOL, pass: e <= TOL });
    const g = recs.get(`${tag}.grad.logits`);
    if (g) {
      const eg = relErr(await logits.grad!.toArray(), g.data);
      checks.push({ tensor: `${tag}.grad.logits`, rel_err: eg, tol: TOL, pass: eg <= TOL });
    }
  }
  return summarize(file, 'none', checks);
}
