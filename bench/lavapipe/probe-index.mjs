// Where the generic elementwise kernel's time goes on this adapter: variants of the index math, n = 65536.
import { init, device } from '../../dist/kernels/index.js';
import { timeGpu } from '../../dist/engine/timing.js';
import { Tensor } from '../../dist/engine/tensor.js';
const dev = await init();
const iters = +(process.env.ITERS ?? 15);
const n = +(process.env.N ?? 65536);
const head = `struct P { n: u32, rank: u32, s0: u32, s1: u32, shape: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
fn dim(v: array<vec4u, 2>, d: u32) -> u32 { return v[d / 4u][d % 4u]; }
`;
const body = {
  'plain (o = i)': 'let x = i; let y = i;',
  'one div+mod by a uniform': 'let q = i / p.s0; let r = i % p.s0; let x = q * p.s0 + r; let y = x;',
  'one div+mod by a constant': 'let q = i / 256u; let r = i % 256u; let x = q * 256u + r; let y = x;',
  'uniform array read, dynamic index': 'let d = p.rank - 1u; let x = i * dim(p.sa, d); let y = i * dim(p.sb, d);',
  'engine offsets() loop, rank 1': `var rem = i; var x = 0u; var y = 0u;
    for (var k = 0u; k < p.rank; k++) { let d = p.rank - 1u - k; let s = dim(p.shape, d); let c = rem % s; rem = rem / s; x += c * dim(p.sa, d); y += c * dim(p.sb, d); }`,
  'engine offsets() loop, rank 2 (broadcast row)': `var rem = i; var x = 0u; var y = 0u;
    for (var k = 0u; k < p.rank + 1u; k++) { let d = p.rank - k; let s = dim(p.shape, d); let c = rem % s; rem = rem / s; x += c * dim(p.sa, d); y += c * dim(p.sb, d); }`,
  'float div/mod (f32 reciprocal) rank 2': `let s = p.s0; let q = u32(f32(i) * (1.0 / f32(s))); var qq = q; if (qq * s > i) { qq -= 1u; } if ((qq + 1u) * s <= i) { qq += 1u; } let r = i - qq * s; let x = i; let y = r;`,
};
const A = Tensor.randn([n], 1), B = Tensor.randn([n], 2), O = Tensor.empty([n]);
const params = new Uint32Array(28); params.set([n, 1, 256, 0]); params.set([n, 0, 0, 0, 0, 0, 0, 0], 4); params.set([1, 0, 0, 0, 0, 0, 0, 0], 12); params.set([1, 0, 0, 0, 0, 0, 0, 0], 20);
const p2 = Uint32Array.from(params); p2.set([n / 256, 256, 0, 0, 0, 0, 0, 0], 4); p2.set([256, 1, 0, 0, 0, 0, 0, 0], 12); p2.set([0, 1, 0, 0, 0, 0, 0, 0], 20);
for (const [name, code] of Object.entries(body)) {
  const src = `${head}@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) { let i = g.x; if (i >= p.n) { return; } ${code} o[i] = a[x] + b[y]; }`;
  const pl = dev.pipeline(`idx-${name}`, 'main', {}, src);
  const pr = name.includes('rank 2') ? p2 : params;
  const t = await timeGpu(() => dev.dispatch(pl, [A, B, O], pr, [Math.ceil(n / 256)], name), { warmup: 3, iters });
  console.log(`${name.padEnd(48)} ${(t.medianMs * 1000).toFixed(0).padStart(6)} us  (${(t.medianMs * 1e6 / n).toFixed(1)} ns/element)`);
}
process.exit(0);
