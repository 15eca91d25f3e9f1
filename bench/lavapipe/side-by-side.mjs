// webvig's side of bench/pytorch/cpu_side_by_side.py (same cases; GPU timestamps; ms, median and min).
import { init, noGrad } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { add } from '../../dist/kernels/elementwise.js';
import { conv2d } from '../../dist/kernels/conv2d.js';
import { backward } from '../../dist/kernels/backward.js';
const dev = await init();
const iters = +(process.env.ITERS ?? 21);
const res = [];
const rec = (name, shape, t, fl) => res.push({ name, shape, ms: t.medianMs, minMs: t.minMs, method: t.method, ...(fl ? { gflops: fl / t.minMs / 1e6 } : {}) });
for (const n of [65536, 1 << 20]) {
  const a = Tensor.randn([n], 1), b = Tensor.randn([n], 2);
  rec('add', [n], await timeGpu(() => add(a, b), { warmup: 3, iters }));
}
{
  const r = Tensor.randn([256, 256], 1), row = Tensor.randn([256], 2);
  rec('add_bias', [256, 256], await timeGpu(() => add(r, row), { warmup: 3, iters }));
}
for (const [B, Cin, S, Cout] of [[16, 16, 256, 8], [16, 8, 256, 32], [16, 32, 64, 16], [16, 16, 64, 64], [16, 192, 80, 48], [16, 128, 80, 32]]) {
  const x = Tensor.randn([B, Cin, S, 1], 1), w = Tensor.randn([Cout, Cin, 1, 1], 2, 0.1), bias = Tensor.randn([Cout], 3), dy = Tensor.randn([B, Cout, S, 1], 4);
  const fl = 2 * B * Cin * S * Cout;
  rec('conv1x1', [B, Cin, S, Cout], await timeGpu(() => noGrad(() => conv2d(x, w, bias)), { warmup: 2, iters }), fl);
  for (const t of [x, w, bias]) t.requiresGrad = true;
  rec('conv1x1_fwd_bwd', [B, Cin, S, Cout], await timeGpu(() => {
    backward(conv2d(x, w, bias), dy);
    for (const t of [x, w, bias]) { t.grad.release(); t.grad = null; }
  }, { warmup: 2, iters }), 3 * fl);
}
console.log(JSON.stringify({ device: dev.describe(), results: res }));
process.exit(0);
