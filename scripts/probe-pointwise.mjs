import { init, device, noGrad } from '../dist/engine/context.js';
import { timeGpu } from '../dist/engine/timing.js';
import { Tensor } from '../dist/engine/tensor.js';
import { conv2d } from '../dist/kernels/conv2d.js';
import { kernelSource } from '../dist/engine/kernel.js';
const dev = await init();
const iters = +(process.env.ITERS ?? 9);
const ms = async (fn) => (await timeGpu(fn, { warmup: 2, iters })).medianMs;
const shapes = [[16, 16, 256, 8], [16, 8, 256, 32], [16, 32, 64, 16], [16, 16, 64, 64], [16, 192, 80, 48], [16, 128, 80, 32], [16, 32, 4, 128]];
const TMs = (process.env.TMS ?? '4,8').split(',').map(Number);
for (const [B, Cin, S, Cout] of shapes) {
  const x = Tensor.randn([B, Cin, S, 1], 1), w = Tensor.randn([Cout, Cin, 1, 1], 2), dy = Tensor.randn([B, Cout, S], 3), bias = Tensor.randn([Cout], 4);
  const fl = 2 * B * Cin * S * Cout;
  const g = (t) => `${(t * 1000).toFixed(0).padStart(6)}us ${(fl / t / 1e6).toFixed(2).padStart(5)}GF`;
  const c = await ms(() => noGrad(() => conv2d(x, w, bias)));
  let line = `B${B} Cin${Cin} S${S} Cout${Cout}: conv ${g(c)}`;
  for (const TM of TMs) {
    const WG = Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(Math.ceil(S / 4)))));
    const p = dev.pipeline('pointwise.wgsl', 'gemm', {}, kernelSource('pointwise.wgsl', { TM, WG }));
    const y = Tensor.empty([B, Cout, S]);
    const f = await ms(() => dev.dispatch(p, [w, x, bias, y], Uint32Array.from([Cout, Cin, S, 1, Cout * Cin, Cin * S, Cout * S, 1, 0, 0, 0, 0]), [Math.ceil(S / 4 / WG), Math.ceil(Cout / TM), B], 'pw'));
    const WGn = Math.min(64, Math.max(8, 2 ** Math.ceil(Math.log2(Cin))));
    const pw = dev.pipeline('pointwise.wgsl', 'weight_grad', {}, kernelSource('pointwise.wgsl', { TM, WG: WGn }));
    const dw = Tensor.empty([Cout, Cin]);
    const fw = await ms(() => dev.dispatch(pw, [dy, x, dw], Uint32Array.from([Cout, 0, S, 1, 0, Cin * S, 0, 0, B, B, Cin, 0]), [Math.ceil(Cin / WGn), Math.ceil(Cout / TM), 1], 'pwdw'));
    line += ` | TM${TM} fwd ${g(f)} dw1 ${g(fw)}`;
  }
  console.log(line);
}
process.exit(0);
