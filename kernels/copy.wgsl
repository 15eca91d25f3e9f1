// Strided copy: for every index of `shape`, dst[dst_off + Σ i·dst_stride] = src[src_off + Σ i·src_stride].
// One kernel serves permute, contiguous, slice, concat and pad (slice backward).

struct Params {
  n: u32,
  rank: u32,
  src_off: u32,
  dst_off: u32,
  shape: array<vec4u, 2>,
  sstride: array<vec4u, 2>,
  dstride: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var rem = i;
  var so = p.src_off;
  var d_o = p.dst_off;
  for (var k = 0u; k < p.rank; k++) {
    let d = p.rank - 1u - k;
    let c = rem % dim(p.shape, d);
    rem = rem / dim(p.shape, d);
    so += c * dim(p.sstride, d);
    d_o += c * dim(p.dstride, d);
  }
  dst[d_o] = src[so];
}
