// Multi-label evaluation metrics (spec §7), computed on the CPU in float64 from float32 scores.
// Two upstream flavours are reproduced exactly:
//  - 'gkgnet': GKGNet's COCO.evaluate → get_coco_metrics (fractions; AP with a 1e-8 guard,
//    sklearn precision/recall, top-3 keeps every score tied with the 3rd and applies the 0.5 threshold);
//  - 'mmcls': mmcls mean_ap / average_performance (percent; −1 = difficult, float32-eps guards,
//    top-3 keeps exactly 3 labels per image and no threshold).
// Scores and targets are row-major N×S (image-major). Targets: 1 positive, 0 negative,
// −1 difficult (only the mmcls AP treats −1 differently from 0).

export type Targets = Int8Array | Int32Array | Float32Array;
export type APVariant = 'gkgnet' | 'mmcls';

/** CP…OF1: C = per-class mean, O = overall (micro), P/R/F1 = precision/recall/F1. */
export interface PRF {
  CP: number;
  CR: number;
  CF1: number;
  OP: number;
  OR: number;
  OF1: number;
}

/** GKGNet's get_coco_metrics, all values as fractions (its evaluate() reports them ×100). */
export interface CocoMetrics extends PRF {
  mAP: number;
  CP_top3: number;
  CR_top3: number;
  CF1_top3: number;
  OP_top3: number;
  OR_top3: number;
  OF1_top3: number;
  apPerClass: number[];
}

/** mmcls metrics: mAP and the PRF blocks in percent; apPerClass as fractions (as mmcls returns them). */
export interface MmclsMetrics {
  mAP: number;
  apPerClass: number[];
  /** score ≥ 0.5 */
  thr: PRF;
  /** exactly the 3 best labels per image, no threshold */
  top3: PRF;
}

const THRESHOLD = 0.5;
const FLOAT32_EPS = 2 ** -23; // np.finfo(np.float32).eps

function checkSizes(pred: Float32Array, target: Targets, N: number, S: number) {
  if (!Number.isInteger(N) || !Number.isInteger(S) || N < 0 || S < 1) throw new Error(`metrics: bad sizes N=${N}, S=${S}`);
  if (pred.length !== N * S || target.length !== N * S) {
    throw new Error(`metrics: pred (${pred.length}) and target (${target.length}) must both hold N·S = ${N * S} values`);
  }
}

// ---------------------------------------------------------------------------------------------
// Average precision

/**
 * Scratch for ranking N images by score with the native (comparator-free) BigUint64Array sort:
 * high word = descending score key, low word = tie-break, so sorting 40 000 × 80 stays cheap.
 */
class Ranker {
  private readonly keys: BigUint64Array;
  private readonly words: Uint32Array;
  constructor(private readonly N: number) {
    this.keys = new BigUint64Array(N);
    this.words = new Uint32Array(this.keys.buffer);
  }

  /**
   * Ranks column c of an N×S score matrix, best first; afterwards `image(r)` is the image at rank r.
   * gkgnet sorts with `argsort()[::-1]` (ties: higher image index first), mmcls with
   * `argsort(-pred)` (ties: lower index first, as numpy's stable small-array sort gives).
   */
  rank(bits: Uint32Array, S: number, c: number, variant: APVariant) {
    const { N, words } = this;
    for (let i = 0; i < N; i++) {
      let u = bits[i * S + c];
      if (u === 0x80000000) u = 0; // −0 ties with +0, as in numpy
      // float32 bits → unsigned key increasing with the value; complemented for descending order
      const ascending = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
      words[2 * i] = variant === 'gkgnet' ? N - 1 - i : i; // low word (little-endian)
      words[2 * i + 1] = ~ascending >>> 0;
    }
    this.keys.sort();
  }

  image(r: number, variant: APVariant): number {
    const low = this.words[2 * r];
    return variant === 'gkgnet' ? this.N - 1 - low : low;
  }
}

function classAP(ranker: Ranker, bits: Uint32Array, target: Targets, N: number, S: number, c: number, variant: APVariant) {
  ranker.rank(bits, S, c, variant);
  let tp = 0;
  let counted = 0; // images seen that are not difficult (mmcls) / all images (gkgnet)
  let sum = 0;
  for (let r = 0; r < N; r++) {
    const t = target[ranker.image(r, variant) * S + c];
    if (variant === 'gkgnet' || t !== -1) counted++;
    if (t === 1) {
      tp++;
      sum += tp / Math.max(counted, FLOAT32_EPS);
    }
  }
  return variant === 'gkgnet' ? sum / (tp + 1e-8) : sum / Math.max(tp, FLOAT32_EPS);
}

function bitsOf(pred: Float32Array) {
  return new Uint32Array(pred.buffer, pred.byteOffset, pred.length);
}

function apPerClass(pred: Float32Array, target: Targets, N: number, S: number, variant: APVariant): number[] {
  const ranker = new Ranker(N);
  const bits = bitsOf(pred);
  return Array.from({ length: S }, (_, c) => classAP(ranker, bits, target, N, S, c, variant));
}

/**
 * Average precision of one class from its N scores and targets (§7.1 'gkgnet': non-1 labels are
 * negatives, AP = Σ_{positives} precision@i / (P + 1e-8); §7.2 'mmcls': difficult (−1) images
 * are left out of the precision denominators, guards use float32 eps). Returns a fraction.
 */
export function averagePrecision(scores: Float32Array, target: Targets, variant: APVariant = 'gkgnet'): number {
  checkSizes(scores, target, scores.length, 1);
  return classAP(new Ranker(scores.length), bitsOf(scores), target, scores.length, 1, 0, variant);
}

// ---------------------------------------------------------------------------------------------
// Thresholded / top-k precision and recall

/** Marks the predicted-positive labels of one image (scores p[o … o+S)) in `out`. */
type Selector = (p: Float32Array, o: number, S: number, out: Uint8Array) => void;

const aboveThreshold: Selector = (p, o, S, out) => {
  for (let c = 0; c < S; c++) out[c] = p[o + c] >= THRESHOLD ? 1 : 0;
};

/** GKGNet: keep scores ≥ the 3rd largest (ties included, so maybe more than 3), then threshold. */
const gkgTop3: Selector = (p, o, S, out) => {
  let a = -Infinity, b = -Infinity, v3 = -Infinity; // with S < 3 every label survives the cut
  for (let c = 0; c < S; c++) {
    const x = p[o + c];
    if (x > a) {
      v3 = b;
      b = a;
      a = x;
    } else if (x > b) {
      v3 = b;
      b = x;
    } else if (x > v3) {
      v3 = x;
    }
  }
  for (let c = 0; c < S; c++) out[c] = p[o + c] >= v3 && p[o + c] >= THRESHOLD ? 1 : 0;
};

/** mmcls: exactly min(3, S) labels, best scores first, ties to the lower class index. */
const mmclsTop3: Selector = (p, o, S, out) => {
  const k = Math.min(3, S);
  const best: number[] = []; // class indices, best first
  for (let c = 0; c < S; c++) {
    let j = best.length;
    while (j > 0 && p[o + c] > p[o + best[j - 1]]) j--; // strict: an earlier class wins ties
    if (j < k) {
      best.splice(j, 0, c);
      if (best.length > k) best.pop();
    }
  }
  out.fill(0);
  for (const c of best) out[c] = 1;
};

/**
 * Per-class and overall precision/recall. Empty denominators give 0 (sklearn's zero_division and
 * mmcls's max(·, eps) agree on that); F1s come from the averaged values, with the denominator
 * clamped to `f1Eps` (0 for GKGNet, whose F1 is then NaN when P = R = 0). `scale` is 1 or 100.
 */
function prf(pred: Float32Array, target: Targets, N: number, S: number, select: Selector, scale: number, f1Eps: number): PRF {
  const tp = new Float64Array(S), fp = new Float64Array(S), fn = new Float64Array(S);
  const chosen = new Uint8Array(S);
  for (let i = 0; i < N; i++) {
    select(pred, i * S, S, chosen);
    for (let c = 0; c < S; c++) {
      const positive = target[i * S + c] === 1; // −1 counts as negative here in both flavours
      if (chosen[c]) {
        if (positive) tp[c]++;
        else fp[c]++;
      } else if (positive) {
        fn[c]++;
      }
    }
  }
  const ratio = (num: number, den: number) => num / Math.max(den, FLOAT32_EPS);
  let sumP = 0, sumR = 0, TP = 0, FP = 0, FN = 0;
  for (let c = 0; c < S; c++) {
    sumP += ratio(tp[c], tp[c] + fp[c]);
    sumR += ratio(tp[c], tp[c] + fn[c]);
    TP += tp[c];
    FP += fp[c];
    FN += fn[c];
  }
  const f1 = (p: number, r: number) => (2 * p * r) / Math.max(p + r, f1Eps);
  const CP = (sumP / S) * scale, CR = (sumR / S) * scale;
  const OP = ratio(TP, TP + FP) * scale, OR = ratio(TP, TP + FN) * scale;
  return { CP, CR, CF1: f1(CP, CR), OP, OR, OF1: f1(OP, OR) };
}

// ---------------------------------------------------------------------------------------------
// Public metric sets

/** GKGNet's get_coco_metrics (§7.1): `pred` N×S sigmoid scores, `target` N×S with 1 = positive. */
export function cocoMetrics(pred: Float32Array, target: Targets, N: number, S: number): CocoMetrics {
  checkSizes(pred, target, N, S);
  const ap = apPerClass(pred, target, N, S, 'gkgnet');
  const thr = prf(pred, target, N, S, aboveThreshold, 1, 0);
  const top = prf(pred, target, N, S, gkgTop3, 1, 0);
  return {
    mAP: ap.reduce((a, b) => a + b, 0) / S,
    ...thr,
    CP_top3: top.CP, CR_top3: top.CR, CF1_top3: top.CF1,
    OP_top3: top.OP, OR_top3: top.OR, OF1_top3: top.OF1,
    apPerClass: ap,
  };
}

/** mmcls mean_ap + average_performance(thr=0.5) and (k=3) (§7.2); target 1 / 0 / −1 (difficult). */
export function mmclsMetrics(pred: Float32Array, target: Targets, N: number, S: number): MmclsMetrics {
  checkSizes(pred, target, N, S);
  const ap = apPerClass(pred, target, N, S, 'mmcls');
  return {
    mAP: (ap.reduce((a, b) => a + b, 0) / S) * 100,
    apPerClass: ap,
    thr: prf(pred, target, N, S, aboveThreshold, 100, FLOAT32_EPS),
    top3: prf(pred, target, N, S, mmclsTop3, 100, FLOAT32_EPS),
  };
}

/**
 * Collects scores and targets over a validation set, batch by batch, into buffers that grow by
 * doubling (so the cost stays close to the storage: 4 + 1 bytes per score), then computes the
 * metrics over everything added.
 */
export class MetricAccumulator {
  private pred: Float32Array;
  private target: Int8Array;
  private n = 0;

  constructor(readonly S: number, capacityRows = 1024) {
    if (!Number.isInteger(S) || S < 1) throw new Error(`MetricAccumulator: bad class count ${S}`);
    const cap = Math.max(1, Math.ceil(capacityRows));
    this.pred = new Float32Array(cap * S);
    this.target = new Int8Array(cap * S);
  }

  /** Number of images added so far. */
  get rows(): number {
    return this.n;
  }

  /** Appends the first `rows` images of a batch (batches may be padded beyond `rows`). */
  add(predBatch: Float32Array, targetBatch: Targets, rows: number): void {
    const { S } = this;
    const len = rows * S;
    if (!Number.isInteger(rows) || rows < 0 || predBatch.length < len || targetBatch.length < len) {
      throw new Error(`MetricAccumulator.add: need ${rows} rows × ${S} classes, got pred ${predBatch.length}, target ${targetBatch.length}`);
    }
    for (let i = 0; i < len; i++) {
      const t = targetBatch[i];
      if (t !== 1 && t !== 0 && t !== -1) throw new Error(`MetricAccumulator.add: target value ${t} is not 1, 0 or -1`);
    }
    const need = (this.n + rows) * S;
    if (need > this.pred.length) {
      const cap = Math.max(need, 2 * this.pred.length);
      const pred = new Float32Array(cap);
      const target = new Int8Array(cap);
      pred.set(this.pred.subarray(0, this.n * S));
      target.set(this.target.subarray(0, this.n * S));
      this.pred = pred;
      this.target = target;
    }
    this.pred.set(predBatch.subarray(0, len), this.n * S);
    this.target.set(targetBatch.subarray(0, len), this.n * S);
    this.n += rows;
  }

  coco(): CocoMetrics {
    return cocoMetrics(this.pred.subarray(0, this.n * this.S), this.target.subarray(0, this.n * this.S), this.n, this.S);
  }

  mmcls(): MmclsMetrics {
    return mmclsMetrics(this.pred.subarray(0, this.n * this.S), this.target.subarray(0, this.n * this.S), this.n, this.S);
  }

  /** Forgets every row but keeps the buffers for the next pass. */
  reset(): void {
    this.n = 0;
  }
}
