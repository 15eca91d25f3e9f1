// 3×3 conv of the tiny model (stem, downsample): GPU time of forward, dx, dw dispatches (profiler
// timestamps), min over 8 repetitions (the machine is shared: min is the robust statistic).
import { init, tidy } from '../../dist/engine/context.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { conv2d } from '../../dist/kernels/conv2d.js';
import { backward } from '../../dist/kernels/backward.js';
const dev = await init();
const prof = dev.enableProfiler();
const cases = [[16, 3, 64, 4, 2], [16, 4, 32, 8, 2], [16, 8, 16, 8, 1], [16, 16, 8, 32, 2]];
const out = [];
for (const [B, Cin, H, Cout, stride] of cases) {
  const x = Tensor.randn([B, Cin, H, H], 1), w = Tensor.randn([Cout, Cin, 3, 3], 2);
  x.requiresGrad = true; w.requiresGrad = true;
  const best = {};
  for (let rep = 0; rep < 9; rep++) {
    prof.totals.clear();
    tidy(() => { const y = conv2d(x, w, null, { stride, padding: 1 }); backward(y, Tensor.randn(y.shape, 3)); for (const t of [x, w]) { t.grad.release(); t.grad = null; } });
    await dev.sync();
    const rows = await prof.report();
    if (rep === 0) continue;
    const t = rows.filter((r) => /KH=3/.test(r.kernel)).reduce((a, r) => a + r.ms, 0);
    best.all = Math.min(best.all ?? 1e9, t);
  }
  out.push(`${Cin}->${Cout} ${H}px s${stride}: fwd+dx+dw ${(best.all * 1000).toFixed(0)}us`);
}
console.log(out.join(' | '));
process.exit(0);
