// A train-suite case encoded but never executed (queue.submit does nothing): the dispatches, the
// buffer pool's peaks and the host's encoding time of a step this adapter is too slow or too small
// to run, e.g. the GPU cases on a CPU. The allocation sequence and the dispatches are the encoder's,
// whatever the adapter would compute; the timings of a step are meaningless here and not printed.
// GPU=1 lifts maxStorageBufferBindingSize to 2 GiB (lavapipe: 128 MiB) so that planning sees a GPU's
// limit; the bind groups of larger bindings are then invalid, which matters only to a submit, so the
// device's error checks are skipped. Use WEBVIG_KERNELS=gpu for the GPU kernels, WEBVIG_AUTOTUNE=0.
// PRECISION=mixed encodes the mixed step (f16 activations on the gpu kernels).
// Usage: WEBVIG_KERNELS=gpu WEBVIG_AUTOTUNE=0 GPU=1 CASE=gkgnet-s@448:16 node bench/lavapipe/encode-only.mjs
import { init, device } from '../../dist/kernels/index.js';
import { runSuite } from '../../dist/bench/run.js';
await init();
const dev = device();
dev.device.queue.submit = () => {};
if (process.env.GPU) {
  const limits = {};
  for (const k in dev.device.limits) limits[k] = dev.device.limits[k];
  Object.defineProperty(dev, 'limits', { value: { ...limits, maxStorageBufferBindingSize: 2 ** 31 } });
  dev.checkErrors = async () => {};
}
const rep = await runSuite({ suite: 'train', size: 'small', trainCase: process.env.CASE, precision: process.env.PRECISION ?? 'fp32', warmup: 1, iters: +(process.env.ITERS ?? 3), log: () => {} });
const GiB = (b) => +(b / 2 ** 30).toFixed(3);
for (const r of rep.results) {
  console.log(JSON.stringify({
    case: `${r.name}:${r.shape[0]}`, kernels: dev.kernelProfile, precision: r.precision, activations: r.activations, dispatches_per_step: r.dispatches_per_step, replayed_per_step: r.replayed_per_step,
    host_encode_ms_per_step: +r.host_ms_per_step.toFixed(2), bytes_per_step_GiB: GiB(r.bytes_per_step), peak_live_GiB: GiB(r.peak_live_bytes), peak_pool_GiB: GiB(r.peak_gpu_bytes),
  }));
}
process.exit(0);
