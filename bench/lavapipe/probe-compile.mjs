// Wall time of the first conv2d forward+backward per kernel size (dominated by shader compilation).
import { init, device, tidy } from '../../dist/kernels/index.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { conv2d } from '../../dist/kernels/conv2d.js';
import { backward } from '../../dist/kernels/backward.js';
await init();
for (const k of [3, 1]) {
  const t0 = performance.now();
  tidy(() => {
    const x = Tensor.randn([2, 8, 9, 9], 1); x.requiresGrad = true;
    const w = Tensor.randn([8, 8, k, k], 2); w.requiresGrad = true;
    const y = conv2d(x, w, null, { padding: (k - 1) / 2, impl: 'gemm' });
    backward(y, Tensor.randn(y.shape, 3));
  });
  await device().sync();
  console.log(`k=${k} first fwd+bwd ${(performance.now() - t0).toFixed(0)} ms`);
}
process.exit(0);
