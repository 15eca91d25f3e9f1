// Softmax / log-softmax over the last axis: one workgroup per row, max-shifted, fixed-order trees.

override LOG: bool = false;

struct Params {
  rows: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

fn tree_max(t: u32) -> f32 {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { red[t] = max(red[t], red[t + s]); }
  }
  workgroupBarrier();
  let v = red[0];
  workgroupBarrier();
  return v;
}

fn tree_sum(t: u32) -> f32 {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { red[t] += red[t + s]; }
  }
  workgroupBarrier();
  let v = red[0];
  workgroupBarrier();
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.n;
  var m = -3.402823e38;
  for (var i = t; i < p.n; i += WG) { m = max(m, x[base + i]); }
  red[t] = m;
  m = tree_max(t);
  var s = 0.0;
  for (var i = t; i < p.n; i += WG) { s += exp(x[base + i] - m); }
  red[t] = s;
  s = tree_sum(t);
  if (LOG) {
    let ls = log(s);
    for (var i = t; i < p.n; i += WG) { y[base + i] = x[base + i] - m - ls; }
  } else {
    let inv = 1.0 / s;
    for (var i = t; i < p.n; i += WG) { y[base + i] = exp(x[base + i] - m) * inv; }
  }
}
