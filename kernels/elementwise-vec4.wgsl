// Elementwise ops whose operands all have the output's shape (or are one value): no index
// arithmetic, 4 values per load and store, PER vec4s per invocation (consecutive invocations take
// consecutive vec4s in each of the PER rounds). Shaped for CPU adapters, where a per-element
// div/mod and a workgroup per 256 values dominate the cost of the generic kernel (bench/RESULTS.md).
// Operands are bound rounded up to 16 bytes (the pool's buffers always have the room): the last
// vec4 may read past the tensor's end and write the output's padding, never another tensor.
// A SCALAR_* operand is a single value read from its element 0 and broadcast.

override OP: u32 = 0u;
override PER: u32 = 4u;
override SCALAR_A: bool = false;
override SCALAR_B: bool = false;
override SCALAR_C: bool = false;

const WG: u32 = 64u;

struct Params {
  n4: u32,      // vec4s in the output, ⌈n / 4⌉
  _pad: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

//!include elementwise-ops.wgsl

@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read> c: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;

fn get_a(i: u32) -> vec4f { if (SCALAR_A) { return vec4f(a[0].x); } return a[i]; }
fn get_b(i: u32) -> vec4f { if (SCALAR_B) { return vec4f(b[0].x); } return b[i]; }
fn get_c(i: u32) -> vec4f { if (SCALAR_C) { return vec4f(c[0].x); } return c[i]; }

// The k-th vec4 of this invocation, or n4 (none) past the end.
fn slot(wg: vec3u, nwg: vec3u, lane: u32, k: u32) -> u32 {
  return ((wg.x + wg.y * nwg.x) * PER + k) * WG + lane;
}

@compute @workgroup_size(WG)
fn unary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    let x = get_a(i);
    out[i] = vec4f(unary_op(x.x), unary_op(x.y), unary_op(x.z), unary_op(x.w));
  }
}

@compute @workgroup_size(WG)
fn binary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    let x = get_a(i);
    let y = get_b(i);
    out[i] = vec4f(binary_op(x.x, y.x), binary_op(x.y, y.y), binary_op(x.z, y.z), binary_op(x.w, y.w));
  }
}

// where(c != 0, a, b)
@compute @workgroup_size(WG)
fn ternary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    out[i] = select(get_b(i), get_a(i), get_c(i) != vec4f(0.0));
  }
}
