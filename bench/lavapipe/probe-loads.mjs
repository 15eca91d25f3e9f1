// What a storage load costs on a CPU adapter, against the FMAs it feeds: each kernel runs K steps of
// 16 (or 32, 128) FMAs per lane, fed from registers, from loads at a lane-uniform address, from
// per-lane loads, or from one per-lane load handed to the other lanes by subgroup shuffles
// (bench/RESULTS.md). Usage: node bench/lavapipe/probe-loads.mjs [WG=8|64].
import { init, Tensor, device } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { launch } from '../../dist/engine/launch.js';
await init();
const K = 512;
const NWG = 64;
const WG = +(process.env.WG ?? 8);
const shuffles = device().features.has('subgroups');
const rows = (x) => Array.from({ length: 8 }, (_, i) => `acc4[${i}] += vec4f(subgroupShuffle(${x}, ${i}u)) * v;`).join(' ');
// name: [FMAs per lane per step, body]
const bodies = {
  'registers only': [16, 'let v = f32(lane) * 1e-3 + f32(k) * 1e-6; for (var i = 0u; i < 16u; i++) { acc[i] = fma(acc[i], v, 0.5); }'],
  '16 lane-uniform loads': [16, 'for (var i = 0u; i < 16u; i++) { acc[i] = fma(A[k * 16u + i], 1.5, acc[i]); }'],
  '16 per-lane loads': [16, 'for (var i = 0u; i < 16u; i++) { acc[i] = fma(B[(k * 16u + i) * S + pos], 1.5, acc[i]); }'],
  '4 per-lane vec4 loads': [16, 'for (var i = 0u; i < 4u; i++) { let v = B4[(k * 4u + i) * S / 4u + pos]; for (var j = 0u; j < 4u; j++) { acc[4u * i + j] = fma(v[j], 1.5, acc[4u * i + j]); } }'],
  ...(shuffles ? {
    '1 load + 8 shuffles, vec4 operand': [32, `let a = A[k * 8u + lane]; let v = B4[k * S / 4u + pos]; ${rows('a')}`],
    '1 vec4 load, 4 × 8 shuffles, vec4 operands': [128, `let a4 = A4[k * 8u + lane]; for (var j = 0u; j < 4u; j++) { let v = B4[(k * 4u + j) * S / 4u + pos]; let a = a4[j]; ${rows('a')} }`],
  } : {}),
};
const A = Tensor.randn([K * 16 + 16], 1);
const B = Tensor.randn([K * 4096 + 64], 2);
const out = Tensor.empty([NWG * WG]);
console.log(`${device().describe()}, workgroups of ${WG}, ${NWG} workgroups, ${K} steps`);
for (const [name, [fmas, body]] of Object.entries(bodies)) {
  const code = `${shuffles ? 'enable subgroups;\n' : ''}
@group(0) @binding(0) var<uniform> p: vec4u;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> B4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read> A4: array<vec4f>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let S = p.y;
  let pos = wg.x * ${WG}u + lane;
  var acc: array<f32, 16>;
  var acc4: array<vec4f, 8>;
  for (var k = 0u; k < p.x; k++) { ${body} }
  var t = 0.0;
  for (var i = 0u; i < 16u; i++) { t += acc[i]; }
  for (var i = 0u; i < 8u; i++) { t += dot(acc4[i], vec4f(1.0)); }
  if (p.z == 7u) { t += A[0] + B[0] + B4[0].x + A4[0].x; }  // every binding used
  O[pos] = t;
}`;
  const r = await timeGpu(() => launch({ file: `probe-loads ${name}`, entry: 'main', code, args: [A, B, B, out, A], params: [K, 4096, 0, 0], workgroups: [NWG, 1, 1], context: name }), { warmup: 2, iters: 9 });
  const gflops = (2 * fmas * K * NWG * WG) / r.minMs / 1e6;
  console.log(`${name.padEnd(44)} ${r.minMs.toFixed(3).padStart(8)} ms ${gflops.toFixed(1).padStart(6)} GFLOP/s`);
}
process.exit(0);
