// Probe: where does a memory-bound dispatch's time go on this adapter? GPU timestamps, medians.
import { init, device, tidy } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { Tensor } from '../../dist/engine/tensor.js';
import { add } from '../../dist/kernels/elementwise.js';

const dev = await init();
console.log(dev.describe(), JSON.stringify(dev.adapterInfo));
const iters = +(process.env.ITERS ?? 15);

function raw(label, code, args, wg) {
  const p = dev.pipeline(`probe-${label}`, 'main', {}, code);
  return () => dev.dispatch(p, args, null, wg, label);
}
async function t(label, fn) {
  const r = await timeGpu(fn, { warmup: 3, iters });
  console.log(`${label.padEnd(44)} median ${(r.medianMs * 1000).toFixed(0).padStart(7)} us  min ${(r.minMs * 1000).toFixed(0).padStart(7)} us`);
  return r.medianMs;
}
const empty = (wg) => `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x == 0xffffffffu) { o[0] = 1.0; } }`;
const plain = (wg) => `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3u) { let i = g.x; if (i < arrayLength(&o)) { o[i] = a[i] + b[i]; } }`;
const vec4k = (wg, per) => `@group(0) @binding(0) var<storage, read> a: array<vec4f>;
@group(0) @binding(1) var<storage, read> b: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> o: array<vec4f>;
@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
  let n = arrayLength(&o);
  for (var k = 0u; k < ${per}u; k++) { let i = (w.x * ${per}u + k) * ${wg}u + l; if (i < n) { o[i] = a[i] + b[i]; } } }`;

const tmp = Tensor.empty([1 << 20]);
await t('empty dispatch 1 wg(64)', raw('e1', empty(64), [tmp], [1]));
await t('empty dispatch 1 wg(256)', raw('e1b', empty(256), [tmp], [1]));
await t('empty 256 wgs(256) [65k threads]', raw('e256', empty(256), [tmp], [256]));
await t('empty 4096 wgs(256) [1M threads]', raw('e4096', empty(256), [tmp], [4096]));
await t('empty 64 wgs(64)', raw('e64', empty(64), [tmp], [64]));
await t('empty 1024 wgs(64)', raw('e1024', empty(64), [tmp], [1024]));
await t('empty 16 wgs(64)', raw('e16', empty(64), [tmp], [16]));
for (const n of [256, 4096, 65536, 1 << 20]) {
  const a = Tensor.randn([n], 1), b = Tensor.randn([n], 2), o = Tensor.empty([n]);
  await t(`engine add n=${n}`, () => add(a, b));
  await t(`plain add wg256 n=${n}`, raw(`p${n}`, plain(256), [a, b, o], [Math.ceil(n / 256)]));
  await t(`plain add wg64 n=${n}`, raw(`p64${n}`, plain(64), [a, b, o], [Math.ceil(n / 64)]));
  for (const [wg, per] of [[64, 1], [64, 4], [64, 16], [256, 4], [128, 8]]) {
    await t(`vec4 add wg${wg} x${per} n=${n}`, raw(`v${wg}x${per}n${n}`, vec4k(wg, per), [a, b, o], [Math.max(1, Math.ceil(n / 4 / wg / per))]));
  }
  for (const x of [a, b, o]) x.release();
}
// broadcast add as the engine does it
{
  const a = Tensor.randn([256, 256], 1), b = Tensor.randn([256], 2);
  await t('engine add_bias [256,256]+[256]', () => add(a, b));
  const c = Tensor.randn([16, 16, 256], 1), d = Tensor.randn([16, 1, 256], 2);
  await t('engine add [16,16,256]+[16,1,256]', () => add(c, d));
}
await dev.sync();
process.exit(0);
