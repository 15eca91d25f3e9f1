// The training loop, top to bottom: data → model → optimizer → for each epoch { steps, evaluation,
// metrics line, checkpoints, curves }. A step encodes forward, loss, backward and the fused AdamW
// update, and reads nothing back; losses are copied into a small GPU ring that is read every
// `logEvery` steps (progress, NaN detection).
import { mkdir, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { init, device, Tensor, Rng, F, backward, beginScope, endScope, keep, noGrad } from '../kernels/index.js';
import { buildModel, type MultiLabelModel } from '../models/factory.js';
import { loadPretrainedFile } from '../models/pretrained.js';
import { gkgnetLoss } from '../models/losses.js';
import { defaultLabelEmbeddings, type AdjacencyMode } from '../models/ml-gcn.js';
import { openDataset, type MultiLabelDataset } from './data/dataset.js';
import { BatchLoader } from './data/loader.js';
import { classBalancedIndices } from './data/balance.js';
import { PRESET_AUGMENT } from './data/transforms.js';
import { AdamW } from './optim.js';
import { learningRate, type ScheduleConfig } from './schedule.js';
import { MetricAccumulator } from './metrics.js';
import { saveCheckpoint, loadCheckpoint, type CheckpointMeta } from './checkpoint.js';
import { renderCurves } from './plot.js';
import { writeFileAtomic } from './atomic.js';
import { createProgress, progressIsQuiet } from './progress.js';
import { autoEpochs, type TrainPreset } from './presets.js';

export interface TrainConfig extends Omit<TrainPreset, 'epochs'> {
  /** A number, or 'auto' (resolved once the dataset is open, see autoEpochs()). */
  epochs: number | 'auto';
  preset: string;
  data: string | undefined;
  out: string;
  seed: number;
  workers?: number;
  skipBad: boolean;
  adapter?: string;
  backend?: string;
  /** Project root (the synthetic set is cached under it). */
  root: string;
  /** Stop after this many epochs in this run (tests, --epochs-this-run); the schedule still spans `epochs`. */
  stopAfter?: number;
  resume?: string;
  logEvery: number;
  /** ImageNet Pyramid ViG weights (safetensors) for the model's ViG trunk, loaded at the start of a fresh run. */
  pretrained?: string;
  /** Size of the generated default dataset (tests and quick runs). */
  synthetic?: { train: number; val: number; size: number };
  /** ML-GCN models: the label graph's re-weighting (`--mlgcn-adj`, default 'official'). */
  mlgcnAdj?: AdjacencyMode;
}

export interface EpochRow {
  epoch: number;
  step: number;
  lr: number;
  train_loss: number;
  val_map: number;
  cf1: number;
  of1: number;
  images_per_s: number;
  seconds: number;
}

export interface Summary {
  metric: 'val_map' | 'test_map';
  best: number;
  best_epoch: number;
  final: number;
  final_epoch: number;
  epochs: number;
}

type Log = (line: string) => void;

/** AdamW groups of spec training.md §5: no decay on norms and biases (every 1-D parameter). */
function paramGroups(model: MultiLabelModel, weightDecay: number) {
  const trainable = model.trainableParameters().map(([, t]) => t);
  return [
    { params: trainable.filter((t) => t.rank > 1), weightDecay },
    { params: trainable.filter((t) => t.rank <= 1), weightDecay: 0 },
  ];
}

/** Difficult (−1) labels count as negatives in the loss, as the official loss has no ignore mask. */
function lossTargets(labels: Float32Array): Float32Array {
  return labels.map((v) => (v > 0 ? 1 : 0));
}

export async function evaluate(model: MultiLabelModel, loader: BatchLoader, size: number, numLabels: number, difficult: boolean) {
  model.eval();
  const acc = new MetricAccumulator(numLabels);
  for await (const batch of loader.epoch(0)) {
    const B = batch.indices.length;
    beginScope();
    const probs = noGrad(() => F.sigmoid(model.forward(Tensor.from(batch.images, [B, 3, size, size]))));
    const p = await probs.toArray();
    endScope();
    acc.add(p, Int8Array.from(batch.labels), B);
  }
  if (difficult) {
    // mmcls variant with difficult labels; it reports percent.
    const m = acc.mmcls();
    return { mAP: m.mAP / 100, CF1: m.thr.CF1 / 100, OF1: m.thr.OF1 / 100, apPerClass: m.apPerClass, table: m };
  }
  const m = acc.coco();
  return { mAP: m.mAP, CF1: m.CF1, OF1: m.OF1, apPerClass: m.apPerClass, table: m };
}

export async function train(cfg: TrainConfig, log: Log = (l) => process.stdout.write(`${l}\n`)): Promise<Summary> {
  const dev = await init({ adapter: cfg.adapter, backend: cfg.backend });
  log(`device: ${dev.describe()}`);

  // ---- data
  const data: MultiLabelDataset = await openDataset(cfg.data, {
    root: cfg.root, seed: cfg.seed, skipBad: cfg.skipBad, log: (m) => log(`warning: ${m}`),
    syntheticTrain: cfg.synthetic?.train, syntheticVal: cfg.synthetic?.val, syntheticSize: cfg.synthetic?.size,
  });
  const S = data.classes.length;
  const epochs = cfg.epochs === 'auto' ? autoEpochs(data.train.length, cfg.data === undefined) : cfg.epochs;
  log(`data: ${data.name}: ${data.train.length} train / ${data.val.length} ${data.valIsTest ? 'test' : 'val'} images, ${S} classes`);
  const augTrain = { ...PRESET_AUGMENT[cfg.augment], size: cfg.size, mean: cfg.mean, std: cfg.std };
  const augEval = { ...PRESET_AUGMENT.none, size: cfg.size, mean: cfg.mean, std: cfg.std };
  const trainLoader = new BatchLoader(data.train, {
    batchSize: cfg.batch, augment: augTrain, seed: cfg.seed, shuffle: true, dropLast: data.train.length >= cfg.batch,
    workers: cfg.workers, skipBad: cfg.skipBad, indices: cfg.classBalance ? classBalancedIndices(data.train) : undefined,
    onBad: (p, e) => log(`warning: skipped ${p}: ${e.message}`),
  });
  const valLoader = new BatchLoader(data.val, { batchSize: cfg.batch, augment: augEval, workers: cfg.workers, skipBad: cfg.skipBad });

  // ---- model and optimizer
  // An ML-GCN head: the graph per --mlgcn-adj; GloVe label vectors for COCO / VOC class names, else one-hot.
  const mlgcn = cfg.model.endsWith('-mlgcn');
  const emb = mlgcn ? defaultLabelEmbeddings(data.classes) : undefined;
  const mlgcnAdj = cfg.mlgcnAdj ?? 'official';
  if (emb) log(`ml-gcn: ${mlgcnAdj} label graph (--mlgcn-adj), label embeddings: ${emb.description}`);
  const model = buildModel(cfg.model, {
    size: cfg.size, numLabels: S, dropPath: cfg.dropPath, seed: cfg.seed, trainLabels: data.train.map((s) => s.labels),
    labelEmbeddings: emb?.embeddings, mlgcnAdj,
  });
  if (cfg.pretrained && !cfg.resume) for (const line of await loadPretrainedFile(model, cfg.pretrained)) log(line);
  const opt = new AdamW(paramGroups(model, cfg.weightDecay), { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const iters = trainLoader.batchesPerEpoch;
  const sched: ScheduleConfig = { ...cfg.schedule, lr: cfg.lr, warmupIters: Math.round(cfg.schedule.warmupEpochs * iters), itersPerEpoch: iters, epochs };
  const dropPathRng = new Rng(cfg.seed + 1);
  model.setGenerator(dropPathRng);

  // ---- state (fresh or resumed)
  await mkdir(cfg.out, { recursive: true });
  let startEpoch = 0;
  let step = 0;
  let history: EpochRow[] = [];
  let best = { map: -1, epoch: -1 };
  if (cfg.resume) {
    const ck = await loadCheckpoint(join(cfg.resume, 'last.safetensors'));
    if (!ck.meta) throw new Error(`--resume ${cfg.resume}: last.safetensors has no training metadata`);
    model.loadStateDict(ck.model);
    opt.loadStateDict(ck.optimizer);
    dropPathRng.setState(ck.meta.rng as number[]);
    startEpoch = ck.meta.epoch;
    step = ck.meta.step;
    history = ck.meta.history as EpochRow[];
    best = ck.meta.best as typeof best;
    log(`resumed from ${cfg.resume} at epoch ${startEpoch}, step ${step}`);
  }
  const { resume: _r, ...resolved } = cfg;
  await writeFileAtomic(join(cfg.out, 'config.json'), `${JSON.stringify({ ...resolved, mlgcnAdj, ...(emb ? { label_embeddings: emb.source } : {}), epochs, classes: data.classes, iters_per_epoch: iters }, null, 2)}\n`);
  // metrics.jsonl holds exactly the epochs of the checkpoint we continue from.
  await writeFileAtomic(join(cfg.out, 'metrics.jsonl'), history.map((r) => JSON.stringify(r)).join('\n') + (history.length ? '\n' : ''));

  const ring = keep(Tensor.empty([cfg.logEvery], 'f32', 'loss ring'));
  const lastEpoch = Math.min(epochs, startEpoch + (cfg.stopAfter ?? epochs));
  const metric = data.valIsTest ? 'test_map' : 'val_map';
  for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
    // ---- train one epoch
    model.train();
    const t0 = performance.now();
    const bar = createProgress(iters * cfg.batch, { label: `epoch ${epoch + 1}/${epochs}` });
    let lossSum = 0;
    let lossCount = 0;
    let inRing = 0;
    let images = 0;
    const drainRing = async () => {
      const values = (await ring.toArray()).subarray(0, inRing);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) {
          const at = step - inRing + i;
          throw new Error(
            `loss became ${values[i]} at step ${at} (epoch ${epoch + 1}); training stopped. ` +
              `Last good checkpoint: ${existsSync(join(cfg.out, 'last.safetensors')) ? join(cfg.out, 'last.safetensors') : 'none yet'}. ` +
              `Likely cause: the learning rate (${opt.lr.toExponential(2)}) is too high for this model/batch, or a corrupt input.`,
          );
        }
        lossSum += values[i];
      }
      lossCount += values.length;
      inRing = 0;
    };
    for await (const batch of trainLoader.epoch(epoch)) {
      const B = batch.indices.length;
      opt.lr = learningRate(sched, step);
      beginScope();
      const x = Tensor.from(batch.images, [B, 3, cfg.size, cfg.size]);
      const t = Tensor.from(lossTargets(batch.labels), [B, S]);
      const { loss } = gkgnetLoss(model.forward(x), t);
      backward(loss);
      opt.step({ maxGradNorm: cfg.maxGradNorm });
      opt.zeroGrad();
      device().copy(loss.pooled, 0, ring.pooled, 4 * inRing++, 4);
      endScope();
      step++;
      images += B;
      if (inRing === cfg.logEvery) {
        await drainRing();
        bar.tick(cfg.logEvery * cfg.batch, { loss: (lossSum / lossCount).toFixed(4), lr: opt.lr.toExponential(2) });
      }
    }
    if (inRing > 0) await drainRing();
    await device().sync();
    const seconds = (performance.now() - t0) / 1000;
    bar.stop();

    // ---- evaluate
    const ev = await evaluate(model, valLoader, cfg.size, S, data.hasDifficult);
    const row: EpochRow = {
      epoch: epoch + 1, step, lr: opt.lr, train_loss: lossSum / Math.max(1, lossCount),
      val_map: ev.mAP, cf1: ev.CF1, of1: ev.OF1, images_per_s: images / seconds, seconds,
    };
    history.push(row);
    log(
      `epoch ${row.epoch}/${epochs}  loss ${row.train_loss.toFixed(4)}  ${metric === 'test_map' ? 'test' : 'val'} mAP ${(row.val_map * 100).toFixed(2)}  ` +
        `CF1 ${(row.cf1 * 100).toFixed(2)}  OF1 ${(row.of1 * 100).toFixed(2)}  ${row.images_per_s.toFixed(1)} img/s  ${seconds.toFixed(1)} s`,
    );
    await appendFile(join(cfg.out, 'metrics.jsonl'), `${JSON.stringify(row)}\n`);

    // ---- checkpoints (atomic) and curves
    const improved = row.val_map > best.map;
    if (improved) best = { map: row.val_map, epoch: row.epoch };
    const meta: CheckpointMeta = {
      epoch: epoch + 1, step, rng: dropPathRng.getState(), history, best,
      model: cfg.model, size: cfg.size, classes: data.classes, preset: cfg.preset, seed: cfg.seed, synthetic: cfg.synthetic,
    };
    const optState = await opt.stateDict();
    await saveCheckpoint(join(cfg.out, 'last.safetensors'), model, optState, meta);
    if (improved) await saveCheckpoint(join(cfg.out, 'best.safetensors'), model, optState, meta);
    await renderCurves(history.map((r) => ({ epoch: r.epoch, trainLoss: r.train_loss, valMap: r.val_map })), join(cfg.out, 'curves.png'));
  }
  await Promise.all([trainLoader.close(), valLoader.close()]);
  ring.release();

  const final = history[history.length - 1];
  const summary: Summary = {
    metric,
    best: Math.max(0, best.map),
    best_epoch: best.epoch,
    final: final?.val_map ?? 0,
    final_epoch: final?.epoch ?? 0,
    epochs: history.length,
  };
  await writeFileAtomic(join(cfg.out, 'summary.json'), `${JSON.stringify({ [metric]: { best: summary.best, best_epoch: summary.best_epoch, final: summary.final, final_epoch: summary.final_epoch }, epochs: summary.epochs, out: cfg.out }, null, 2)}\n`);
  if (!progressIsQuiet()) log('');
  log(`done: best ${metric} ${(summary.best * 100).toFixed(2)} (epoch ${summary.best_epoch}), final ${(summary.final * 100).toFixed(2)}; outputs in ${cfg.out}`);
  return summary;
}
