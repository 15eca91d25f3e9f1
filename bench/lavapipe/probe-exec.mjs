// What lavapipe (or any adapter) spends executing N dependent, near-empty dispatches: the fixed cost
// each dispatch adds to a step on the device side, apart from the host's encoding (probe-host.mjs).
// Usage: node bench/lavapipe/probe-exec.mjs
import { init, device } from '../../dist/kernels/index.js';
await init();
const gpu = device().device;
const N = 400;
const buffers = Array.from({ length: 8 }, () => gpu.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE }));
const module = gpu.createShaderModule({ code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) { a[g.x] = b[g.x] * 2.0; }` });
const pipeline = gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
const groups = Array.from({ length: 8 }, (_, i) => gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [0, 1].map((binding) => ({ binding, resource: { buffer: buffers[(i + binding) % 8] } })) }));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const wgs of [1, 2, 8, 64]) {
  const ms = [];
  for (let r = 0; r < 15; r++) {
    const enc = gpu.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (let i = 0; i < N; i++) { pass.setBindGroup(0, groups[i % 8]); pass.dispatchWorkgroups(wgs); }
    pass.end();
    const cb = enc.finish();
    const t0 = performance.now();
    gpu.queue.submit([cb]);
    await gpu.queue.onSubmittedWorkDone();
    ms.push(performance.now() - t0);
  }
  console.log(`${N} dependent dispatches of ${wgs} workgroups: ${median(ms).toFixed(2)} ms, ${(median(ms) / N * 1000).toFixed(1)} µs each`);
}
process.exit(0);
