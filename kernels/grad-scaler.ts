// Dynamic loss scaling for --precision mixed (kernel: grad-scaler.wgsl): the state of
// torch.amp.GradScaler on the GPU, and the launches FusedAdamW.step makes with it.
import { Tensor } from '../engine/tensor.js';
import { device, keep } from '../engine/context.js';
import { launch, f32bits, grid1d } from '../engine/launch.js';

/** torch.amp.GradScaler's arguments and defaults. */
export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  /** Successive steps without inf/NaN after which the scale grows. */
  growthInterval?: number;
}

export class GradScaler {
  readonly initScale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  /** (scale, growth tracker), f32 on the GPU. */
  readonly state: Tensor;

  constructor({ initScale = 65536, growthFactor = 2, backoffFactor = 0.5, growthInterval = 2000 }: GradScalerOptions = {}) {
    if (!(initScale > 0 && growthFactor > 1 && backoffFactor > 0 && backoffFactor < 1 && Number.isInteger(growthInterval) && growthInterval >= 1 && growthInterval < 2 ** 24)) {
      throw new Error(`GradScaler: invalid options ${JSON.stringify({ initScale, growthFactor, backoffFactor, growthInterval })}`);
    }
    this.initScale = initScale;
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.state = keep(Tensor.from([initScale, 0], [2]));
  }

  /** The gradient backward starts from instead of 1: the current scale (a copy, backward owns it). */
  seed(shape: readonly number[]): Tensor {
    const s = Tensor.empty(shape, 'f32', 'loss scale');
    if (s.size !== 1) throw new Error(`GradScaler.seed: the loss must be a scalar, got shape [${shape.join(', ')}]`);
    device().copy(this.state.pooled, this.state.byteOffset, s.pooled, s.byteOffset, 4);
    return s;
  }

  async read(): Promise<{ scale: number; growthTracker: number }> {
    const [scale, growthTracker] = await this.state.toArray();
    return { scale, growthTracker };
  }

  write(scale: number, growthTracker: number): void {
    this.state.write(Float32Array.of(scale, growthTracker));
  }

  /** grad × 1/scale over one flat gradient bucket of `elements`. */
  unscale(grad: Tensor, elements: number): void {
    launch({
      file: 'grad-scaler.wgsl',
      entry: 'unscale',
      args: [this.state, grad],
      params: [elements, 0, 0, 0, 0, 0],
      workgroups: grid1d(elements),
      context: `unscale gradients (${elements} elements)`,
    });
  }

  /** Count the step of each active slot unless inf/NaN was found, and complete `hyper` (see grad-scaler.wgsl). */
  gate(stats: Tensor, hyper: Tensor, steps: Tensor, betas: readonly [number, number]): void {
    launch({
      file: 'grad-scaler.wgsl',
      entry: 'gate',
      args: [stats, hyper, steps],
      params: [steps.size, 0, f32bits(betas[0]), f32bits(betas[1]), 0, 0],
      workgroups: [Math.ceil(steps.size / 64)],
      context: `loss-scaled step gate (${steps.size} slots)`,
    });
  }

  /** Back off on inf/NaN, grow after growthInterval finite steps. */
  update(stats: Tensor): void {
    launch({
      file: 'grad-scaler.wgsl',
      entry: 'update',
      args: [this.state, stats],
      params: [0, this.growthInterval, 0, 0, f32bits(this.growthFactor), f32bits(this.backoffFactor)],
      workgroups: [1],
      context: 'loss scale update',
    });
  }

  release(): void {
    this.state.release();
  }
}
