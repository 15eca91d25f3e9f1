// Reduction of a strided view: output o and reduced index r each decompose into coordinates over
// their own dimensions and strides, so any set of axes reduces without a transposing copy. One
// workgroup per output element, a fixed-order tree: the result is bitwise deterministic.
// x, out, g and gx are f32 or f16 in memory (x_t … gx_t, withStorageTypes); sums accumulate in f32
// and the launcher gives them an f32 out (a sum of f16 values, loss-scaled, can pass 65504).

struct Params {
  n_out: u32,
  r: u32,
  orank: u32,
  rrank: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
  oshape: array<vec4u, 2>,
  ostride: array<vec4u, 2>,
  rshape: array<vec4u, 2>,
  rstride: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
@group(0) @binding(2) var<storage, read_write> out: array<out_t>;
@group(0) @binding(3) var<storage, read_write> arg: array<i32>;

// GPUs: 256-wide trees and ranks read from the uniforms. CPU adapters: 64-wide trees (a barrier is
// a coroutine switch per 8 lanes on lavapipe) and the ranks as override constants, which turn the
// index loops into constant-indexed uniform reads (a dynamically indexed one costs ~3 ns there).
override WG: u32 = 256u;
override ORANK: u32 = 0xffffffffu;  // 0xffffffff: read p.orank
override RRANK: u32 = 0xffffffffu;  // 0xffffffff: read p.rrank
var<workgroup> sv: array<f32, WG>;
var<workgroup> si: array<u32, WG>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn decompose(i: u32, rank: u32, shape: array<vec4u, 2>, stride: array<vec4u, 2>) -> u32 {
  var rem = i;
  var off = 0u;
  for (var k = 0u; k < rank; k++) {
    let d = rank - 1u - k;
    let s = dim(shape, d);
    off += (rem % s) * dim(stride, d);
    rem = rem / s;
  }
  return off;
}

fn orank() -> u32 {
  if (ORANK == 0xffffffffu) { return p.orank; }
  return ORANK;
}

fn rrank() -> u32 {
  if (RRANK == 0xffffffffu) { return p.rrank; }
  return RRANK;
}

fn out_index(wg: vec3u, nwg: vec3u) -> u32 {
  return wg.x + wg.y * nwg.x;
}

@compute @workgroup_size(WG)
fn sum(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) t: u32) {
  let o = out_index(wg, nwg);
  if (o >= p.n_out) { return; }
  let base = decompose(o, orank(), p.oshape, p.ostride);
  var acc = 0.0;
  for (var r = t; r < p.r; r += WG) {
    acc += f32(x[base + decompose(r, rrank(), p.rshape, p.rstride)]);
  }
  sv[t] = acc;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { sv[t] += sv[t + s]; }
  }
  if (t == 0u) { out[o] = out_t(sv[0] * p.scale); }
}

// One thread per output, a sequential loop: for many outputs with short reductions (the split-K
// partials of conv weight gradients), where a workgroup per output would leave most threads idle.
@compute @workgroup_size(WG)
fn sum_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= p.n_out) { return; }
  let base = decompose(o, orank(), p.oshape, p.ostride);
  var acc = 0.0;
  for (var r = 0u; r < p.r; r++) {
    acc += f32(x[base + decompose(r, rrank(), p.rshape, p.rstride)]);
  }
  out[o] = out_t(acc * p.scale);
}

// Max and the flat reduced index of the first maximum (ties: smallest index). NaN wins, as in PyTorch.
@compute @workgroup_size(WG)
fn max_(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let o = out_index(wg, nwg);
  if (o >= p.n_out) { return; }
  let base = decompose(o, orank(), p.oshape, p.ostride);
  var best = -3.402823e38;
  var bi = 0xffffffffu;
  for (var r = t; r < p.r; r += WG) {
    let v = f32(x[base + decompose(r, rrank(), p.rshape, p.rstride)]);
    if (bi == 0xffffffffu || v > best || (v != v && best == best)) { best = v; bi = r; }
  }
  sv[t] = best;
  si[t] = bi;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) {
      let v = sv[t + s];
      let j = si[t + s];
      let cur = sv[t];
      let take = j != 0xffffffffu && (si[t] == 0xffffffffu || v > cur || (v == cur && j < si[t]) ||
                 (v != v && cur == cur));
      if (take) { sv[t] = v; si[t] = j; }
    }
  }
  if (t == 0u) {
    out[o] = out_t(sv[0]);  // exact: a value of x
    arg[o] = i32(si[0]);
  }
}

// Backward of max: route each output gradient to its argmax (the input gradient is zero-filled first).
@group(0) @binding(4) var<storage, read> g: array<g_t>;
@group(0) @binding(5) var<storage, read> garg: array<i32>;
@group(0) @binding(6) var<storage, read_write> gx: array<gx_t>;

@compute @workgroup_size(WG)
fn max_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= p.n_out) { return; }
  let base = decompose(o, orank(), p.oshape, p.ostride);
  gx[base + decompose(u32(garg[o]), rrank(), p.rshape, p.rstride)] = gx_t(f32(g[o]));
}
