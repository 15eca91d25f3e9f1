// Parity with the official PyTorch code: for each fixture file, build the module from the file's
// own config, load `param.*` / `buffer.*` by official name, run eval and train mode with the stored
// neighbour indices injected, and compare every stored output, intermediate, gradient and buffer
// update; own neighbour choices are compared row by row as sets, within the file's `knn_report`.
// Max-relative choices (MRConv's argmax over the k neighbours) whose top-two gap is a float32
// near-tie are counted per module: one flipped choice routes a gradient to another neighbour and
// moves upstream gradients by up to ~1e-2 while outputs agree. Files that store the reference's
// choices (`<mode>.maxrel_arg.<module>`) have them injected, and own flips are counted.
import { parseSafetensors, type SafetensorsFile, type TensorRecord } from '../../engine/safetensors.js';
import { Tensor, F, backward, keep, beginScope, endScope } from '../../kernels/index.js';
import { Module, type StateEntry } from '../../models/module.js';
import { Conv2d, BatchNorm2d } from '../../models/layers.js';
import { vigBlock, Grapher, GrapherLabel } from '../../models/vig-blocks.js';
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
  /** Every comparison. */
  checks: { tensor: string; rel_err: number; tol: number; pass: boolean }[];
  /**
   * Max-relative decisions (model files): `fragile` = choices whose own top-two gap is below 1e-5 ×
   * the channel's max |query| (float32 rounding can flip them); `flipped` = own choices that differ
   * from the stored reference ones (null when the file stores none; then the own choices are used),
   * `unexplained` = flipped choices that are not fragile (must be 0); `modules` lists those with any;
   * `note` explains failing gradient checks when near-ties are their likely cause.
   */
  maxrel?: MaxRelReport;
}

export interface MaxRelReport {
  choices: number;
  fragile: number;
  flipped: number | null;
  unexplained: number;
  injected: boolean;
  modules: { module: string; choices: number; fragile: number; flipped: number | null; min_rel_gap: number }[];
  note?: string;
}

/** Relative top-two gap below which a max-relative choice counts as a float32 near-tie. */
export const MAXREL_FRAGILE_GAP = 1e-5;

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
          // The official module's labels are B×S×C; ours run channels first.
          const y = F.transpose(m.forward(F.transpose(inp.get('labels')!, 1, 2), inp.get('features')!), 1, 2);
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
  const maxrelSeen: { path: string; q: Tensor; s: Tensor; idx: Tensor; choice: Tensor | null }[] = [];
  built.root.setTracer({
    output: (path, out) => {
      if (wanted.has(path)) captureInter.set(path, keep(out.view(out.shape)));
    },
    neighbours: (path) => inject.get(path) ?? null,
    ownNeighbours: (path, indices) => ownKnn.set(path, keep(indices.view(indices.shape))),
    maxRelative: (path, q, s, idx) => {
      const stored = recs.get(`${mode}.maxrel_arg.${path}`);
      // Stored as PyTorch's [B·G, C/G, N]: the same memory order as [B, C, N].
      const choice = stored ? keep(Tensor.from(stored.data as Int32Array, q.shape, 'i32')) : null;
      maxrelSeen.push({ path, q: keep(q.view(q.shape)), s: keep(s.view(s.shape)), idx: keep(idx.view(idx.shape)), choice });
      return choice;
    },
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
  // Gradients. Only the analytically-zero ones (train mode, see analyticallyZeroGrads) are compared
  // against a floor, 1e-2 × the largest parameter gradient (fixture README); the stored values of
  // those are float32 noise (~1e-7 of the largest gradient).
  const params = new Map(built.root.namedParameters());
  let maxParamGrad = 0;
  for (const [k, r] of recs) if (k.startsWith(`${mode}.grad.param.`)) for (const v of r.data) maxParamGrad = Math.max(maxParamGrad, Math.abs(v));
  const zeroGrads = mode === 'train' ? analyticallyZeroGrads(built.root) : new Set<string>();
  for (const [k, r] of recs) {
    if (k.startsWith(`${mode}.grad.param.`)) {
      const name = k.slice(`${mode}.grad.param.`.length);
      const p = params.get(name);
      if (!p) throw new FixtureError(`${file}: gradient for unknown parameter ${name}`);
      if (!p.grad) {
        checks.push({ tensor: k, rel_err: Infinity, tol: tol.grad, pass: false });
        continue;
      }
      check(k, await p.grad.toArray(), r.data, tol.grad, zeroGrads.has(name) ? 1e-2 * maxParamGrad : 0);
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
  const maxrel = maxrelSeen.length ? await maxRelReport(maxrelSeen, checks) : undefined;
  for (const t of [...outs.values(), ...inputs.values(), ...captureInter.values()]) t.release();
  for (const p of params.values()) {
    p.grad?.release();
    p.grad = null;
  }
  const report = summarize(file, mode, checks, { rows, mismatched, allowed });
  if (maxrel) {
    report.maxrel = maxrel;
    report.pass &&= maxrel.unexplained === 0;
  }
  return report;
}

/**
 * Parameters whose train-mode gradient is analytically zero: a per-channel constant they add is
 * removed by a train-mode BN downstream. (1) `<conv>.bias` of a Conv2d whose next sibling is a
 * BatchNorm2d; (2) the BN bias of a Grapher's / GrapherLabel's `fc1`: its output q only reaches the
 * KNN (no gradient) and max-relative (max(s − q) with s pooled from q, or [q, max(y − q)] for labels),
 * both interleaved into the grouped conv → BN of `graph_conv`, so a shift of q cancels there.
 */
function analyticallyZeroGrads(root: Module): Set<string> {
  const mods = new Map<string, Module>();
  for (const [name, m] of root.namedModules()) mods.set(name.replace(/\.$/, ''), m);
  const out = new Set<string>();
  for (const [name, m] of mods) {
    const at = /^(.*\.)?(\d+)$/.exec(name);
    if (m instanceof Conv2d && at && mods.get(`${at[1] ?? ''}${+at[2] + 1}`) instanceof BatchNorm2d) out.add(`${name}.bias`);
    const fc1 = /^(.*)\.fc1\.1$/.exec(name);
    const owner = fc1 ? mods.get(fc1[1]) : undefined;
    if (m instanceof BatchNorm2d && (owner instanceof Grapher || owner instanceof GrapherLabel)) out.add(`${name}.bias`);
  }
  // (3) Pyramid ViG's last stage: its residual stream reaches the loss only through GAP → conv → BN
  // (`prediction.0/.1`) and, inside the blocks, through fc1 conv → BN, so the BN biases that add to
  // that stream (the last Downsample's and every fc2's) cancel. Earlier stages meet a zero-padded
  // 3×3 Downsample, which does not pass a constant through, so they are not zero.
  for (const [name, m] of mods) {
    const head = /^(.*\.)?prediction\.1$/.exec(name);
    if (!(m instanceof BatchNorm2d) || !head) continue;
    const pre = `${head[1] ?? ''}backbone.`;
    let last = -1;
    for (const n of mods.keys()) {
      const ds = n.startsWith(pre) ? /^(\d+)\.conv\.1$/.exec(n.slice(pre.length)) : null;
      if (ds) last = Math.max(last, +ds[1]);
    }
    if (last < 0) continue;
    out.add(`${pre}${last}.conv.1.bias`);
    for (let i = last + 1; mods.has(`${pre}${i}`); i++) for (const j of [0, 1]) if (mods.get(`${pre}${i}.${j}.fc2.1`) instanceof BatchNorm2d) out.add(`${pre}${i}.${j}.fc2.1.bias`);
  }
  return out;
}

/**
 * Own max-relative decisions per module, on the CPU from the inputs the module saw (float32, as the
 * kernel: v_t = fround(s − q), first maximum): fragile near-ties, and flips against stored choices.
 */
async function maxRelReport(seen: { path: string; q: Tensor; s: Tensor; idx: Tensor; choice: Tensor | null }[], checks: FileReport['checks']): Promise<MaxRelReport> {
  const rep: MaxRelReport = { choices: 0, fragile: 0, flipped: null, unexplained: 0, injected: false, modules: [] };
  for (const { path, q, s, idx, choice } of seen) {
    const [B, C, N] = q.shape;
    const M = s.shape[2];
    const k = idx.shape[2];
    const G = idx.shape[0] / B;
    const qa = await q.toArray();
    const sa = await s.toArray();
    const ia = await idx.toInt32Array();
    const ref = choice ? await choice.toInt32Array() : null;
    for (const t of [q, s, idx, choice]) t?.release();
    let fragile = 0;
    let flipped = 0;
    let minGap = Infinity;
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++) {
        let scale = 0;
        for (let bb = 0; bb < B; bb++) for (let n = 0; n < N; n++) scale = Math.max(scale, Math.abs(qa[(bb * C + c) * N + n]));
        const row = b * G + Math.floor(c / (C / G));
        for (let n = 0; n < N; n++) {
          const i = (b * C + c) * N + n;
          let best = -Infinity;
          let second = -Infinity;
          let arg = 0;
          for (let t = 0; t < k; t++) {
            const v = Math.fround(sa[(b * C + c) * M + ia[(row * N + n) * k + t]] - qa[i]);
            if (v > best) {
              second = best;
              best = v;
              arg = t;
            } else if (v > second) second = v;
          }
          const gap = k > 1 ? (best - second) / (scale || 1) : Infinity;
          minGap = Math.min(minGap, gap);
          const isFragile = gap < MAXREL_FRAGILE_GAP;
          if (isFragile) fragile++;
          if (ref && ref[i] !== arg) {
            flipped++;
            if (!isFragile) rep.unexplained++;
          }
        }
      }
    rep.choices += B * C * N;
    rep.fragile += fragile;
    if (ref) {
      rep.injected = true;
      rep.flipped = (rep.flipped ?? 0) + flipped;
    }
    if (fragile || flipped) rep.modules.push({ module: path, choices: B * C * N, fragile, flipped: ref ? flipped : null, min_rel_gap: minGap });
  }
  const gradFails = checks.filter((c) => !c.pass && c.tensor.includes('.grad.'));
  const otherFails = checks.filter((c) => !c.pass && !c.tensor.includes('.grad.'));
  if (gradFails.length && !otherFails.length && rep.fragile > 0 && !rep.injected) {
    rep.note =
      `${gradFails.length} gradient check(s) fail while outputs agree, with ${rep.fragile} max-relative near-tie(s) ` +
      `(${rep.modules.map((m) => `${m.module}: ${m.fragile}`).join(', ')}): a flipped choice sends its gradient to ` +
      'another neighbour, which moves the gradients of that block and everything upstream of it; the file stores no ' +
      'reference choices to inject, so this is float32 tie-breaking, not a kernel error, if the failures lie upstream of those modules';
  }
  return rep;
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

/** The last path component (no node:path: the harness also runs in a page). */
function basename(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/** Run one fixture held in memory (e.g. fetched by a page); `label` names it in the report. */
export async function parityBytes(bytes: Uint8Array, label: string): Promise<FileReport[]> {
  let file: SafetensorsFile;
  try {
    file = parseSafetensors(bytes, label);
  } catch (e) {
    throw new FixtureError((e as Error).message);
  }
  return parityParsed(label, file);
}

/** Run one parsed fixture (parity-file.ts reads files for Node). */
export async function parityParsed(path: string, file: SafetensorsFile): Promise<FileReport[]> {
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
