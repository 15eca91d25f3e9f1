// The add microbenchmark: engine add of two n-float tensors (and a broadcast row add), GPU timestamps.
import { init } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { add, gelu } from '../../dist/kernels/elementwise.js';
await init();
const iters = +(process.env.ITERS ?? 21);
const out = {};
for (const n of [4096, 65536, 1 << 20]) {
  const a = Tensor.randn([n], 1), b = Tensor.randn([n], 2);
  out[`add ${n}`] = (await timeGpu(() => add(a, b), { warmup: 3, iters })).medianMs * 1000;
  out[`gelu ${n}`] = (await timeGpu(() => gelu(a), { warmup: 3, iters })).medianMs * 1000;
}
const r = Tensor.randn([256, 256], 1), row = Tensor.randn([256], 2);
out['add_bias [256,256]+[256]'] = (await timeGpu(() => add(r, row), { warmup: 3, iters })).medianMs * 1000;
console.log(JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v)]))));
process.exit(0);
