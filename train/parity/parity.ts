// Parity with the official PyTorch code: for each fixture file, build the module from the file's
// own config, load `param.*` / `buffer.*` by official name, run eval and train mode with the stored
// neighbour indices injected, and compare every stored output, intermediate, gradient and buffer
// update; own neighbour choices are compared row by row as sets, within the file's `knn_report`.
import { basename } from 'node:path';
import { readSafetensors, type TensorRecord } from '../../engine/safetensors.js';
import { Tensor, F, backward, keep, beginScope, endScope } from '../../kernels/index.js';
import { Module, type StateEntry } from '../../models/module.js';
import { vigBlock, GrapherLabel } from '../../models/vig-blocks.js';
import { PyramidVig } from '../../models/pyramid-vig.js';
import { Gkgnet } from '../../models/gkgnet.js';
import { gkgnetLoss } from '../../models/losses.js';
import { parityLosses } from './losses.js';
import { parityMlgcn } from './mlgcn.js';
import { relErr } from './rel-err.js';
import { cocoMetrics, mmclsMetrics } from '../metrics.js';

export interface FileReport {
  file: string;
  mode: string;
  pass: boolean;
  knn: { rows: number; mismatched: number; allowed: number };
  worst: { tensor: string; rel_err: number; tol: number };
  /** Every comparison (for the readable report). */
  checks: { tensor: string; rel_err: number; tol: number; pass: boolean }[];
}

export interface ParityReport {
  pass: boolean;
  files: FileReport[];
}

/** A fixture that cannot be interpreted (unknown type, malformed file): exit code 2. */
export class FixtureError extends Error {}

type Records = Map<string, TensorRecord>;

const TOL = {
  module: { out: 1e-4, grad: 1e-3 },
  net: { out: 1e-3, grad: 5e-3 },
  exact: { out: 1e-5, grad: 1e-5 },
};

function parseJson(file: string, meta: Record<string, string>, key: string): Record<string, unknown> {
  if (meta[key] === undefined) throw new FixtureError(`${file}: __metadata__ has no "${key}"`);
  try {
    return JSON.parse(meta[key]) as Record<string, unknown>;
  } catch {
    throw new FixtureError(`${file}: __metadata__.${key} is not valid JSON`);
  }
}

function num(file: string, cfg: Record<string, unknown>, key: string): number {
  const v = cfg[key];
  if (typeof v !== 'number') throw new FixtureError(`${file}: config.${key} missing or not a number`);
  return v;
}

function nums(file: string, cfg: Record<string, unknown>, key: string): number[] {
  const v = cfg[key];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new FixtureError(`${file}: config.${key} missing or not a list of numbers`);
  return v as number[];
}

function need(file: string, recs: Records, name: string): TensorRecord {
  const r = recs.get(name);
  if (!r) throw new FixtureError(`${file}: tensor ${name} is missing`);
  return r;
}

/** Wrappers that give the block fixtures their key prefixes (`block.*`, `m.*`, `net.*`). */
class Wrap<M extends Module> extends Module {
  readonly inner: M;
  constructor(name: string, inner: M) {
    super();
    this.inner = this.addChild(name, inner);
  }
}

interface Built {
  root: Module;
  /** Inputs by fixture name; those that get a gradient are marked. */
  inputs: string[];
  /** Runs the forward and returns named outputs and the scalar loss. */
  run(inputs: Map<string, Tensor>, recs: Records, mode: string): { outs: Map<string, Tensor>; loss: Tensor };
  tol: { out: number; grad: number };
}

function weightedLoss(out: Tensor, w: Tensor): Tensor {
  return F.sum(F.mul(out, w));
}

function tensorOf(r: TensorRecord): Tensor {
  return r.data instanceof Int32Array ? Tensor.from(r.data, r.shape, 'i32') : Tensor.from(r.data as Float32Array, r.shape);
}

function build(file: string, kind: string, cfg: Record<string, unknown>, recs: Records): Built {
  switch (kind) {
    case 'gkg_block_xy':
    case 'gkg_block_self':
    case 'vig_block': {
      const C = num(file, cfg, 'C');
      const H = num(file, cfg, 'H');
      const W = num(file, cfg, 'W');
      const groups = kind === 'vig_block' ? 1 : num(file, cfg, 'groups');
      const block = vigBlock(C, {
        k: num(file, cfg, 'k'),
        dilation: num(file, cfg, 'dilation'),
        groups,
        r: num(file, cfg, 'r'),
        nodes: H * W,
        relativePos: cfg.relative_pos !== false,
        dropPath: 0,
      });
      const root = new Wrap('block', block);
      return {
        root,
        inputs: ['x'],
        tol: TOL.module,
        run: (inp) => {
          const y = block.call(inp.get('x')!);
          return { outs: new Map([['y', y]]), loss: weightedLoss(y, tensorOf(need(file, recs, 'loss_weight.y'))) };
        },
      };
    }
    case 'gkg_cross': {
      const m = new GrapherLabel(num(file, cfg, 'C'), num(file, cfg, 'k'), num(file, cfg, 'groups'), 0);
      const root = new Wrap('m', m);
      return {
        root,
        inputs: ['labels', 'features'],
        tol: TOL.module,
        run: (inp) => {
          const y = m.forward(inp.get('labels')!, inp.get('features')!);
          return { outs: new Map([['y', y]]), loss: weightedLoss(y, tensorOf(need(file, recs, 'loss_weight.y'))) };
        },
      };
    }
    case 'vig_net': {
      const net = new PyramidVig({
        channels: nums(file, cfg, 'channels'),
        blocks: nums(file, cfg, 'blocks'),
        size: typeof cfg.size === 'number' ? cfg.size : 224,
        k: num(file, cfg, 'k'),
        groups: 1,
        reduceRatios: nums(file, cfg, 'reduce_ratios'),
        dropPath: 0,
        relativePos: true,
        numClasses: num(file, cfg, 'n_classes'),
        headHidden: typeof cfg.head_hidden === 'number' ? cfg.head_hidden : 1024,
      });
      checkDilations(file, cfg, net.config.blocks, net.config.k);
      const root = new Wrap('net', net);
      return {
        root,
        inputs: ['img'],
        tol: TOL.net,
        run: (inp) => {
          const y = net.forward(inp.get('img')!);
          return { outs: new Map([['logits', y]]), loss: weightedLoss(y, tensorOf(need(file, recs, 'loss_weight.logits'))) };
        },
      };
    }
    case 'gkg_net': {
      const net = new Gkgnet({
        channels: nums(file, cfg, 'channels'),
        blocks: nums(file, cfg, 'blocks'),
        size: num(file, cfg, 'size'),
        k: num(file, cfg, 'k'),
        kLabel: typeof cfg.k_label_gcn === 'number' ? cfg.k_label_gcn : num(file, cfg, 'k'),
        groups: num(file, cfg, 'num_group'),
        reduceRatios: nums(file, cfg, 'reduce_ratios'),
        dropPath: 0,
        relativePos: true,
        numLabels: num(file, cfg, 'S'),
      });
      checkDilations(file, cfg, net.config.blocks, net.config.k);
      return {
        root: net,
        inputs: ['img'],
        tol: TOL.net,
        run: (inp) => {
          const { clsScore, labels, gap } = net.forwardAll(inp.get('img')!);
          const target = need(file, recs, 'input.target_gt_label');
          const l = gkgnetLoss(clsScore, Tensor.from(Float32Array.from(target.data), target.shape));
          const outs = new Map([
            ['label_embeddings', labels],
            ['gap', gap],
            ['cls_score', clsScore],
            ['prob', F.sigmoid(clsScore)],
            ['loss_bce', l.bce],
            ['loss_asy_x10', l.asymmetricX10],
          ]);
          return { outs, loss: l.loss };
        },
      };
    }
    default:
      throw new FixtureError(`${file}: unknown fixture type "${kind}"`);
  }
}

/** Our dilation schedule must equal the file's (it is derived, not configurable, in the official code). */
function checkDilations(file: string, cfg: Record<string, unknown>, blocks: number[], k: number): void {
  if (!Array.isArray(cfg.dilations)) return;
  const total = blocks.reduce((a, b) => a + b, 0);
  const ours = Array.from({ length: total }, (_, i) => Math.min(Math.floor(i / 4) + 1, Math.floor(49 / k)));
  if (ours.join() !== (cfg.dilations as number[]).join()) {
    throw new FixtureError(`${file}: config.dilations [${cfg.dilations}] differ from the official schedule [${ours}]`);
  }
}

function stateFrom(recs: Records): Map<string, StateEntry> {
  const state = new Map<string, StateEntry>();
  for (const [k, r] of recs) {
    const m = /^(param|buffer)\.(.*)$/.exec(k);
    if (m) state.set(m[2], { shape: r.shape, data: r.data as Float32Array | Int32Array });
  }
  return state;
}

/** Compare own neighbour sets with the stored ones, row by row. */
function knnMismatches(own: Int32Array, ref: Int32Array, k: number): number {
  let bad = 0;
  for (let r = 0; r < ref.length / k; r++) {
    const a = Array.from(own.subarray(r * k, (r + 1) * k)).sort((x, y) => x - y).join();
    const b = Array.from(ref.subarray(r * k, (r + 1) * k)).sort((x, y) => x - y).join();
    if (a !== b) bad++;
  }
  return bad;
}

async function runModelFile(file: string, kind: string, meta: Record<string, string>, recs: Records): Promise<FileReport[]> {
  const cfg = parseJson(file, meta, 'config');
  const knnReport = meta.knn_report ? (parseJson(file, meta, 'knn_report') as Record<string, Record<string, Record<string, number>>>) : {};
  const reports: FileReport[] = [];
  beginScope();
  const built = build(file, kind, cfg, recs);
  const state = stateFrom(recs);
  try {
    for (const mode of ['eval', 'train']) {
      if (![...recs.keys()].some((k) => k.startsWith(`${mode}.`))) continue;
      const missing = built.root.loadStateDict(state, { strict: false }).missing.filter((k) => !k.endsWith('num_batches_tracked'));
      if (missing.length) throw new FixtureError(`${file}: parameters missing from the file: ${missing.slice(0, 5).join(', ')}`);
      built.root.train(mode === 'train');
      reports.push(await runMode(file, mode, built, recs, knnReport[mode] ?? {}));
    }
  } finally {
    built.root.release();
    endScope();
  }
  return reports;
}

async function runMode(file: string, mode: string, built: Built, recs: Records, knnReport: Record<string, Record<string, number>>): Promise<FileReport> {
  const checks: FileReport['checks'] = [];
  const inject = new Map<string, Tensor>();
  for (const [k, r] of recs) if (k.startsWith(`${mode}.knn.`)) inject.set(k.slice(mode.length + 5), keep(tensorOf(r)));
  const captureInter = new Map<string, Tensor>();
  const wanted = new Set([...recs.keys()].filter((k) => k.startsWith(`${mode}.inter.`)).map((k) => k.slice(mode.length + 7)));
  const ownKnn = new Map<string, Tensor>();
  built.root.setTracer({
    output: (path, out) => {
      if (wanted.has(path)) captureInter.set(path, keep(out.view(out.shape)));
    },
    neighbours: (path) => inject.get(path) ?? null,
    ownNeighbours: (path, indices) => ownKnn.set(path, keep(indices.view(indices.shape))),
  });
  const inputs = new Map<string, Tensor>();
  let outs: Map<string, Tensor>;
  let loss: Tensor;
  try {
    beginScope();
    for (const name of built.inputs) {
      const t = tensorOf(need(file, recs, `input.${name}`));
      if (recs.has(`${mode}.grad.input.${name}`)) t.requiresGrad = true;
      inputs.set(name, keep(t));
    }
    ({ outs, loss } = built.run(inputs, recs, mode));
    outs.set('loss', loss);
    for (const t of outs.values()) keep(t);
    backward(loss);
    endScope();
  } finally {
    built.root.setTracer(null);
  }
  const tol = built.tol;
  const check = (tensor: string, a: ArrayLike<number>, b: ArrayLike<number>, t: number, floor = 0) => {
    const e = a.length === b.length ? relErr(a, b, floor) : Infinity;
    checks.push({ tensor, rel_err: e, tol: t, pass: e <= t });
  };
  // Outputs and intermediates. The scalar Σ out ⊙ W of the module files cancels heavily (|Σ| can be
  // 1e-4 of Σ|out ⊙ W|), and float32 summation error scales with the terms, not with the sum: it is
  // compared relative to Σ|out ⊙ W|, while `out` itself is compared element by element.
  let lossFloor = 0;
  for (const [name, t] of outs) {
    const w = recs.get(`loss_weight.${name}`);
    if (!w) continue;
    const v = await t.toArray();
    for (let i = 0; i < v.length; i++) lossFloor += Math.abs(v[i] * w.data[i]);
  }
  for (const [name, t] of outs) {
    const ref = recs.get(`${mode}.out.${name}`);
    if (ref) check(`${mode}.out.${name}`, await t.toArray(), ref.data, tol.out, name === 'loss' ? lossFloor : 0);
  }
  for (const [path, t] of captureInter) check(`${mode}.inter.${path}`, await t.toArray(), need(file, recs, `${mode}.inter.${path}`).data, tol.out);
  // Gradients, against a floor for analytically-zero ones (README: 1e-2 × the largest parameter gradient).
  const params = new Map(built.root.namedParameters());
  let maxParamGrad = 0;
  for (const [k, r] of recs) if (k.startsWith(`${mode}.grad.param.`)) for (const v of r.data) maxParamGrad = Math.max(maxParamGrad, Math.abs(v));
  const floor = 1e-2 * maxParamGrad;
  for (const [k, r] of recs) {
    if (k.startsWith(`${mode}.grad.param.`)) {
      const name = k.slice(`${mode}.grad.param.`.length);
      const p = params.get(name);
      if (!p) throw new FixtureError(`${file}: gradient for unknown parameter ${name}`);
      if (!p.grad) {
        checks.push({ tensor: k, rel_err: Infinity, tol: tol.grad, pass: false });
        continue;
      }
      check(k, await p.grad.toArray(), r.data, tol.grad, floor);
    } else if (k.startsWith(`${mode}.grad.input.`)) {
      const t = inputs.get(k.slice(`${mode}.grad.input.`.length));
      if (!t?.grad) checks.push({ tensor: k, rel_err: Infinity, tol: tol.grad, pass: false });
      else check(k, await t.grad.toArray(), r.data, tol.grad);
    }
  }
  // Running statistics after the train-mode forward.
  if (mode === 'train') {
    const state = await built.root.stateDict();
    for (const [k, r] of recs) {
      if (!k.startsWith('train.buffer_after.')) continue;
      const name = k.slice('train.buffer_after.'.length);
      const s = state.get(name);
      if (!s) throw new FixtureError(`${file}: buffer ${name} is not in the model`);
      check(k, s.data, r.data, tol.out);
    }
  }
  // Own neighbour choices vs the stored ones.
  let rows = 0;
  let mismatched = 0;
  let allowed = 0;
  for (const [path, ref] of inject) {
    const own = ownKnn.get(path);
    if (!own) throw new FixtureError(`${file}: no module computed neighbours for ${mode}.knn.${path}`);
    const k = ref.shape[ref.rank - 1];
    rows += ref.size / k;
    mismatched += knnMismatches(await own.toInt32Array(), await ref.toInt32Array(), k);
    const rep = knnReport[path] ?? {};
    allowed += (rep.rows_differ_from_fp64 ?? 0) + (rep.fragile_rows_gap_lt_1e5 ?? 0);
    own.release();
    ref.release();
  }
  for (const t of [...outs.values(), ...inputs.values(), ...captureInter.values()]) t.release();
  for (const p of params.values()) {
    p.grad?.release();
    p.grad = null;
  }
  return summarize(file, mode, checks, { rows, mismatched, allowed });
}

function runMetricsFile(file: string, recs: Records): FileReport {
  const pred = need(file, recs, 'input.pred');
  const [N, S] = pred.shape;
  const checks: FileReport['checks'] = [];
  const cmp = (tensor: string, value: number | number[]) => {
    const ref = recs.get(tensor);
    if (!ref) return;
    const e = relErr(Array.isArray(value) ? value : [value], ref.data);
    checks.push({ tensor, rel_err: e, tol: TOL.exact.out, pass: e <= TOL.exact.out });
  };
  const coco = cocoMetrics(pred.data as Float32Array, need(file, recs, 'input.target').data as Int32Array, N, S);
  for (const [k, v] of Object.entries(coco)) cmp(k === 'apPerClass' ? 'gkg_coco.ap_per_class' : `gkg_coco.${k}`, v as number | number[]);
  for (const [prefix, target] of [['mmcls', 'input.target'], ['mmcls_difficult', 'input.target_with_difficult']] as const) {
    if (!recs.has(target)) continue;
    const m = mmclsMetrics(pred.data as Float32Array, recs.get(target)!.data as Int32Array, N, S);
    cmp(`${prefix}.mAP`, m.mAP);
    cmp(`${prefix}.ap_per_class`, m.apPerClass);
    for (const [k, v] of Object.entries(m.thr)) cmp(`${prefix}.thr0.5.${k}`, v);
    for (const [k, v] of Object.entries(m.top3)) cmp(`${prefix}.top3.${k}`, v);
  }
  return summarize(file, 'none', checks);
}

/** One file×mode report: passes when something was compared, every check passed and own KNN rows differ within the allowance. */
export function summarize(file: string, mode: string, checks: FileReport['checks'], knn = { rows: 0, mismatched: 0, allowed: 0 }): FileReport {
  const worst = checks.reduce((w, c) => (c.rel_err / c.tol > w.rel_err / w.tol ? c : w), { tensor: '', rel_err: 0, tol: 1, pass: true });
  return {
    file: basename(file),
    mode,
    pass: (checks.length > 0 || knn.rows > 0) && checks.every((c) => c.pass) && knn.mismatched <= knn.allowed,
    knn,
    worst: { tensor: worst.tensor, rel_err: worst.rel_err, tol: worst.tol },
    checks,
  };
}

/** Run one fixture file (any type). */
export async function parityFile(path: string): Promise<FileReport[]> {
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    throw new FixtureError((e as Error).message);
  }
  const kind = file.metadata.fixture;
  if (!kind) throw new FixtureError(`${path}: __metadata__ has no "fixture" entry`);
  if (kind === 'metrics') return [runMetricsFile(path, file.tensors)];
  if (kind === 'mlgcn') return [await parityMlgcn(path, file.metadata, file.tensors)];
  if (kind === 'losses') {
    beginScope();
    try {
      return [await parityLosses(path, file.tensors)];
    } finally {
      endScope();
    }
  }
  return runModelFile(path, kind, file.metadata, file.tensors);
}
