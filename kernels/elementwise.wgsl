// Elementwise ops with NumPy broadcasting. OP selects the function (a switch on an override constant
// folds away at pipeline creation). Operands are addressed through per-dimension strides, 0 on a
// broadcast dimension; the launcher merges dimensions first, so the common case is rank 1.
// Operands and output are f32 or f16 in memory (a_t … out_t, withStorageTypes); the op is f32.

override OP: u32 = 0u;

struct Params {
  n: u32,
  rank: u32,
  alpha: f32,
  beta: f32,
  shape: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
  sc: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Offsets of output element i in operands a, b, c.
fn offsets(i: u32) -> vec3u {
  var rem = i;
  var o = vec3u(0u);
  for (var k = 0u; k < p.rank; k++) {
    let d = p.rank - 1u - k;
    let s = dim(p.shape, d);
    let c = rem % s;
    rem = rem / s;
    o += c * vec3u(dim(p.sa, d), dim(p.sb, d), dim(p.sc, d));
  }
  return o;
}

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

//!include elementwise-ops.wgsl

@group(0) @binding(1) var<storage, read> a: array<a_t>;
@group(0) @binding(2) var<storage, read> b: array<b_t>;
@group(0) @binding(3) var<storage, read> c: array<c_t>;
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  out[i] = out_t(unary_op(f32(a[offsets(i).x])));
}

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[i] = out_t(binary_op(f32(a[o.x]), f32(b[o.y])));
}

// where(c != 0, a, b) or a + b·c
@compute @workgroup_size(256)
fn ternary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[i] = out_t(ternary_op(f32(a[o.x]), f32(b[o.y]), f32(c[o.z])));
}
