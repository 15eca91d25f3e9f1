// Whether lavapipe loads a lane-uniform address from a uniform buffer cheaper than from a storage
// buffer (where every load is a loop over the lanes, bench/RESULTS.md). Raw WebGPU, wall time of
// NWG workgroups of 8 lanes, each K steps of 16 loads + 16 FMAs per lane.
import { init, device } from '../../dist/kernels/index.js';
await init();
const dev = device().device;
const K = 512, NWG = 64, WG = 8;
const kinds = {
  'registers only': ['', 'let v = f32(lane) * 1e-3 + f32(k) * 1e-6; for (var i = 0u; i < 16u; i++) { acc[i] = fma(acc[i], v, 0.5); }'],
  'storage, lane-uniform address': ['@group(0) @binding(1) var<storage, read> A: array<f32>;', 'for (var i = 0u; i < 16u; i++) { acc[i] = fma(A[(k * 16u + i + wg.x) & 4095u], 1.5, acc[i]); }'],
  'uniform buffer, lane-uniform address': ['@group(0) @binding(1) var<uniform> A: array<vec4f, 1024>;', 'for (var i = 0u; i < 16u; i++) { let j = (k * 16u + i + wg.x) & 4095u; acc[i] = fma(A[j / 4u][j % 4u], 1.5, acc[i]); }'],
  'uniform buffer, vec4 at a lane-uniform address': ['@group(0) @binding(1) var<uniform> A: array<vec4f, 1024>;', 'for (var i = 0u; i < 4u; i++) { let a = A[(k * 4u + i + wg.x) & 1023u]; for (var j = 0u; j < 4u; j++) { acc[4u * i + j] = fma(a[j], 1.5, acc[4u * i + j]); } }'],
  'uniform buffer, per-lane address': ['@group(0) @binding(1) var<uniform> A: array<vec4f, 1024>;', 'for (var i = 0u; i < 4u; i++) { let a = A[(k * 4u + i + lane * 7u) & 1023u]; for (var j = 0u; j < 4u; j++) { acc[4u * i + j] = fma(a[j], 1.5, acc[4u * i + j]); } }'],
};
const ubo = dev.createBuffer({ size: 16384, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
dev.queue.writeBuffer(ubo, 0, Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i)));
const out = dev.createBuffer({ size: NWG * WG * 4, usage: GPUBufferUsage.STORAGE });
const params = dev.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
dev.queue.writeBuffer(params, 0, Uint32Array.of(K, 0, 0, 0));
for (const [name, [decl, body]] of Object.entries(kinds)) {
  const code = `@group(0) @binding(0) var<uniform> p: vec4u;
${decl}
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  var acc: array<f32, 16>;
  for (var k = 0u; k < p.x; k++) { ${body} }
  var t = 0.0;
  for (var i = 0u; i < 16u; i++) { t += acc[i]; }
  O[wg.x * ${WG}u + lane] = t;
}`;
  const pipeline = dev.createComputePipeline({ layout: 'auto', compute: { module: dev.createShaderModule({ code }), entryPoint: 'main' } });
  const entries = [{ binding: 0, resource: { buffer: params } }, { binding: 2, resource: { buffer: out } }];
  if (decl) entries.push({ binding: 1, resource: { buffer: ubo } });
  const bg = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const times = [];
  for (let r = 0; r < 12; r++) {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline); pass.setBindGroup(0, bg); pass.dispatchWorkgroups(NWG);
    pass.end();
    const t0 = performance.now();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    times.push(performance.now() - t0);
  }
  const ms = Math.min(...times.slice(2));
  console.log(`${name.padEnd(48)} ${ms.toFixed(3).padStart(8)} ms ${((2 * 16 * K * NWG * WG) / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
}
process.exit(0);
