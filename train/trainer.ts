// The training loop, top to bottom: data → model → optimizer → for each epoch { steps, evaluation,
// metrics line, checkpoints, curves }. A step encodes forward, loss, backward and the fused AdamW
// update, and reads nothing back; losses are stored into a small GPU ring that is read every
// `logEvery` steps (progress, NaN detection). Steps run through StepReplay (engine/replay.ts): after
// one warm-up step the step is recorded and then replayed while the batch shape stays the same; the
// batch, the ring slot, the learning rate (AdamW's hyper buffer) and drop-path masks reach the
// recorded commands as data.
import { appendFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { init, device, Tensor, Rng, F, backward, keep, StepReplay } from '../kernels/index.js';
import { buildModel, trainingLossFor, inputSizeProblem, type MultiLabelModel } from '../models/factory.js';
import { loadPretrainedFile } from './pretrained-file.js';
import type { AdjacencyMode } from '../models/ml-gcn.js';
import { defaultLabelEmbeddings } from './label-embeddings.js';
import { asRegionModel } from '../models/gm-mlic.js';
import { parseRegionModel } from '../models/regions.js';
import { loadBoxTable } from './box-file.js';
import { openDataset, type MultiLabelDataset } from './data/dataset.js';
import { BatchLoader } from './data/loader.js';
import { classBalancedIndices } from './data/balance.js';
import { PRESET_AUGMENT } from './data/transforms.js';
import { AdamW, decayGroups } from './optim.js';
import { learningRate, type ScheduleConfig } from './schedule.js';
import { MetricAccumulator } from './metrics.js';
import { saveCheckpoint, loadCheckpoint, checkpointEpoch, type CheckpointMeta } from './checkpoint.js';
import { renderCurves } from './plot.js';
import { EvalReplay } from './eval-replay.js';
import { InOrder } from './in-order.js';
import { autotuneEnabled, useTuneCache, tuneNewShapes } from './tune-cache.js';
import { writeFileAtomic, removeStaleTemps } from './atomic.js';
import { lockRunDir, runFilesIn, clearRun } from './run-dir.js';
import { UsageError } from './args.js';
import { createProgress, progressIsQuiet } from './progress.js';
import { autoEpochs, type TrainPreset } from './presets.js';
import { usePrecision, resetPrecision, activationsNote, type Precision } from './precision.js';
import { GradScaler } from '../kernels/grad-scaler.js';

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
  /** Replace a run already in `out` (without it, a folder holding a run is refused unless resumed). */
  overwrite?: boolean;
  /** Resume only: the epochs the run was started with (its config.json), to report a re-spanned schedule. */
  previousEpochs?: number;
  /** ML-GCN models: the label graph's re-weighting (`--mlgcn-adj`, default 'official'). */
  mlgcnAdj?: AdjacencyMode;
  /** Region models with the `-boxes` source: the box file (models/regions.ts). */
  boxes?: string;
  /** --precision (train/precision.ts; default 'fp32'). */
  precision?: Precision;
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


/**
 * Head biases set to the logit of each label's training frequency (clamped to [1 %, 99 %]), so the
 * untrained model predicts the label frequencies instead of 0.5 for every label: the first steps
 * then learn features instead of the label prior. GKGNet's logit is fc1 (label stream) + fc2 (GAP);
 * the prior goes into fc2's bias. Other models: their last Linear bias of size S.
 */
function setPriorBias(model: MultiLabelModel, labels: readonly Int8Array[], S: number): void {
  const bias = new Float32Array(S);
  for (let c = 0; c < S; c++) {
    const p = Math.min(0.99, Math.max(0.01, labels.filter((l) => l[c] > 0).length / Math.max(1, labels.length)));
    bias[c] = Math.log(p / (1 - p));
  }
  const named = model.trainableParameters();
  const target = named.find(([n]) => n === 'head.fc2.bias') ?? [...named].reverse().find(([n, t]) => n.endsWith('bias') && t.rank === 1 && t.size === S);
  target?.[1].write(bias);
}

/** Difficult (−1) labels count as negatives in the loss, as the official loss has no ignore mask. */
function lossTargets(labels: Float32Array): Float32Array {
  return labels.map((v) => (v > 0 ? 1 : 0));
}

export async function evaluate(model: MultiLabelModel, loader: BatchLoader, size: number, numLabels: number, difficult: boolean, samples?: readonly { path: string }[], replay?: EvalReplay) {
  // Conv + BN pairs as one convolution: the scores differ from the unfolded pair's by rounding only.
  model.eval({ foldBatchNorm: true });
  const acc = new MetricAccumulator(numLabels);
  const region = asRegionModel(model);
  const forward = replay ?? new EvalReplay();
  const batches = new InOrder();
  try {
    for await (const batch of loader.epoch(0)) {
      const B = batch.indices.length;
      if (region && samples) region.setImages(batch.indices.map((i) => samples[i].path));
      const labels = Int8Array.from(batch.labels);
      await batches.add(forward.scores(model, batch.images, [B, 3, size, size], numLabels), (p) => acc.add(p, labels, B));
    }
    await batches.done();
  } finally {
    if (!replay) forward.release();
  }
  if (difficult) {
    // mmcls variant with difficult labels; it reports percent.
    const m = acc.mmcls();
    return { mAP: m.mAP / 100, CF1: m.thr.CF1 / 100, OF1: m.thr.OF1 / 100, apPerClass: m.apPerClass, table: m };
  }
  const m = acc.coco();
  return { mAP: m.mAP, CF1: m.CF1, OF1: m.OF1, apPerClass: m.apPerClass, table: m };
}

/**
 * Trains into `cfg.out`, holding the folder's lock (train/run-dir.ts) all along. A folder that holds
 * a run is refused unless resumed or `overwrite`; temporary files of writes a crash interrupted
 * are removed first.
 */
export async function train(cfg: TrainConfig, log: Log = (l) => process.stdout.write(`${l}\n`)): Promise<Summary> {
  const flag = cfg.resume ? '--resume' : '--out';
  const problem = inputSizeProblem(cfg.model, cfg.size);
  if (problem) throw new UsageError(`--size ${cfg.size}: ${problem}`);
  // Before the run folder is touched: an adapter without shader-f16 refuses --precision mixed.
  const tiles = await usePrecision(cfg.precision ?? 'fp32', await init({ adapter: cfg.adapter, backend: cfg.backend }), 'webvig train');
  const scaler = cfg.precision === 'mixed' ? new GradScaler() : undefined;
  try {
    return await trainInDir(cfg, flag, log, scaler, tiles);
  } finally {
    scaler?.release();
    resetPrecision();
  }
}

/** `tiles`: what the matmul and convolution GEMMs run on (train/precision.ts), for the log. */
async function trainInDir(cfg: TrainConfig, flag: string, log: Log, scaler: GradScaler | undefined, tiles: string): Promise<Summary> {
  const lock = await lockRunDir(cfg.out, flag, log);
  // An epoch's files are written while the next epoch trains (the writes mostly wait on fsync).
  const writes = new InOrder();
  try {
    if (!cfg.resume) {
      const present = runFilesIn(cfg.out);
      if (present.length > 0 && !cfg.overwrite) {
        throw new UsageError(
          `--out ${cfg.out}: already holds a run (${present.join(', ')}); continue it with --resume ${cfg.out}, choose a new --out folder, or pass --overwrite to replace it`,
        );
      }
      if (cfg.overwrite && present.length > 0) {
        await clearRun(cfg.out);
        log(`note: --overwrite: removed the previous run in ${cfg.out} (${present.join(', ')})`);
      }
    }
    const stale = await removeStaleTemps(cfg.out);
    if (stale.length > 0) log(`note: removed ${stale.length} temporary file(s) left by an interrupted write in ${cfg.out}: ${stale.join(', ')}`);
    return await trainLocked(cfg, log, scaler, writes, tiles);
  } finally {
    // Never release the folder (or return) with a file still being written.
    await writes.settled();
    await lock.release();
  }
}

/**
 * After a crash the best checkpoint may not match what last.safetensors records as best (a run of
 * an older version wrote last before best; a user may have deleted it). Make them agree: the best
 * epoch is the one whose weights are in best.safetensors (rebuilt from last.safetensors when that
 * holds the best epoch), so summary.json never names a checkpoint that is not on disk.
 */
async function reconcileBest(out: string, lastEpoch: number, history: EpochRow[], best: { map: number; epoch: number }, log: Log) {
  if (best.epoch < 1) return best;
  const bestPath = join(out, 'best.safetensors');
  const onDisk = existsSync(bestPath) ? await checkpointEpoch(bestPath).catch(() => undefined) : undefined;
  if (onDisk === best.epoch) return best;
  if (best.epoch === lastEpoch) {
    await writeFileAtomic(bestPath, await readFile(join(out, 'last.safetensors')));
    log(`note: ${bestPath} ${onDisk === undefined ? 'was missing or unreadable' : `held epoch ${onDisk}`}; rewritten from last.safetensors (the best epoch, ${best.epoch})`);
    return best;
  }
  const row = onDisk === undefined ? undefined : history.find((r) => r.epoch === onDisk);
  const now = row ? { map: row.val_map, epoch: row.epoch } : { map: -1, epoch: -1 };
  log(
    `note: ${bestPath} ${onDisk === undefined ? 'is missing or unreadable' : `holds epoch ${onDisk}`}, not the best epoch ${best.epoch} that last.safetensors records; ` +
      (row ? `best is now epoch ${row.epoch}, the one on disk` : 'the next epoch writes a new best checkpoint'),
  );
  return now;
}

async function trainLocked(cfg: TrainConfig, log: Log, scaler: GradScaler | undefined, writes: InOrder, tiles: string): Promise<Summary> {
  const dev = await init({ adapter: cfg.adapter, backend: cfg.backend });
  log(`device: ${dev.describe()}${scaler ? `; --precision mixed: f16 matmul/conv operands on ${tiles}, ${activationsNote()}, f32 sums and weights, dynamic loss scaling` : ''}`);
  const tuning = autotuneEnabled();
  if (tuning) await useTuneCache((m) => log(`warning: ${m}`));

  // ---- data
  const data: MultiLabelDataset = await openDataset(cfg.data, {
    root: cfg.root, seed: cfg.seed, skipBad: cfg.skipBad, log: (m) => log(`warning: ${m}`),
    syntheticTrain: cfg.synthetic?.train, syntheticVal: cfg.synthetic?.val, syntheticSize: cfg.synthetic?.size,
  });
  const S = data.classes.length;
  const epochs = cfg.epochs === 'auto' ? autoEpochs(data.train.length) : cfg.epochs;
  log(`data: ${data.name}: ${data.train.length} train / ${data.val.length} ${data.valIsTest ? 'test' : 'val'} images, ${S} classes`);
  // Box instances come from the file for the image as stored: no geometric augmentation for them.
  const regionSpec = parseRegionModel(cfg.model);
  const fileBoxes = regionSpec?.source === 'boxes';
  if (fileBoxes && !cfg.boxes) throw new UsageError(`--model ${cfg.model} takes its instances from a box file: give --boxes FILE`);
  if (fileBoxes && cfg.augment !== 'none') log(`note: ${cfg.model}: training without the preset's ${cfg.augment} augmentation, so that the file's boxes stay on their objects`);
  const augTrain = { ...PRESET_AUGMENT[fileBoxes ? 'none' : cfg.augment], size: cfg.size, mean: cfg.mean, std: cfg.std };
  const augEval = { ...PRESET_AUGMENT.none, size: cfg.size, mean: cfg.mean, std: cfg.std };
  const trainLoader = new BatchLoader(data.train, {
    batchSize: cfg.batch, augment: augTrain, seed: cfg.seed, shuffle: true, dropLast: data.train.length >= cfg.batch,
    workers: cfg.workers, skipBad: cfg.skipBad, indices: cfg.classBalance ? classBalancedIndices(data.train) : undefined,
    onBad: (p, e) => log(`warning: skipped ${p}: ${e.message}`),
  });
  const valLoader = new BatchLoader(data.val, { batchSize: cfg.batch, augment: augEval, workers: cfg.workers, skipBad: cfg.skipBad });

  // ---- model and optimizer
  // An ML-GCN head: the graph per --mlgcn-adj; GloVe label vectors for COCO / VOC class names, else one-hot.
  const mlgcn = cfg.model.endsWith('-mlgcn') || regionSpec !== undefined;
  const emb = mlgcn ? defaultLabelEmbeddings(data.classes) : undefined;
  const mlgcnAdj = cfg.mlgcnAdj ?? 'official';
  if (emb && regionSpec) log(`${regionSpec.family}: label vectors: ${emb.description}${regionSpec.family === 'ia-gcn' ? `; ${mlgcnAdj} statistical label graph (--mlgcn-adj)` : ''}`);
  else if (emb) log(`ml-gcn: ${mlgcnAdj} label graph (--mlgcn-adj), label embeddings: ${emb.description}`);
  const model = buildModel(cfg.model, {
    size: cfg.size, numLabels: S, dropPath: cfg.dropPath, seed: cfg.seed, trainLabels: data.train.map((s) => s.labels),
    labelEmbeddings: emb?.embeddings, mlgcnAdj,
  });
  const region = asRegionModel(model);
  if (region && fileBoxes) {
    try {
      region.setBoxTable(await loadBoxTable(cfg.boxes!, [...data.train, ...data.val].map((s) => s.path)));
    } catch (e) {
      model.release();
      throw new UsageError(`--boxes: ${(e as Error).message}`, { cause: e });
    }
  }
  const lossOf = trainingLossFor(model);
  if (cfg.pretrained && !cfg.resume) {
    let lines: string[];
    try {
      lines = await loadPretrainedFile(model, cfg.pretrained);
    } catch (e) {
      model.release();
      throw new UsageError((e as Error).message, { cause: e });
    }
    for (const line of lines) log(line);
  }
  if (cfg.priorBias && !cfg.resume) setPriorBias(model, data.train.map((s) => s.labels), S);
  const opt = new AdamW(decayGroups(model.trainableParameters().map(([, t]) => t), cfg.weightDecay), { lr: cfg.lr, weightDecay: cfg.weightDecay, scaler });
  const iters = trainLoader.batchesPerEpoch;
  const sched: ScheduleConfig = { ...cfg.schedule, lr: cfg.lr, warmupIters: cfg.schedule.warmupIters !== undefined ? Math.min(cfg.schedule.warmupIters, iters) : Math.round(cfg.schedule.warmupEpochs * iters), itersPerEpoch: iters, epochs };
  const dropPathRng = new Rng(cfg.seed + 1);
  model.setGenerator(dropPathRng);

  // ---- state (fresh or resumed)
  let startEpoch = 0;
  let step = 0;
  let history: EpochRow[] = [];
  let best = { map: -1, epoch: -1 };
  if (cfg.resume) {
    const lastPath = join(cfg.resume, 'last.safetensors');
    const bad = (msg: string) => new UsageError(`--resume ${cfg.resume}: ${msg}`);
    let ck: Awaited<ReturnType<typeof loadCheckpoint>>;
    try {
      ck = await loadCheckpoint(lastPath);
    } catch (e) {
      throw bad((e as Error).message);
    }
    const meta = ck.meta;
    if (!meta || !Number.isSafeInteger(meta.epoch) || !Number.isSafeInteger(meta.step) || !Array.isArray(meta.history) || !Array.isArray(meta.rng) || typeof meta.best !== 'object' || meta.best === null) {
      throw bad(`${lastPath} has no training metadata (epoch, step, history, rng, best)`);
    }
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      const msg = (e as Error).message;
      throw bad(msg.startsWith('tensor "') ? `${lastPath}: ${msg}` : `${lastPath}: does not fit model ${cfg.model}: ${msg}`);
    }
    try {
      opt.loadStateDict(ck.optimizer);
    } catch (e) {
      throw bad(`${lastPath}: optimizer state: ${(e as Error).message}`);
    }
    dropPathRng.setState(meta.rng as number[]);
    startEpoch = meta.epoch;
    step = meta.step;
    history = meta.history as EpochRow[];
    best = await reconcileBest(cfg.out, startEpoch, history, meta.best as typeof best, log);
    log(`resumed from ${cfg.resume} at epoch ${startEpoch}, step ${step}`);
    if (cfg.previousEpochs !== undefined && cfg.previousEpochs !== epochs) {
      const before = learningRate({ ...sched, epochs: cfg.previousEpochs, warmupIters: sched.warmupIters }, step);
      const after = learningRate(sched, step);
      log(
        sched.policy === 'cosine'
          ? `note: --epochs ${epochs} (the run was started for ${cfg.previousEpochs}): cosine schedule re-spanned to ${epochs} epochs: lr at the resume point (step ${step}) changes from ${before.toExponential(3)} to ${after.toExponential(3)}`
          : `note: --epochs ${epochs} (the run was started for ${cfg.previousEpochs}): the ${sched.policy} schedule does not depend on the epoch count; lr at the resume point stays ${after.toExponential(3)}`,
      );
    }
  }
  const { resume: _r, overwrite: _o, previousEpochs: _p, ...resolved } = cfg;
  await writeFileAtomic(join(cfg.out, 'config.json'), `${JSON.stringify({ ...resolved, precision: cfg.precision ?? 'fp32', mlgcnAdj, ...(emb ? { label_embeddings: emb.source } : {}), epochs, classes: data.classes, iters_per_epoch: iters }, null, 2)}\n`);
  // metrics.jsonl holds exactly the epochs of the checkpoint we continue from.
  await writeFileAtomic(join(cfg.out, 'metrics.jsonl'), history.map((r) => JSON.stringify(r)).join('\n') + (history.length ? '\n' : ''));

  const ring = keep(Tensor.empty([cfg.logEvery], 'f32', 'loss ring'));
  const replay = new StepReplay({ warmup: 1 });
  const evalReplay = new EvalReplay();
  const slot = new Uint32Array(1);
  const lastEpoch = Math.min(epochs, startEpoch + (cfg.stopAfter ?? epochs));
  const metric = data.valIsTest ? 'test_map' : 'val_map';
  const summarize = (): Summary => {
    const final = history[history.length - 1];
    return {
      metric,
      best: Math.max(0, best.map),
      best_epoch: best.epoch,
      final: final?.val_map ?? 0,
      final_epoch: final?.epoch ?? 0,
      epochs: history.length,
    };
  };
  // Written after the checkpoints it names, so it never points at a file not yet on disk.
  const writeSummary = async (summary: Summary) =>
    writeFileAtomic(join(cfg.out, 'summary.json'), `${JSON.stringify({ [metric]: { best: summary.best, best_epoch: summary.best_epoch, final: summary.final, final_epoch: summary.final_epoch }, epochs: summary.epochs, out: cfg.out }, null, 2)}\n`);
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
          await writes.settled();
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
      slot[0] = inRing++;
      // Everything that changes per step enters as an input or through a producer (engine/replay.ts).
      const inputs = [
        { data: batch.images, shape: [B, 3, cfg.size, cfg.size] },
        { data: lossTargets(batch.labels), shape: [B, S] },
        { data: slot, shape: [1] },
      ];
      // Region models with per-image boxes plan their ROIs on the CPU from the batch's paths.
      region?.setImages(batch.indices.map((i) => data.train[i].path));
      replay.run(inputs, ([x, t, s]) => {
        const { loss } = lossOf(model.forward(x), t);
        // Mixed precision: backward starts from the loss scale (on the GPU) instead of 1.
        backward(loss, scaler?.seed(loss.shape));
        opt.step({ maxGradNorm: cfg.maxGradNorm });
        opt.zeroGrad();
        F.storeAt(ring, loss, s);
      });
      // Shapes met for the first time (first step, a last smaller batch) are timed before the next step.
      if (tuning) await tuneNewShapes();
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
    const ev = await evaluate(model, valLoader, cfg.size, S, data.hasDifficult, data.val, evalReplay);
    const row: EpochRow = {
      epoch: epoch + 1, step, lr: opt.lr, train_loss: lossSum / Math.max(1, lossCount),
      val_map: ev.mAP, cf1: ev.CF1, of1: ev.OF1, images_per_s: images / seconds, seconds,
    };
    history.push(row);
    log(
      `epoch ${row.epoch}/${epochs}  loss ${row.train_loss.toFixed(4)}  ${metric === 'test_map' ? 'test' : 'val'} mAP ${(row.val_map * 100).toFixed(2)}  ` +
        `CF1 ${(row.cf1 * 100).toFixed(2)}  OF1 ${(row.of1 * 100).toFixed(2)}  ${row.images_per_s.toFixed(1)} img/s  ${seconds.toFixed(1)} s`,
    );
    // ---- checkpoints (atomic), then the files that refer to them: metrics, summary, curves.
    // best.safetensors before last.safetensors, whose metadata names the best epoch; a crash
    // between any two writes leaves a folder whose files agree (resume reconciles the rest).
    const improved = row.val_map > best.map;
    if (improved) best = { map: row.val_map, epoch: row.epoch };
    const meta: CheckpointMeta = {
      epoch: epoch + 1, step, rng: dropPathRng.getState(), history: [...history], best,
      model: cfg.model, size: cfg.size, classes: data.classes, ...(cfg.boxes ? { boxes: cfg.boxes } : {}), preset: cfg.preset, seed: cfg.seed, synthetic: cfg.synthetic,
    };
    // Snapshots taken now: the files are written while the next epoch changes the weights.
    const [modelState, optState] = await Promise.all([model.stateDict(), opt.stateDict()]);
    const summary = summarize();
    const curves = history.map((r) => ({ epoch: r.epoch, trainLoss: r.train_loss, valMap: r.val_map }));
    await writes.next(async () => {
      if (improved) await saveCheckpoint(join(cfg.out, 'best.safetensors'), modelState, optState, meta);
      await saveCheckpoint(join(cfg.out, 'last.safetensors'), modelState, optState, meta);
      await appendFile(join(cfg.out, 'metrics.jsonl'), `${JSON.stringify(row)}\n`).catch((e: Error) => {
        throw new Error(`cannot write ${join(cfg.out, 'metrics.jsonl')}: ${e.message}`, { cause: e });
      });
      await writeSummary(summary);
      await renderCurves(curves, join(cfg.out, 'curves.png'));
    });
  }
  await writes.done();
  await Promise.all([trainLoader.close(), valLoader.close()]);
  replay.release();
  evalReplay.release();
  ring.release();

  const summary = summarize();
  await writeSummary(summary);
  if (!progressIsQuiet()) log('');
  log(`done: best ${metric} ${(summary.best * 100).toFixed(2)} (epoch ${summary.best_epoch}), final ${(summary.final * 100).toFixed(2)}; outputs in ${cfg.out}`);
  return summary;
}
