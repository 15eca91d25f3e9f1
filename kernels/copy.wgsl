// Strided copy: for every index of `shape`, dst[dst_off + Σ i·dst_stride] = src[src_off + Σ i·src_stride].
// One kernel serves permute, contiguous, slice, concat and pad (slice backward).
// GPUs: one element per invocation, the rank a uniform. CPU adapters: the rank as an override
// constant (constant-indexed uniforms; lavapipe pays ~3 ns per dynamically indexed uniform read and
// per division) and PER consecutive elements per invocation, the index decomposed once and then
// stepped along the innermost dimension.
// Elements are 32-bit words (src_t = dst_t = u32: f32 and integers, bit for bit) or f16 halves.

override RANK: u32 = 0xffffffffu;  // 0xffffffff: read p.rank
override PER: u32 = 1u;

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
@group(0) @binding(1) var<storage, read> src: array<src_t>;
@group(0) @binding(2) var<storage, read_write> dst: array<dst_t>;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

fn rank() -> u32 {
  if (RANK == 0xffffffffu) { return p.rank; }
  return RANK;
}

// Source and destination offsets of element i.
fn offsets(i: u32) -> vec2u {
  var rem = i;
  var o = vec2u(p.src_off, p.dst_off);
  for (var k = 0u; k < rank(); k++) {
    let d = rank() - 1u - k;
    let c = rem % dim(p.shape, d);
    rem = rem / dim(p.shape, d);
    o += c * vec2u(dim(p.sstride, d), dim(p.dstride, d));
  }
  return o;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * 256u) * PER;
  if (i0 >= p.n) { return; }
  var o = offsets(i0);
  if (PER == 1u) {
    dst[o.y] = dst_t(src[o.x]);
    return;
  }
  // rank ≥ 1 here (rank 0 is one element, and PER > 1 is only asked for rank ≥ 1).
  let last = rank() - 1u;
  let len = dim(p.shape, last);
  let step = vec2u(dim(p.sstride, last), dim(p.dstride, last));
  var inner = i0 % len;
  for (var i = i0; i < min(i0 + PER, p.n); i++) {
    dst[o.y] = dst_t(src[o.x]);
    inner += 1u;
    if (inner < len) {
      o += step;
    } else {
      inner = 0u;
      o = offsets(i + 1u);
    }
  }
}
