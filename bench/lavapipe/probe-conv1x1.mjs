// 1×1 conv (the tiny model's shapes): implicit-GEMM conv2d vs batched matmul, GPU timestamps.
import { init, device, noGrad } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { conv2d } from '../../dist/kernels/conv2d.js';
import { matmulRaw } from '../../dist/kernels/matmul.js';
await init();
const iters = +(process.env.ITERS ?? 9);
const ms = async (fn) => (await timeGpu(fn, { warmup: 2, iters })).medianMs;
const shapes = [[16, 16, 256, 8], [16, 32, 256, 8], [16, 8, 256, 32], [16, 32, 64, 16], [16, 16, 64, 64], [16, 192, 80, 48], [16, 128, 80, 32], [16, 16, 80, 16]];
for (const [B, Cin, HW, Cout] of shapes) {
  const x = Tensor.randn([B, Cin, HW, 1], 1), w = Tensor.randn([Cout, Cin, 1, 1], 2), dy = Tensor.randn([B, Cout, HW], 3);
  const x3 = x.view([B, Cin, HW]), w2 = w.view([Cout, Cin]);
  const fl = 2 * B * Cin * HW * Cout;
  const c = await ms(() => noGrad(() => conv2d(x, w)));
  const m = await ms(() => matmulRaw(w2, x3));
  const dx = await ms(() => matmulRaw(w2, dy, { transA: true }));
  const dw = await ms(() => matmulRaw(dy, x3, { transB: true }));
  const g = (t) => `${(t * 1000).toFixed(0).padStart(6)}us ${(fl / t / 1e6).toFixed(2).padStart(5)}GF`;
  console.log(`B${B} Cin${Cin} HW${HW} Cout${Cout}: conv ${g(c)} | matmul fwd ${g(m)} dx ${g(dx)} dw(per-b) ${g(dw)}`);
}
process.exit(0);
