// 1×1 convolution (stride 1, no padding) for CPU adapters whose subgroup has a fixed size SG and is
// the whole workgroup. On lavapipe every storage load is a loop over the SIMD lanes with a bounds
// check per lane, even at an address all lanes share, while a subgroup shuffle with a constant
// lane is a register permute (bench/RESULTS.md). So each lane loads the values of one row, SG rows
// at once, and hands them to the other lanes by shuffles: one load feeds SG rows instead of one.
//   forward  y[b, g, m, s] = Σ_k w[g, m, k] · x[b, g, k, s] (+ bias)     M = Cout/g, K = Cin/g
//   dx       dx[b, g, m, s] = Σ_k w[g, k, m] · dy[b, g, k, s] (+ addend)  M = Cin/g,  K = Cout/g
//   dw       dw[g, m, n] = Σ_b Σ_s dy[b, g, m, s] · x[b, g, n, s]        M = Cout/g, N = Cin/g
//   db       db[g, m] = Σ_b Σ_s dy[b, g, m, s]   (with dw, by its first column of workgroups)
// The same two entry points serve matmuls (kernels/matmul.ts): gemm computes A·B and Aᵀ·B (A as the
// weight, B's rows as planes), weight_grad A·Bᵀ (both operands' rows as planes, one image), with a
// bias per column or row of the result added in its store (BIAS_ADD).
// Planes are read as V: vec4f (4 positions; planes of a multiple of 4) or f32 (any plane), with
// opv(), hsum() and vdot() from the prelude the launcher puts in front (kernels/pointwise-subgroup.ts),
// which also enables subgroups: directives must precede the operand prelude's declarations.

const SG: u32 = {{SG}}u;   // lanes per subgroup = per workgroup
const TN: u32 = {{TN}}u;   // weight_grad: columns of dw per lane (1, 2 or 4; kernels/pointwise-subgroup.ts picks)

override TRANS_A: bool = false;   // dx: the weight read transposed
override BIAS_GRAD: bool = false; // weight_grad also writes db
override ADDEND: bool = false;    // gemm adds a tensor shaped as C (x's gradient from its other uses)
override BIAS_ADD: u32 = 0u;      // weight_grad adds bias[n] (1: per column) or bias[m] (2: per row)

struct Params {
  M: u32,
  K: u32,          // gemm: the reduced channels; weight_grad: N, dw's columns
  SV: u32,         // V's per image plane (H·W / width of V)
  groups: u32,
  in_image: u32,   // V's per image of the K-side input (x or dy; weight_grad: x)
  out_image: u32,  // V's per image of the output (gemm) or of dy (weight_grad)
  planes: u32,     // gemm: images · SV, the V's each output row spans; weight_grad: images per chunk
  flags: u32,      // gemm: has bias; weight_grad: images in all
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> W: array<f32>;       // weight (gemm)
@group(0) @binding(2) var<storage, read> X: array<V>;         // x (forward, dw) or dy (dx)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<V>;
@group(0) @binding(5) var<storage, read> addend: array<V>;
@group(0) @binding(6) var<storage, read> DY: array<V>;        // dy (weight_grad)
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;
@group(0) @binding(8) var<storage, read_write> db: array<f32>;

// Grid: x = blocks of SG V's of the (image, position) axis, y = blocks of SG rows, z = group.
// Lane l loads row m0 + l of the weight and column q of the input; row i's products reach every
// lane by shuffles from lane i. Sums run over k in order, whatever the block. Four k per iteration,
// each row's four products added in one assignment: lavapipe blends every write of a value that
// lives across loop iterations with the lane mask (and spills most of SG accumulators), so one
// write per four products costs a quarter of one per product.
fn weight_at(w_base: u32, m: u32, k: u32) -> f32 {
  if (TRANS_A) { return opnd(W[w_base + k * p.M + m]); }
  return opnd(W[w_base + m * p.K + k]);
}

@compute @workgroup_size(SG)
fn gemm(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let q = wg.x * SG + lane;
  let qc = min(q, p.planes - 1u);   // past the end: a valid column, never stored
  let b = qc / p.SV;
  let s = qc - b * p.SV;
  let m0 = wg.y * SG;
  let g = wg.z;
  let m_own = min(m0 + lane, p.M - 1u);
  let w_base = g * p.M * p.K;
  let x_base = b * p.in_image + g * p.K * p.SV + s;
  var acc: array<V, SG>;
  let k4 = p.K & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    let a = vec4f(weight_at(w_base, m_own, k), weight_at(w_base, m_own, k + 1u), weight_at(w_base, m_own, k + 2u), weight_at(w_base, m_own, k + 3u));
    let v0 = opv(X[x_base + k * p.SV]);
    let v1 = opv(X[x_base + (k + 1u) * p.SV]);
    let v2 = opv(X[x_base + (k + 2u) * p.SV]);
    let v3 = opv(X[x_base + (k + 3u) * p.SV]);
    for (var i = 0u; i < SG; i++) {
      acc[i] = acc[i] + subgroupShuffle(a.x, i) * v0 + subgroupShuffle(a.y, i) * v1 + subgroupShuffle(a.z, i) * v2 + subgroupShuffle(a.w, i) * v3;
    }
  }
  for (var k = k4; k < p.K; k++) {
    let a = weight_at(w_base, m_own, k);
    let v = opv(X[x_base + k * p.SV]);
    for (var i = 0u; i < SG; i++) { acc[i] += subgroupShuffle(a, i) * v; }
  }
  if (q >= p.planes) { return; }
  let c_base = b * p.out_image + g * p.M * p.SV + s;
  for (var i = 0u; i < SG; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    var r = acc[i];
    if (p.flags != 0u) { r += V(bias[g * p.M + m]); }
    let c = c_base + m * p.SV;
    if (ADDEND) { C[c] = r + addend[c]; } else { C[c] = r; }
  }
}

// dw: a workgroup owns an SG×(TN·SG) block of dw (rows m from wg.y, columns n0 + t·SG + lane from
// wg.x; wg.z = chunk · groups + group) and walks its chunk's (image, V) steps in order. Lane l loads
// x's columns and dy's row m0 + l at each step; row i's dy reaches every lane by a shuffle, and each
// product V is summed on the spot (one scalar per row and column: no spills of SG vector sums).
@compute @workgroup_size(SG)
fn weight_grad(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let N = p.K;
  let n0 = wg.x * TN * SG;
  let m0 = wg.y * SG;
  let g = wg.z % p.groups;
  let chunk = wg.z / p.groups;
  let b_begin = chunk * p.planes;
  let b_end = max(b_begin, min(p.flags, b_begin + p.planes));
  let m_own = min(m0 + lane, p.M - 1u);
  let with_db = BIAS_GRAD && wg.x == 0u;
  var acc: array<f32, TN * SG>;
  var acc_db = V(0.0);
  for (var b = b_begin; b < b_end; b++) {
    var x_base: array<u32, TN>;
    for (var t = 0u; t < TN; t++) { x_base[t] = b * p.in_image + (g * N + min(n0 + t * SG + lane, N - 1u)) * p.SV; }
    let dy_base = b * p.out_image + (g * p.M + m_own) * p.SV;
    for (var s = 0u; s < p.SV; s++) {
      var xv: array<V, TN>;
      for (var t = 0u; t < TN; t++) { xv[t] = opv(X[x_base[t] + s]); }
      let dv = opv(DY[dy_base + s]);
      for (var i = 0u; i < SG; i++) {
        let di = subgroupShuffle(dv, i);
        for (var t = 0u; t < TN; t++) { acc[t * SG + i] += vdot(di, xv[t]); }
      }
      if (with_db) { acc_db += dv; }
    }
  }
  for (var t = 0u; t < TN; t++) {
    let n = n0 + t * SG + lane;
    if (n < N) {
      var column_bias = 0.0;
      if (BIAS_ADD == 1u) { column_bias = bias[n]; }
      for (var i = 0u; i < SG; i++) {
        let m = m0 + i;
        if (m >= p.M) { break; }
        var r = acc[t * SG + i];
        if (BIAS_ADD == 1u) { r += column_bias; }
        if (BIAS_ADD == 2u) { r += bias[m]; }
        dw[((chunk * p.groups + g) * p.M + m) * N + n] = r;
      }
    }
  }
  let m = m0 + lane;
  if (with_db && m < p.M) { db[(chunk * p.groups + g) * p.M + m] = hsum(acc_db); }
}
