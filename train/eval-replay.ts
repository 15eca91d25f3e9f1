// The evaluation forward of eval, the trainer's validation and predict: sigmoid(model(images)),
// recorded once per batch shape and replayed (engine/replay.ts).
import { Tensor, F, keep, noGrad, StepReplay } from '../kernels/index.js';
import type { MultiLabelModel } from '../models/factory.js';

/** The step's slot input for F.storeAt: the scores always go to the start of the kept tensor. */
const FIRST_SLOT = new Uint32Array(1);

/**
 * The evaluation forward, recorded once per batch shape and replayed for later batches and later
 * evaluations (engine/replay.ts): the parameters and running statistics stay in their buffers, so
 * one recording serves a whole run. The scores land in one kept tensor, sized by the first (largest)
 * batch, so that a smaller last batch allocates nothing that could take a recorded buffer.
 */
export class EvalReplay {
  private readonly replay = new StepReplay({ warmup: 1 });
  private kept: Tensor | null = null;

  /** Batches run the normal way, recorded and replayed so far. */
  get counts(): Readonly<StepReplay['counts']> {
    return this.replay.counts;
  }

  /** sigmoid(model(images)) as [B, numLabels]; valid until the next run() or release(). */
  run(model: MultiLabelModel, images: Float32Array, shape: number[], numLabels: number): Tensor {
    const size = shape[0] * numLabels;
    if (!this.kept || this.kept.size < size) {
      this.kept?.release();
      this.kept = keep(Tensor.empty([size], 'f32', 'eval scores'));
    }
    const scores = this.kept;
    this.replay.run([{ data: images, shape }, { data: FIRST_SLOT, shape: [1] }], ([x, s]) => {
      const out = scores.viewAt(0, [size]);
      // Scores in f32: an f16 sigmoid is 1.0 for every logit past ~8.3, so confident positives would tie.
      F.storeAt(out, F.sigmoid(F.asF32(model.forward(x))), s);
      out.release();
    });
    return scores.viewAt(0, [shape[0], numLabels]);
  }

  /** run()'s scores read back; the read is submitted with the batch, so the next can be encoded meanwhile. */
  scores(model: MultiLabelModel, images: Float32Array, shape: number[], numLabels: number): Promise<Float32Array> {
    const out = noGrad(() => this.run(model, images, shape, numLabels));
    const read = out.toArray();
    out.release();
    return read;
  }

  release(): void {
    this.replay.release();
    this.kept?.release();
    this.kept = null;
  }
}
