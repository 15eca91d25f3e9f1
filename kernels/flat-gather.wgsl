// Gather up to 8 tensors into a flat buffer in one dispatch (adamw.ts: the gradients into the
// optimizer's flat gradient buffer, without one buffer copy per parameter): workgroup row k copies
// source k (n_k 32-bit words) to dst[offset_k …]. Unused sources are bound to source 0 and skipped.

struct Params {
  count: u32,
  // Per source: (n, offset in dst, 0, 0), in words.
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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let k = gid.y;
  if (k >= p.count) { return; }
  let e = p.e[k];
  let i = gid.x;
  if (i >= e.x) { return; }
  var v = 0u;
  switch k {
    case 0u: { v = s0[i]; }
    case 1u: { v = s1[i]; }
    case 2u: { v = s2[i]; }
    case 3u: { v = s3[i]; }
    case 4u: { v = s4[i]; }
    case 5u: { v = s5[i]; }
    case 6u: { v = s6[i]; }
    default: { v = s7[i]; }
  }
  dst[e.y + i] = v;
}
