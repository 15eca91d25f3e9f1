// Elementwise ops, 4 output values per load and store, PER vec4s per invocation (consecutive
// invocations take consecutive vec4s in each of the PER rounds). Shaped for CPU adapters, where a
// per-element div/mod, dynamically indexed uniforms and a workgroup per 256 values dominate the cost
// of the generic kernel (bench/RESULTS.md). Two layouts:
//   RANK = 0: every operand has the output's size (same element order) or is one value (SCALAR_*,
//     read from element 0 and broadcast): no index arithmetic at all.
//   RANK = r > 0: NumPy broadcasting over the r merged dimensions, as elementwise.wgsl, when the
//     innermost one is a multiple of 4 long: a vec4 of the output then lies in one innermost row,
//     its offsets are computed once (r constant-indexed div/mods per 4 values), and an operand is
//     read as a vec4 where it walks that row (stride 1, INNER_* = true) or as one value broadcast
//     (stride 0). Strides are in elements; a stride-1 operand's offset is then a multiple of 4.
// Operands are bound rounded up to 16 bytes (the pool's buffers always have the room): the last
// vec4 may read past a tensor's end and write the output's padding, never another tensor.
// Operands and output are f32 or f16 in memory (vec4<a_t> … vec4<out_t>, withStorageTypes: a vec4
// of halves is 8 bytes, still 4 values); the op is f32.

override OP: u32 = 0u;
override PER: u32 = 4u;
override SCALAR_A: bool = false;
override SCALAR_B: bool = false;
override SCALAR_C: bool = false;
override RANK: u32 = 0u;
override INNER_A: bool = true;
override INNER_B: bool = true;
override INNER_C: bool = true;

const WG: u32 = 64u;

struct Params {
  n4: u32,      // vec4s in the output, ⌈n / 4⌉
  _pad: u32,
  alpha: f32,
  beta: f32,
  // RANK > 0: merged output shape and per-operand strides (elements), innermost last.
  shape: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
  sc: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

//!include elementwise-ops.wgsl

@group(0) @binding(1) var<storage, read> a: array<vec4<a_t>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<b_t>>;
@group(0) @binding(3) var<storage, read> c: array<vec4<c_t>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<out_t>>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Element offsets in a, b, c of output vec4 i (RANK > 0); d runs over constants once RANK is set.
fn offsets(i: u32) -> vec3u {
  var rem = i * 4u;
  var o = vec3u(0u);
  for (var k = 0u; k < RANK; k++) {
    let d = RANK - 1u - k;
    let s = dim(p.shape, d);
    let q = rem / s;
    o += (rem - q * s) * vec3u(dim(p.sa, d), dim(p.sb, d), dim(p.sc, d));
    rem = q;
  }
  return o;
}

fn fetch_a(o: u32) -> vec4f { if (INNER_A) { return vec4f(a[o / 4u]); } return vec4f(f32(a[o / 4u][o % 4u])); }
fn fetch_b(o: u32) -> vec4f { if (INNER_B) { return vec4f(b[o / 4u]); } return vec4f(f32(b[o / 4u][o % 4u])); }
fn fetch_c(o: u32) -> vec4f { if (INNER_C) { return vec4f(c[o / 4u]); } return vec4f(f32(c[o / 4u][o % 4u])); }

// The operands of output vec4 i (only those the entry point uses are read).
fn get_a(i: u32, o: vec3u) -> vec4f {
  if (RANK > 0u) { return fetch_a(o.x); }
  if (SCALAR_A) { return vec4f(f32(a[0].x)); }
  return vec4f(a[i]);
}
fn get_b(i: u32, o: vec3u) -> vec4f {
  if (RANK > 0u) { return fetch_b(o.y); }
  if (SCALAR_B) { return vec4f(f32(b[0].x)); }
  return vec4f(b[i]);
}
fn get_c(i: u32, o: vec3u) -> vec4f {
  if (RANK > 0u) { return fetch_c(o.z); }
  if (SCALAR_C) { return vec4f(f32(c[0].x)); }
  return vec4f(c[i]);
}

fn offsets_of(i: u32) -> vec3u {
  if (RANK > 0u) { return offsets(i); }
  return vec3u(0u);
}

// The k-th vec4 of this invocation, or n4 (none) past the end.
fn slot(wg: vec3u, nwg: vec3u, lane: u32, k: u32) -> u32 {
  return ((wg.x + wg.y * nwg.x) * PER + k) * WG + lane;
}

@compute @workgroup_size(WG)
fn unary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    let x = get_a(i, offsets_of(i));
    out[i] = vec4<out_t>(vec4f(unary_op(x.x), unary_op(x.y), unary_op(x.z), unary_op(x.w)));
  }
}

@compute @workgroup_size(WG)
fn binary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    let o = offsets_of(i);
    let x = get_a(i, o);
    let y = get_b(i, o);
    out[i] = vec4<out_t>(vec4f(binary_op(x.x, y.x), binary_op(x.y, y.y), binary_op(x.z, y.z), binary_op(x.w, y.w)));
  }
}

// where(c != 0, a, b) or a + b·c
@compute @workgroup_size(WG)
fn ternary4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  for (var k = 0u; k < PER; k++) {
    let i = slot(wg, nwg, lane, k);
    if (i >= p.n4) { return; }
    let o = offsets_of(i);
    let x = get_a(i, o);
    let y = get_b(i, o);
    let z = get_c(i, o);
    out[i] = vec4<out_t>(vec4f(ternary_op(x.x, y.x, z.x), ternary_op(x.y, y.y, z.y), ternary_op(x.z, y.z, z.z), ternary_op(x.w, y.w, z.w)));
  }
}
