// k×k convs of the models: GPU time of the forward, dx and dw dispatches (profiler timestamps, one
// pass per dispatch), per kernel (IMPL=gemm,direct), min over REPS repetitions (the machine is shared:
// min is the robust statistic). SET=tiny (gkgnet-tiny @64, batch 16) or t224 (GKGNet-T @224, batch 4).
// "other" is the sum of dw's image chunks. Prints one JSON object.
import { init, tidy, Tensor, F, backward } from '../../dist/kernels/index.js';
const dev = await init();
const prof = dev.enableProfiler();
// Label every profiled pass with the phase of the dispatch's context instead of the kernel file.
let phase = 'other';
const dispatch = dev.dispatch;
dev.dispatch = function (p, args, params, wg, context) {
  phase = /\(forward/.test(context) ? 'fwd' : /\(input gradient/.test(context) ? 'dx' : /\(weight gradient/.test(context) ? 'dw' : 'other';
  return dispatch.call(this, p, args, params, wg, context);
};
const profiledPass = dev.profiledPass;
dev.profiledPass = function () { return profiledPass.call(this, phase); };
// [B, Cin, H, Cout, stride]: stem s2, s2, s1, then the downsamples.
const SETS = {
  tiny: [[16, 3, 64, 4, 2], [16, 4, 32, 8, 2], [16, 8, 16, 8, 1], [16, 8, 16, 16, 2], [16, 16, 8, 32, 2], [16, 32, 4, 48, 2]],
  t224: [[4, 3, 224, 24, 2], [4, 24, 112, 48, 2], [4, 48, 56, 48, 1], [4, 48, 56, 96, 2], [4, 96, 28, 240, 2], [4, 240, 14, 384, 2]],
};
const set = process.env.SET ?? 'tiny';
const reps = +(process.env.REPS ?? 5);
const impls = (process.env.IMPL ?? 'gemm,direct').split(',');
const rows = [];
for (const [B, Cin, H, Cout, stride] of SETS[set]) {
  const x = Tensor.randn([B, Cin, H, H], 1), w = Tensor.randn([Cout, Cin, 3, 3], 2, 0.1);
  x.requiresGrad = true; w.requiresGrad = true;
  const Ho = Math.floor((H - 1) / stride) + 1;
  const dy = Tensor.randn([B, Cout, Ho, Ho], 3);
  const row = { shape: `${Cin}->${Cout} ${H}px s${stride} b${B}`, gflop: (2 * B * Cout * Ho * Ho * Cin * 9) / 1e9 };
  for (const impl of impls) {
    const best = {};
    for (let rep = 0; rep <= reps; rep++) {
      prof.totals.clear();
      tidy(() => {
        backward(F.conv2d(x, w, null, { stride, padding: 1, impl }), dy);
        for (const t of [x, w]) { t.grad.release(); t.grad = null; }
      });
      await dev.sync();
      const got = Object.fromEntries((await prof.report()).map((r) => [r.kernel, r.ms]));
      if (rep === 0) continue; // pipeline compiles
      for (const k of ['fwd', 'dx', 'dw', 'other']) best[k] = Math.min(best[k] ?? Infinity, got[k] ?? 0);
    }
    row[impl] = Object.fromEntries(Object.entries(best).map(([k, v]) => [k, +v.toFixed(3)]));
  }
  rows.push(row);
  console.error(JSON.stringify(row));
}
console.log(JSON.stringify({ device: dev.describe(), set, reps, unit: 'ms', rows }));
process.exit(0);
