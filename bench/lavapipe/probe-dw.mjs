// 1×1 conv weight gradient kernel alone on the tiny model's shapes: GPU time per dispatch (profiler
// timestamps), min and median over repetitions (the machine is shared: min is the robust one).
import { init, device, tidy } from '../../dist/kernels/index.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { conv2d } from '../../dist/kernels/conv2d.js';
import { backward } from '../../dist/kernels/backward.js';
const dev = await init();
const prof = dev.enableProfiler();
const shapes = [[16, 16, 256, 8], [16, 8, 256, 32], [16, 32, 64, 16], [16, 16, 64, 64], [16, 192, 80, 48], [16, 128, 80, 32]];
const out = [];
const re = new RegExp(process.env.KERNEL ?? 'weight_grad|KH=1');
for (const [B, Cin, S, Cout] of shapes) {
  const x = Tensor.randn([B, Cin, S, 1], 1), w = Tensor.randn([Cout, Cin, 1, 1], 2), dy = Tensor.randn([B, Cout, S, 1], 3);
  w.requiresGrad = true;
  const times = [];
  for (let rep = 0; rep < 9; rep++) {
    tidy(() => { const y = conv2d(x, w); prof.totals.clear(); backward(y, dy); w.grad.release(); w.grad = null; });
    await dev.sync();
    const rows = await prof.report();
    if (rep > 0) times.push(rows.filter((r) => re.test(r.kernel)).reduce((a, r) => a + r.ms, 0));
    prof.totals.clear();
  }
  times.sort((a, b) => a - b);
  const fl = 2 * B * Cin * S * Cout;
  out.push(`${Cin}->${Cout} S${S}: min ${(times[0] * 1000).toFixed(0)}us med ${(times[times.length >> 1] * 1000).toFixed(0)}us (${(fl / times[0] / 1e6).toFixed(2)} GF)`);
}
console.log(out.join(' | '));
process.exit(0);
