// ROIAlign as a fixed sparse interpolation, planned on the CPU from the boxes (roi-align.ts):
// out[r, c, bin] = Σ_{e ∈ row(r·P² + bin)} w_e · feat[b(pix_e), c, yx(pix_e)], and its backward
// dfeat[b, c, yx] = Σ_{e ∈ col(b·HW + yx)} w_e · g[r(e), c, bin(e)] through the transposed lists.
// Each output sums its entries in a fixed order: no float atomics, bitwise reproducible.
// Features and their gradients (src, dst) are f32 or f16 in memory (src_t, dst_t); sums are f32.

struct Params {
  rows: u32,   // R·P²  (forward rows) or B·HW (backward rows)
  c: u32,
  hw: u32,     // H·W
  pp: u32,     // P²
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<src_t>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<dst_t>;

fn linear(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// One thread per (r, c, bin): index holds b·HW + yx.
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.rows * p.c) { return; }
  let bin = t % p.pp;
  let c = (t / p.pp) % p.c;
  let r = t / (p.pp * p.c);
  let row = r * p.pp + bin;
  var acc = 0.0;
  for (var e = offsets[row]; e < offsets[row + 1u]; e++) {
    let pix = index[e];
    acc += weight[e] * f32(src[((pix / p.hw) * p.c + c) * p.hw + pix % p.hw]);
  }
  dst[t] = dst_t(acc);
}

// One thread per (b, c, yx): index holds r·P² + bin.
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.rows * p.c) { return; }
  let yx = t % p.hw;
  let c = (t / p.hw) % p.c;
  let b = t / (p.hw * p.c);
  let row = b * p.hw + yx;
  var acc = 0.0;
  for (var e = offsets[row]; e < offsets[row + 1u]; e++) {
    let ob = index[e];
    acc += weight[e] * f32(src[((ob / p.pp) * p.c + c) * p.pp + ob % p.pp]);
  }
  dst[t] = dst_t(acc);
}
