// 1×1 conv weight gradient on lavapipe: pointwise.wgsl:weight_grad (lanes over (image, 4 positions),
// both operands gathered per lane) against a probe kernel whose lanes are input channels, so that
// dy is read at lane-uniform addresses (one load, broadcast) and x once per lane per position.
// Shapes: gkgnet-tiny's at batch 16 (B, Cin, H·W, Cout). Bias gradient off in both.
import { init } from '../../dist/kernels/index.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { launch } from '../../dist/engine/launch.js';
import { kernelSource } from '../../dist/engine/kernel.js';
import { operandSource } from '../../dist/kernels/operand.js';
await init();
const TM = 8;
const LANES = `
struct Params { M: u32, N: u32, S: u32, B: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
const TM: u32 = ${TM}u;
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let n = min(wg.x * 8u + lane, p.N - 1u);
  let m0 = wg.y * TM;
  var acc = array<f32, TM>();
  for (var b = 0u; b < p.B; b++) {
    let xb = (b * p.N + n) * p.S;
    for (var s = 0u; s < p.S; s++) {
      let xv = x[xb + s];
      for (var i = 0u; i < TM; i++) { acc[i] += dy[(b * p.M + min(m0 + i, p.M - 1u)) * p.S + s] * xv; }
    }
  }
  if (wg.x * 8u + lane < p.N) {
    for (var i = 0u; i < TM; i++) { if (m0 + i < p.M) { dw[(m0 + i) * p.N + n] = acc[i]; } }
  }
}`;
const shapes = [[16, 16, 256, 8], [16, 8, 256, 32], [16, 32, 64, 16], [16, 16, 64, 64], [16, 64, 16, 32], [16, 192, 4, 48], [16, 48, 4, 192]];
const opts = { warmup: 2, iters: +(process.env.ITERS ?? 7) };
for (const [B, N, S, M] of shapes) {
  const x = Tensor.randn([B, N, S], 1), dy = Tensor.randn([B, M, S], 2);
  const a = Tensor.empty([M, N]), b = Tensor.empty([M, N]), nob = Tensor.empty([1]);
  const now = await timeGpu(() => launch({
    file: 'pointwise.wgsl', entry: 'weight_grad', code: operandSource(kernelSource('pointwise.wgsl', { TM: 4, TN: 4, WG: 16 })),
    constants: { BIAS_GRAD: 0 }, args: [dy, x, a, nob], params: [M, 0, S, 1, 0, N * S, 0, 0, B, B, N, 0],
    workgroups: [Math.ceil(N / 4), Math.ceil(M / 4), 1], context: 'probe: weight_grad',
  }), opts);
  const lanes = await timeGpu(() => launch({
    file: 'probe-dw-lanes.wgsl', entry: 'main', code: LANES, args: [dy, x, b], params: [M, N, S, B],
    workgroups: [Math.ceil(N / 8), Math.ceil(M / TM), 1], context: 'probe: dw lanes',
  }), opts);
  const [ra, rb] = [await a.toArray(), await b.toArray()];
  let err = 0;
  for (let i = 0; i < ra.length; i++) err = Math.max(err, Math.abs(ra[i] - rb[i]) / (1 + Math.abs(ra[i])));
  const gf = (t) => (2 * B * N * S * M / t / 1e6).toFixed(2);
  console.log(`B${B} Cin${N} S${S} Cout${M}: weight_grad ${now.minMs.toFixed(3)} ms (${gf(now.minMs)} GF) | lanes ${lanes.minMs.toFixed(3)} ms (${gf(lanes.minMs)} GF, ${(now.minMs / lanes.minMs).toFixed(2)}×) | max rel diff ${err.toExponential(1)}`);
}
process.exit(0);
