// What encoding and submitting a step costs the host through Dawn's Node binding, apart from any
// engine code: each call alone, then N dispatches with their own pipeline and bind group (as a
// replayed training step issues them), split into encode / finish / submit (bench/RESULTS.md).
// Usage: node bench/lavapipe/probe-host.mjs [N=400]
import { init, device } from '../../dist/kernels/index.js';
await init();
const gpu = device().device;
const N = +(process.env.N ?? 400);
const pipelines = [];
const groups = [];
const buffers = Array.from({ length: 8 }, () => gpu.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE }));
for (let i = 0; i < N; i++) {
  // A distinct constant per shader: N pipelines, none shared, like the step's distinct kernels.
  const module = gpu.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < 4u) { a[g.x] = b[g.x] * c[g.x] + ${i}.0; } }`,
  });
  const pipeline = gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  pipelines.push(pipeline);
  groups.push(gpu.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [0, 1, 2].map((binding) => ({ binding, resource: { buffer: buffers[(i + binding) % 8] } })),
  }));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function perCall(name, body) {
  const CALLS = 2000;
  const ms = [];
  for (let r = 0; r < 11; r++) {
    const enc = gpu.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipelines[0]);
    pass.setBindGroup(0, groups[0]);
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) body(pass, i & 1);
    ms.push(performance.now() - t0);
    pass.end();
    enc.finish();
  }
  console.log(`${name.padEnd(34)} ${((median(ms) / CALLS) * 1000).toFixed(2)} µs per call`);
}
perCall('setPipeline (alternating two)', (pass, k) => pass.setPipeline(pipelines[k]));
perCall('setBindGroup (alternating two)', (pass, k) => pass.setBindGroup(0, groups[k]));
perCall('dispatchWorkgroups(1)', (pass) => pass.dispatchWorkgroups(1));

const parts = { encode: [], finish: [], submit: [] };
for (let r = 0; r < 25; r++) {
  const t0 = performance.now();
  const enc = gpu.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < N; i++) {
    pass.setPipeline(pipelines[i]);
    pass.setBindGroup(0, groups[i]);
    pass.dispatchWorkgroups(1);
  }
  pass.end();
  const t1 = performance.now();
  const commands = enc.finish();
  const t2 = performance.now();
  gpu.queue.submit([commands]);
  const t3 = performance.now();
  await gpu.queue.onSubmittedWorkDone();
  parts.encode.push(t1 - t0);
  parts.finish.push(t2 - t1);
  parts.submit.push(t3 - t2);
}
const [e, f, s] = [median(parts.encode), median(parts.finish), median(parts.submit)];
console.log(`${N} dispatches, each its own pipeline and bind group: encode ${e.toFixed(2)} ms, finish ${f.toFixed(2)} ms, ` +
  `submit ${s.toFixed(2)} ms; ${(((e + f + s) / N) * 1000).toFixed(1)} µs per dispatch`);
process.exit(0);
