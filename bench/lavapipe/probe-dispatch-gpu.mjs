// What one dispatch costs the adapter itself (not the host): 400 dependent dispatches of a trivial
// kernel in one pass, timed from submit to done; min-of-7 median. Usage: node bench/lavapipe/probe-dispatch-gpu.mjs
import { init, device } from '../../dist/kernels/index.js';
await init();
const gpu = device().device;
const N = 400;
const buf = gpu.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
for (const [wg, groups] of [[8, 1], [64, 1], [64, 2], [64, 16]]) {
  const module = gpu.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < 4u) { a[g.x] = a[g.x] + 1.0; } }`,
  });
  const pipeline = gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bindGroup = gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const ms = [];
  for (let r = 0; r < 7; r++) {
    const enc = gpu.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < N; i++) pass.dispatchWorkgroups(groups);
    pass.end();
    const commands = enc.finish();
    await gpu.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    gpu.queue.submit([commands]);
    await gpu.queue.onSubmittedWorkDone();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(`${N} dependent dispatches of ${groups} workgroup(s) of ${wg}: ${ms[3].toFixed(2)} ms, ${((ms[3] / N) * 1000).toFixed(1)} µs each`);
}
process.exit(0);
