// Up to 8 tensors into slots of one flat buffer in one dispatch (kernels/flat-gather.ts): workgroup
// row k fills slot k (n_k values at dst[offset_k …]) from source k. A source of one chunk is copied
// word for word; one of several chunks (rows `stride` values apart: a split reduction's partial
// sums) gives the sum of its chunks, added in chunk order from 0 (as reduce.wgsl's serial sum).
// Unused sources are bound to a placeholder and skipped.

struct Params {
  count: u32,
  // Per source: (n, offset in dst, chunks, stride), in words.
  e: array<vec4u, 8>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s0: array<u32>;
@group(0) @binding(2) var<storage, read> s1: array<u32>;
@group(0) @binding(3) var<storage, read> s2: array<u32>;
@group(0) @binding(4) var<storage, read> s3: array<u32>;
@group(0) @binding(5) var<storage, read> s4: array<u32>;
@group(0) @binding(6) var<storage, read> s5: array<u32>;
@group(0) @binding(7) var<storage, read> s6: array<u32>;
@group(0) @binding(8) var<storage, read> s7: array<u32>;
@group(0) @binding(9) var<storage, read_write> dst: array<u32>;

fn load(k: u32, i: u32) -> u32 {
  switch k {
    case 0u: { return s0[i]; }
    case 1u: { return s1[i]; }
    case 2u: { return s2[i]; }
    case 3u: { return s3[i]; }
    case 4u: { return s4[i]; }
    case 5u: { return s5[i]; }
    case 6u: { return s6[i]; }
    default: { return s7[i]; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = gid.y;
  if (k >= p.count) { return; }
  let e = p.e[k];
  let i = gid.x;
  if (i >= e.x) { return; }
  var v = load(k, i);
  if (e.z > 1u) {
    var acc = 0.0;
    for (var c = 0u; c < e.z; c++) { acc += bitcast<f32>(load(k, c * e.w + i)); }
    v = bitcast<u32>(acc);
  }
  dst[e.y + i] = v;
}
