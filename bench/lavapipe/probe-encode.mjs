// What makes encoding a dispatch cost more through Dawn's Node binding, apart from any engine code:
// N dispatches (each its own bind group, as in a replayed step) from DISTINCT pipelines (used in
// turn) with NB bindings each; encode (setPipeline when it changes, setBindGroup, dispatch, finish)
// and submit timed, median of 31 (bench/RESULTS.md, eleventh session).
// Usage: N=339 NB=4 DISTINCT=54 node bench/lavapipe/probe-encode.mjs
import { init, device } from '../../dist/kernels/index.js';
await init();
const gpu = device().device;
const N = +(process.env.N ?? 339);
const NB = +(process.env.NB ?? 3);
const DISTINCT = +(process.env.DISTINCT ?? N);
const buffers = Array.from({ length: 64 }, () => gpu.createBuffer({ size: 1024, usage: GPUBufferUsage.STORAGE }));
const pipelines = [];
const groups = [];
for (let i = 0; i < N; i++) {
  if (i < DISTINCT) {
    // A distinct constant per shader: distinct pipelines, as the step's distinct kernels.
    const decl = Array.from({ length: NB }, (_, b) => `@group(0) @binding(${b}) var<storage, ${b === 0 ? 'read_write' : 'read'}> a${b}: array<f32>;`).join('\n');
    const terms = Array.from({ length: NB - 1 }, (_, b) => `a${b + 1}[g.x]`).join(' + ') || '0.0';
    const module = gpu.createShaderModule({ code: `${decl}\n@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < 4u) { a0[g.x] = ${terms} + ${i}.0; } }` });
    pipelines.push(gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
  }
  const pipeline = pipelines[i % DISTINCT];
  groups.push(gpu.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: Array.from({ length: NB }, (_, b) => ({ binding: b, resource: { buffer: buffers[(i * 7 + b * 13) % 64] } })),
  }));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const encode = [];
const submit = [];
for (let r = 0; r < 31; r++) {
  const t0 = performance.now();
  const enc = gpu.createCommandEncoder();
  const pass = enc.beginComputePass();
  let last = null;
  for (let i = 0; i < N; i++) {
    const pipeline = pipelines[i % DISTINCT];
    if (pipeline !== last) pass.setPipeline((last = pipeline));
    pass.setBindGroup(0, groups[i]);
    pass.dispatchWorkgroups(1);
  }
  pass.end();
  const commands = enc.finish();
  const t1 = performance.now();
  gpu.queue.submit([commands]);
  const t2 = performance.now();
  await gpu.queue.onSubmittedWorkDone();
  encode.push(t1 - t0);
  submit.push(t2 - t1);
}
console.log(`${N} dispatches, ${NB} bindings each, ${DISTINCT} distinct pipelines: encode ${median(encode).toFixed(2)} ms, submit ${median(submit).toFixed(2)} ms`);
process.exit(0);
