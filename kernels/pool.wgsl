// Non-overlapping average pooling (kernel = stride = kh×kw) over planes [P = B·C, H, W]; global
// average pooling is the case kh = H, kw = W. Each output sums its window in a fixed order; the
// backward pass gives every input element its window's gradient / (kh·kw). src, dst and addend are
// stored as f32 or f16 (their `NAME_t` aliases); the sums are f32.

struct Params {
  planes: u32,
  h: u32,
  w: u32,
  ho: u32,
  wo: u32,
  kh: u32,
  kw: u32,
  scale: f32,   // 1 / (kh·kw)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<src_t>;
@group(0) @binding(2) var<storage, read_write> dst: array<dst_t>;
@group(0) @binding(3) var<storage, read> addend: array<addend_t>;

override ADDEND: bool = false;  // backward adds `addend` (x's gradient from its other uses) in its store

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= p.planes * p.ho * p.wo) { return; }
  let plane = o / (p.ho * p.wo);
  let oy = (o / p.wo) % p.ho;
  let ox = o % p.wo;
  let base = (plane * p.h + oy * p.kh) * p.w + ox * p.kw;
  var acc = 0.0;
  for (var y = 0u; y < p.kh; y++) {
    for (var x = 0u; x < p.kw; x++) { acc += f32(src[base + y * p.w + x]); }
  }
  dst[o] = dst_t(acc * p.scale);
}

// src = the output gradient [P, Ho, Wo], dst = the input gradient [P, H, W].
@compute @workgroup_size(WG)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.planes * p.h * p.w) { return; }
  let plane = i / (p.h * p.w);
  let iy = (i / p.w) % p.h;
  let ix = i % p.w;
  var v = f32(src[(plane * p.ho + iy / p.kh) * p.wo + ix / p.kw]) * p.scale;
  if (ADDEND) { v += f32(addend[i]); }
  dst[i] = dst_t(v);
}
