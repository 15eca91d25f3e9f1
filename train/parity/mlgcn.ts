// Parity of the `mlgcn` fixture (the official ML-GCN code, Megvii-Nanjing/ML-GCN @ 5517d6f): the
// label graph from `input.labels` (gen_A → `A`, gen_adj → `adj`, 1e-5), the two GCN layers'
// classifiers, the logits and Σ logits ⊙ W (1e-4), and d loss / d gc1, gc2, features (1e-3).
import type { TensorRecord } from '../../engine/safetensors.js';
import { Tensor, F, backward, noGrad, beginScope, endScope } from '../../kernels/index.js';
import { labelGraph, normalizeGraph, MlGcnHead } from '../../models/ml-gcn.js';
import { FixtureError, summarize, type FileReport } from './parity.js';
import { relErr } from './rel-err.js';

const TOL = { graph: 1e-5, out: 1e-4, grad: 1e-3 };

export async function parityMlgcn(file: string, meta: Record<string, string>, recs: Map<string, TensorRecord>): Promise<FileReport> {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(meta.config ?? '') as Record<string, unknown>;
  } catch {
    throw new FixtureError(`${file}: __metadata__.config is missing or not valid JSON`);
  }
  const n = (k: string): number => {
    if (typeof cfg[k] !== 'number') throw new FixtureError(`${file}: config.${k} missing or not a number`);
    return cfg[k] as number;
  };
  const [S, d, hidden, D, B, N, tau, p] = ['S', 'd', 'hidden', 'D', 'B', 'N', 't', 'p'].map(n);
  const need = (name: string, shape: number[]): TensorRecord => {
    const r = recs.get(name);
    if (!r) throw new FixtureError(`${file}: tensor ${name} is missing`);
    if (r.shape.join(',') !== shape.join(',')) throw new FixtureError(`${file}: ${name} has shape [${r.shape}], expected [${shape}]`);
    return r;
  };
  const lab = need('input.labels', [N, S]).data;
  const labels = Array.from({ length: N }, (_, i) => Int8Array.from(lab.subarray(i * S, (i + 1) * S)));
  const checks: FileReport['checks'] = [];
  const check = (tensor: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => {
    const e = relErr(got, want);
    checks.push({ tensor, rel_err: e, tol, pass: e <= tol });
  };

  // The official gen_A (column sums, p, +1 on the diagonal) and gen_adj.
  const A = labelGraph(labels, S, { mode: 'official', tau, p });
  check('eval.out.A', A, need('eval.out.A', [S, S]).data, TOL.graph);
  const adj = normalizeGraph(A, S);
  check('eval.out.adj', adj, need('eval.out.adj', [S, S]).data, TOL.graph);

  beginScope();
  const head = new MlGcnHead(S, D, adj, { kind: 'given', vectors: Float32Array.from(need('input.embeddings', [S, d]).data), dim: d }, hidden);
  try {
    const state = await head.stateDict();
    state.set('gc1.weight', { shape: [d, hidden], data: Float32Array.from(need('param.gc1.weight', [d, hidden]).data) });
    state.set('gc2.weight', { shape: [hidden, D], data: Float32Array.from(need('param.gc2.weight', [hidden, D]).data) });
    head.loadStateDict(state);
    const features = Tensor.from(Float32Array.from(need('input.features', [B, D]).data), [B, D]);
    features.requiresGrad = true;
    check('eval.out.classifiers', await noGrad(() => head.classifiers()).toArray(), need('eval.out.classifiers', [S, D]).data, TOL.out);
    const logits = head.forward(features);
    check('eval.out.logits', await logits.toArray(), need('eval.out.logits', [B, S]).data, TOL.out);
    const loss = F.sum(F.mul(logits, Tensor.from(Float32Array.from(need('loss_weight.logits', [B, S]).data), [B, S])));
    check('eval.out.loss', await loss.toArray(), need('eval.out.loss', []).data, TOL.out);
    backward(loss);
    check('eval.grad.param.gc1.weight', await head.gc1.grad!.toArray(), need('eval.grad.param.gc1.weight', [d, hidden]).data, TOL.grad);
    check('eval.grad.param.gc2.weight', await head.gc2.grad!.toArray(), need('eval.grad.param.gc2.weight', [hidden, D]).data, TOL.grad);
    check('eval.grad.input.features', await features.grad!.toArray(), need('eval.grad.input.features', [B, D]).data, TOL.grad);
  } finally {
    head.release();
    endScope();
  }
  return summarize(file, 'eval', checks);
}
