// 1×1 convolution (stride 1, no padding) as per-image GEMMs over [C, S] planes (S = H·W), shaped for
// CPU adapters (lavapipe: a workgroup is one CPU thread, invocations are SIMD lanes, workgroup
// memory is reached by per-lane gathers and a barrier is a coroutine switch). No workgroup memory
// and no barriers: each invocation keeps a TM×4 block of C in registers; the rows it works on come
// from the workgroup id (uniform, so their A reads are scalar loads broadcast to every lane) and its
// 4 columns are consecutive positions s, which consecutive invocations continue. The image and
// group come from the grid too, so no index is divided per element.
//   forward  y[b, g, m, s] = Σ_k w[g, m, k] · x[b, g, k, s] (+ bias)     M = Cout/g, K = Cin/g
//   dx       dx[b, g, m, s] = Σ_k w[g, k, m] · dy[b, g, k, s]            M = Cin/g,  K = Cout/g
//   dw       dw[g, m, n] = Σ_b Σ_s dy[b, g, m, s] · x[b, g, n, s]        M = Cout/g, N = Cin/g
// dw's images are split into wg.z chunks whose partial sums the launcher adds in a fixed order.

const TM: u32 = {{TM}}u;   // rows of C per invocation
const WG: u32 = {{WG}}u;   // invocations per workgroup

override TRANS_A: bool = false;  // dx: A is the weight read transposed

struct Params {
  M: u32,
  K: u32,
  S: u32,          // positions per image plane (H·W)
  groups: u32,
  a_group: u32,    // elements of A per group (forward/dx: the weight's M·K)
  in_image: u32,   // elements per image of the K-side input (x or dy): C_in_total·S
  out_image: u32,  // elements per image of the output (forward/dx)
  has_bias: u32,
  n_images: u32,   // dw: images per chunk
  batch: u32,      // dw: images in all
  N: u32,          // dw: Cin/g
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;     // weight (forward, dx) or dy (dw)
@group(0) @binding(2) var<storage, read> B: array<f32>;     // x (forward, dw) or dy (dx)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// 4 consecutive values of a plane from `base`, zero past `len` (tails of S).
fn load4(base: u32, s: u32, len: u32) -> vec4f {
  if (s + 3u < len) { return vec4f(B[base + s], B[base + s + 1u], B[base + s + 2u], B[base + s + 3u]); }
  var v = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) { if (s + j < len) { v[j] = B[base + s + j]; } }
  return v;
}

// Grid: x = blocks of WG·4 positions, y = blocks of TM rows, z = image · groups + group.
@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let s = (wg.x * WG + lane) * 4u;
  let m0 = wg.y * TM;
  let g = wg.z % p.groups;
  let b = wg.z / p.groups;
  let a_base = g * p.a_group;
  let b_base = b * p.in_image + g * p.K * p.S;
  var acc: array<vec4f, TM>;
  for (var k = 0u; k < p.K; k++) {
    let v = load4(b_base + k * p.S, s, p.S);
    for (var i = 0u; i < TM; i++) {
      let m = min(m0 + i, p.M - 1u);
      var a: f32;
      if (TRANS_A) { a = A[a_base + k * p.M + m]; } else { a = A[a_base + m * p.K + k]; }
      acc[i] += a * v;
    }
  }
  if (s >= p.S) { return; }
  let c_base = b * p.out_image + g * p.M * p.S;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    var r = acc[i];
    if (p.has_bias != 0u) { r += vec4f(bias[g * p.M + m]); }
    for (var j = 0u; j < 4u; j++) {
      if (s + j < p.S) { C[c_base + m * p.S + s + j] = r[j]; }
    }
  }
}

// dw: invocation = one column n (an input channel), TM rows m (output channels) from wg.y;
// wg.x blocks of WG columns, wg.z = chunk · groups + group. The sum runs over the chunk's images
// and each image's positions, 4 at a time.
@compute @workgroup_size(WG)
fn weight_grad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let n = min(wg.x * WG + lane, p.N - 1u);
  let m0 = wg.y * TM;
  let g = wg.z % p.groups;
  let chunk = wg.z / p.groups;
  let b_begin = chunk * p.n_images;
  let b_end = min(p.batch, b_begin + p.n_images);
  var acc: array<vec4f, TM>;
  for (var b = b_begin; b < b_end; b++) {
    // dy[b, g·M + m, :] rows (uniform per workgroup) against x[b, g·N + n, :] (this lane's row).
    let dy_base = (b * p.groups + g) * p.M * p.S;
    let x_base = b * p.in_image + (g * p.N + n) * p.S;
    for (var s = 0u; s < p.S; s += 4u) {
      let xv = load4(x_base, s, p.S);
      for (var i = 0u; i < TM; i++) {
        let row = dy_base + min(m0 + i, p.M - 1u) * p.S;
        var dv: vec4f;
        if (s + 3u < p.S) {
          dv = vec4f(A[row + s], A[row + s + 1u], A[row + s + 2u], A[row + s + 3u]);
        } else {
          dv = vec4f(0.0);
          for (var j = 0u; j < 4u; j++) { if (s + j < p.S) { dv[j] = A[row + s + j]; } }
        }
        acc[i] += dv * xv;
      }
    }
  }
  let nn = wg.x * WG + lane;
  if (nn >= p.N) { return; }
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    let r = acc[i];
    C[((chunk * p.groups + g) * p.M + m) * p.N + nn] = r.x + r.y + r.z + r.w;
  }
}
