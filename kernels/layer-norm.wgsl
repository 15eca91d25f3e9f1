// LayerNorm over the last axis (kernels/layer-norm.ts): y = (x − mean)·rstd·weight + bias for each
// row of D values, rstd = 1/√(var + eps) with the biased variance, as torch.nn.functional.layer_norm;
// with RELU, of relu(x), applied as x is read (the MLPs' Linear → ReLU → LayerNorm: no ReLU pass).
// One invocation per row: the rows are short (GM-MLIC's 64 to 256 values) and stay in cache across
// a row's passes. Rows are walked as V: vec4f where D % 4 = 0, else f32 (the prelude the launcher
// puts in front defines V and hsum()), since a CPU adapter loads lane by lane and a vec4 moves four
// values per load.
//   forward         y, and (mean, rstd) per row for backward
//   backward        dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = dy·weight (× [x > 0] with RELU)
//   param_partials  Σ dy·x̂ (dweight) and Σ dy (dbias) per column over one chunk of rows

struct Params {
  rows: u32,
  dv: u32,     // V's per row
  d: u32,      // values per row
  eps: f32,
  chunk: u32,  // param_partials: rows per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xv: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<V>;
@group(0) @binding(3) var<storage, read> bias: array<V>;
@group(0) @binding(4) var<storage, read> gy: array<V>;
@group(0) @binding(5) var<storage, read> stats: array<vec2f>;      // (mean, rstd) per row
@group(0) @binding(6) var<storage, read_write> out: array<V>;      // y (forward) or dx (backward)
@group(0) @binding(7) var<storage, read_write> stats_out: array<vec2f>;
@group(0) @binding(8) var<storage, read_write> dweight: array<V>;  // [chunks, D]
@group(0) @binding(9) var<storage, read_write> dbias: array<V>;    // [chunks, D]

override WG: u32 = 64u;
override RELU: bool = false;

// The normalised input: x, or relu(x).
fn xin(i: u32) -> V {
  if (RELU) { return max(xv[i], V(0.0)); }
  return xv[i];
}

fn row_of(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_of(gid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.dv;
  var s = 0.0;
  for (var j = 0u; j < p.dv; j++) { s += hsum(xin(base + j)); }
  let mean = s / f32(p.d);
  var q = 0.0;
  for (var j = 0u; j < p.dv; j++) {
    let c = xin(base + j) - mean;
    q += hsum(c * c);
  }
  let rstd = inverseSqrt(q / f32(p.d) + p.eps);
  for (var j = 0u; j < p.dv; j++) { out[base + j] = (xin(base + j) - mean) * rstd * weight[j] + bias[j]; }
  stats_out[r] = vec2f(mean, rstd);
}

@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = row_of(gid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.dv;
  let st = stats[r];
  var sum_g = 0.0;
  var sum_gx = 0.0;
  for (var j = 0u; j < p.dv; j++) {
    let g = gy[base + j] * weight[j];
    sum_g += hsum(g);
    sum_gx += hsum(g * (xin(base + j) - st.x) * st.y);
  }
  let mean_g = sum_g / f32(p.d);
  let mean_gx = sum_gx / f32(p.d);
  for (var j = 0u; j < p.dv; j++) {
    let xhat = (xin(base + j) - st.x) * st.y;
    let dx = st.y * (gy[base + j] * weight[j] - mean_g - xhat * mean_gx);
    if (RELU) { out[base + j] = select(V(0.0), dx, xv[base + j] > V(0.0)); } else { out[base + j] = dx; }
  }
}

// Invocation (column V j, chunk c) sums its column over the chunk's rows, in row order.
@compute @workgroup_size(WG)
fn param_partials(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let c = gid.y;
  if (j >= p.dv) { return; }
  let begin = c * p.chunk;
  let end = min(p.rows, begin + p.chunk);
  var dw = V(0.0);
  var db = V(0.0);
  for (var r = begin; r < end; r++) {
    let st = stats[r];
    let g = gy[r * p.dv + j];
    dw += g * (xin(r * p.dv + j) - st.x) * st.y;
    db += g;
  }
  dweight[c * p.dv + j] = dw;
  dbias[c * p.dv + j] = db;
}
