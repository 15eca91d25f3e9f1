// 1×1 convolution (stride 1, no padding) as per-image GEMMs over [C, S] planes (S = H·W), shaped for
// CPU adapters (lavapipe: a workgroup is one CPU thread, invocations are SIMD lanes, workgroup
// memory is reached by per-lane gathers and a barrier is a coroutine switch). No workgroup memory
// and no barriers: each invocation keeps a TM×4 block of C in registers; the rows it works on come
// from the workgroup id (uniform, so their A reads are scalar loads broadcast to every lane) and its
// 4 columns are consecutive positions s, which consecutive invocations continue. The image and
// group come from the grid too, so no index is divided per element.
//   forward  y[b, g, m, s] = Σ_k w[g, m, k] · x[b, g, k, s] (+ bias)     M = Cout/g, K = Cin/g
//   dx       dx[b, g, m, s] = Σ_k w[g, k, m] · dy[b, g, k, s] (+ addend)  M = Cin/g,  K = Cout/g
//   dw       dw[g, m, n] = Σ_b Σ_s dy[b, g, m, s] · x[b, g, n, s]        M = Cout/g, N = Cin/g
//   db       db[g, m] = Σ_b Σ_s dy[b, g, m, s]   (with dw, by its first column of workgroups)
// dw's images may be split into wg.z chunks whose partial sums the launcher adds in a fixed order.
// Operands pass through opnd()/opnd4() (kernels/operand.ts: f16 rounding under --precision mixed).

const TM: u32 = {{TM}}u;   // rows of C per invocation (gemm) or per workgroup (weight_grad)
const TN: u32 = {{TN}}u;   // weight_grad: columns of dw per workgroup
const WG: u32 = {{WG}}u;   // invocations per workgroup

override TRANS_A: bool = false;  // dx: A is the weight read transposed
override BIAS_GRAD: bool = false; // weight_grad also writes db (the dy rows it reads anyway)
override ADDEND: bool = false;    // gemm adds a tensor shaped as C (x's gradient from its other uses)

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
@group(0) @binding(5) var<storage, read_write> db: array<f32>;
@group(0) @binding(6) var<storage, read> addend: array<f32>;

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
    let v = opnd4(load4(b_base + k * p.S, s, p.S));
    for (var i = 0u; i < TM; i++) {
      let m = min(m0 + i, p.M - 1u);
      var a: f32;
      if (TRANS_A) { a = A[a_base + k * p.M + m]; } else { a = A[a_base + m * p.K + k]; }
      acc[i] += opnd(a) * v;
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
      let c = c_base + m * p.S + s + j;
      if (s + j < p.S) {
        if (ADDEND) { C[c] = r[j] + addend[c]; } else { C[c] = r[j]; }
      }
    }
  }
}

// dw: a workgroup owns a TM×TN block of dw (rows m = output channels from wg.y, columns n = input
// channels from wg.x; wg.z = chunk · groups + group). Its invocations split the chunk's (image,
// 4 positions) steps between them, so both operands are read 4 contiguous values at a time, and
// each keeps TM×TN partial sums; one barrier, then TM·TN invocations add the WG partials in lane
// order (deterministic).
var<workgroup> red: array<array<f32, TM * TN + TM>, WG>;   // dw partials, then db partials

fn load4_a(base: u32, s: u32, len: u32) -> vec4f {
  if (s + 3u < len) { return vec4f(A[base + s], A[base + s + 1u], A[base + s + 2u], A[base + s + 3u]); }
  var v = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) { if (s + j < len) { v[j] = A[base + s + j]; } }
  return v;
}

@compute @workgroup_size(WG)
fn weight_grad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let n0 = wg.x * TN;
  let m0 = wg.y * TM;
  let g = wg.z % p.groups;
  let chunk = wg.z / p.groups;
  let b_begin = chunk * p.n_images;
  let b_end = max(b_begin, min(p.batch, b_begin + p.n_images));
  let s4 = (p.S + 3u) / 4u;
  let steps = (b_end - b_begin) * s4;
  let with_db = BIAS_GRAD && wg.x == 0u;
  var acc: array<vec4f, TM * TN>;
  var acc_db: array<vec4f, TM>;
  for (var j = lane; j < steps; j += WG) {
    let b = b_begin + j / s4;
    let s = (j % s4) * 4u;
    var xv: array<vec4f, TN>;
    for (var jn = 0u; jn < TN; jn++) {
      let n = min(n0 + jn, p.N - 1u);
      xv[jn] = opnd4(load4(b * p.in_image + (g * p.N + n) * p.S, s, p.S));
    }
    for (var i = 0u; i < TM; i++) {
      let m = min(m0 + i, p.M - 1u);
      let dv = opnd4(load4_a(((b * p.groups + g) * p.M + m) * p.S, s, p.S));
      for (var jn = 0u; jn < TN; jn++) { acc[i * TN + jn] += dv * xv[jn]; }
      if (with_db) { acc_db[i] += dv; }
    }
  }
  for (var q = 0u; q < TM * TN; q++) {
    let v = acc[q];
    red[lane][q] = (v.x + v.y) + (v.z + v.w);
  }
  for (var i = 0u; i < TM; i++) {
    let v = acc_db[i];
    red[lane][TM * TN + i] = (v.x + v.y) + (v.z + v.w);
  }
  workgroupBarrier();
  if (lane >= TM * TN) { return; }
  let m = m0 + lane / TN;
  let n = n0 + lane % TN;
  if (m < p.M && n < p.N) {
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += red[l][lane]; }
    C[((chunk * p.groups + g) * p.M + m) * p.N + n] = total;
  }
  let m_db = m0 + lane;
  if (with_db && lane < TM && m_db < p.M) {
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += red[l][TM * TN + lane]; }
    db[(chunk * p.groups + g) * p.M + m_db] = total;
  }
}
