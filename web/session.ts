// What the page does with the engine, without the DOM: a model in training (step by step, so the
// page can pause), evaluation (val mAP), prediction with the model's KNN graphs, and fixture parity.
import { init, device, Tensor, F, backward, beginScope, endScope, keep, noGrad } from '../kernels/index.js';
import { buildModel, gkgnetLoss, GrapherLabel, type MultiLabelModel, type Module } from '../models/index.js';
import { AdamW, decayGroups } from '../train/optim.js';
import { learningRate, type ScheduleConfig } from '../train/schedule.js';
import { MetricAccumulator } from '../train/metrics.js';
import { parityBytes, type FileReport } from '../train/parity/parity.js';
import { CLASSES, stack, type PageSample } from './data.js';

export const MODELS: Record<string, { label: string; model: string; size: number; lr: number; batch: number }> = {
  'gkgnet-tiny': { label: 'GKGNet tiny (widths 8/16/32/48, k = 4), 64 px', model: 'gkgnet-tiny', size: 64, lr: 5e-3, batch: 16 },
  'gkgnet-mini': { label: 'GKGNet mini (widths 16/24/32/48, k = 4), 64 px', model: 'gkgnet-mini', size: 64, lr: 5e-3, batch: 16 },
  'mlvig-tiny': { label: 'ML-ViG tiny, 64 px', model: 'mlvig-tiny', size: 64, lr: 5e-3, batch: 16 },
};

/** The block fixtures the page checks (served from test/fixtures/ by scripts/serve-web.mjs). */
export const BLOCK_FIXTURES = ['gkg_block_self', 'gkg_cross', 'vig_block', 'gkg_block_xy'];

export async function startEngine(): Promise<{ adapter: string; limits: Record<string, number>; features: string[] }> {
  if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu); in Chromium start it with --enable-unsafe-webgpu');
  const dev = await init();
  const l = dev.limits;
  return {
    adapter: dev.describe(),
    limits: {
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    },
    features: [...dev.features].sort(),
  };
}

export class Trainer {
  readonly model: MultiLabelModel;
  readonly opt: AdamW;
  readonly size: number;
  step = 0;
  private sched: ScheduleConfig;
  constructor(readonly preset: string, totalSteps: number, seed = 0) {
    const p = MODELS[preset];
    this.size = p.size;
    this.model = buildModel(p.model, { size: p.size, numLabels: CLASSES.length, seed });
    this.opt = new AdamW(decayGroups(this.model.trainableParameters().map(([, t]) => t), 0.05), { lr: p.lr, weightDecay: 0.05 });
    this.sched = { policy: 'cosine', lr: p.lr, warmupIters: Math.max(1, Math.round(totalSteps / 10)), warmupRatio: 0.1, itersPerEpoch: totalSteps, epochs: 1 } as ScheduleConfig;
  }
  /** One optimiser step on `batch`; returns the loss. */
  async trainStep(batch: PageSample[]): Promise<number> {
    this.model.train();
    const { images, targets } = stack(batch);
    const B = batch.length;
    this.opt.lr = learningRate(this.sched, this.step);
    beginScope();
    try {
      const x = Tensor.from(images, [B, 3, this.size, this.size]);
      const t = Tensor.from(targets, [B, CLASSES.length]);
      const { loss } = gkgnetLoss(this.model.forward(x), t);
      backward(loss);
      this.opt.step({ maxGradNorm: 5 });
      this.opt.zeroGrad();
      this.step++;
      return await loss.item();
    } finally {
      endScope();
    }
  }
  /** Sigmoid scores, B × S. */
  async predict(batch: Float32Array, B: number): Promise<Float32Array> {
    this.model.eval({ foldBatchNorm: true });
    beginScope();
    try {
      const probs = noGrad(() => F.sigmoid(this.model.forward(Tensor.from(batch, [B, 3, this.size, this.size]))));
      return await probs.toArray();
    } finally {
      endScope();
    }
  }
  /** COCO-style mAP over `samples` (fractions). */
  async evaluate(samples: PageSample[], batch = 32): Promise<number> {
    const acc = new MetricAccumulator(CLASSES.length);
    for (let i = 0; i < samples.length; i += batch) {
      const part = samples.slice(i, i + batch);
      const { images, targets } = stack(part);
      acc.add(await this.predict(images, part.length), Int8Array.from(targets), part.length);
    }
    return acc.coco().mAP;
  }
  /** Prediction on one image with every KNN graph the forward pass built. */
  async predictWithGraphs(chw: Float32Array): Promise<{ scores: Float32Array; graphs: GraphView[] }> {
    this.model.eval();
    const seen: { path: string; N: number; M: number; idx: Tensor }[] = [];
    this.model.setTracer({
      maxRelative(path, q, s, idx) {
        seen.push({ path: path.replace(/\.gconv$/, ''), N: q.shape[2], M: s.shape[2], idx: keep(idx) });
        return null;
      },
    });
    let scores: Float32Array;
    beginScope();
    try {
      const probs = noGrad(() => F.sigmoid(this.model.forward(Tensor.from(chw, [1, 3, this.size, this.size]))));
      scores = await probs.toArray();
    } finally {
      endScope();
      this.model.setTracer(null);
    }
    const modules = new Map<string, Module>([...this.model.namedModules()].map(([, m]) => [m.path, m]));
    const graphs: GraphView[] = [];
    for (const g of seen) {
      const [rows, N, k] = g.idx.shape;
      const indices = Int32Array.from(await g.idx.toArray());
      g.idx.release();
      const owner = modules.get(g.path.replace(/\.graph_conv$/, ''));
      graphs.push({ path: g.path, cross: owner instanceof GrapherLabel, groups: rows, queries: N, sources: g.M, k, indices });
    }
    return { scores, graphs };
  }
  release(): void {
    this.model.release();
    this.opt.release();
  }
}

/** One KNN graph of a forward pass: `indices[g][query][j]` = source node, for `groups` channel groups. */
export interface GraphView {
  path: string;
  /** The cross-level graph (labels → patches) of GKGNet's GrapherLabel; else patch → patch. */
  cross: boolean;
  groups: number;
  queries: number;
  sources: number;
  k: number;
  indices: Int32Array;
}

export function neighboursOf(g: GraphView, group: number, query: number): number[] {
  const base = (group * g.queries + query) * g.k;
  return Array.from(g.indices.subarray(base, base + g.k));
}

/** Fetches a block fixture and runs its parity (eval and train modes). */
export async function runFixtureParity(name: string, base = '/fixtures/'): Promise<FileReport[]> {
  const res = await fetch(`${base}${name}.safetensors`);
  if (!res.ok) throw new Error(`fixture ${name}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  beginScope();
  try {
    return await parityBytes(bytes, `${name}.safetensors`);
  } finally {
    endScope();
    await device().sync();
  }
}
