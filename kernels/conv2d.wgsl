// 2-D convolution as implicit GEMM, per group g: C[m, n] = Σ_k A[m, k] · B[k, n], register-tiled as
// in matmul.wgsl (a BM×BN tile of C per workgroup, TM×TN per thread, BK-deep A/B tiles staged in
// workgroup memory). Nothing is unfolded in global memory: the staging loops gather the input patch
// (or the output gradient) straight from the NCHW tensors. p.mode picks the GEMM:
//   0 forward  y[b, co, oy, ox]:   M = Cout/g, N = B·Ho·Wo, K = Cin/g·kh·kw; A = weight, B = x patches
//   1 dx       dx[b, ci, iy, ix]:  M = Cin/g,  N = B·H·W,   K = Cout/g·kh·kw; A = weightᵀ, B = dy taps
//   2 dw       dw[co, ci, ky, kx]: M = Cout/g, N = Cin/g·kh·kw, K = B·Ho·Wo; A = dy, B = x patchesᵀ
// Mode 2 splits K into chunks (wg.z) and writes one partial dw per chunk; the launcher sums them in
// a fixed order. With a bias, mode 2's B has one more column, all ones, past the n_w weight columns:
// C[m, n_w] = Σ_k dy[m, k] is db, stored after the chunk's dw (at db_offset in a row of
// split_stride), so that one sum over the chunks gives both. The kernel size is an override
// constant so that the index arithmetic folds: for 1×1 convolutions (every fc1/fc2/FFN) the gather
// reduces to plain strided reads. Mode, stride,
// padding and bias are uniforms (their branches are uniform, hence cheap), so that one pipeline per
// kernel size and tile serves all three GEMMs: fewer shader compiles. Edges are masked.
// Every array is f32 or f16 in memory (A_t … addend_t, withStorageTypes: f16 activations and their
// gradients); loads widen to f32, the sums are f32, the store rounds to C_t.

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WX: u32 = BN / TN;
const WY: u32 = BM / TM;
const THREADS: u32 = WX * WY;

override KH: u32 = 1u;
override KW: u32 = 1u;

struct Params {
  cin: u32,
  h: u32,
  w: u32,
  cout: u32,
  ho: u32,
  wo: u32,
  groups: u32,
  cin_g: u32,
  cout_g: u32,
  M: u32,
  N: u32,
  K: u32,
  k_chunk: u32,   // K per wg.z chunk (a multiple of BK); K itself unless mode 2 splits
  m_tiles: u32,
  n_tiles: u32,
  sh: u32,        // stride
  sw: u32,
  ph: u32,        // padding
  pw: u32,
  has_bias: u32,  // forward only
  mode: u32,      // 0 forward, 1 dx, 2 dw
  has_addend: u32,  // forward and dx: add `addend`, shaped as the result (a residual; x's gradient from its other uses)
  n_w: u32,          // dw: weight columns (N, or N − 1 with db's column of ones)
  split_stride: u32, // dw: values per chunk in C
  db_offset: u32,    // dw: where a chunk's db starts, within its split_stride
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<A_t>;     // weight (modes 0, 1) or dy (mode 2)
@group(0) @binding(2) var<storage, read> B: array<B_t>;     // x (modes 0, 2) or dy (mode 1)
@group(0) @binding(3) var<storage, read> bias: array<bias_t>;
@group(0) @binding(4) var<storage, read_write> C: array<C_t>;
@group(0) @binding(5) var<storage, read> addend: array<addend_t>;

// The tile arithmetic (As, Bs, Acc, Subgroup, stage_a/stage_b, multiply, finish) comes
// from tile.wgsl (registers) or tile-matrix.wgsl (subgroup matrices), put in front by the launcher.

// A flat output (or input) position split into (image, row, column): the one index division the
// staging loops would otherwise repeat per tile element. A thread's column of the B tile is the same
// in every K step (THREADS is a multiple of BN), so modes 0 and 1 split it once per thread.
struct Pos { b: u32, y: u32, x: u32 }

fn split_pos(pos: u32, h: u32, w: u32) -> Pos {
  let hw = h * w;
  return Pos(pos / hw, (pos % hw) / w, pos % w);
}

// x[b, g·Cin/g + ci, oy·sh + ky − ph, ox·sw + kx − pw] (0 in the padding), with tap = (ci, ky, kx)
// and q = (b, oy, ox).
fn x_tap_at(g: u32, tap: u32, q: Pos) -> f32 {
  let ci = tap / (KH * KW);
  let ky = (tap / KW) % KH;
  let kx = tap % KW;
  let iy = i32(q.y * p.sh + ky) - i32(p.ph);
  let ix = i32(q.x * p.sw + kx) - i32(p.pw);
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return f32(B[((q.b * p.cin + g * p.cin_g + ci) * p.h + u32(iy)) * p.w + u32(ix)]);
}

fn x_tap(g: u32, tap: u32, pos: u32) -> f32 {
  return x_tap_at(g, tap, split_pos(pos, p.ho, p.wo));
}

// dy[b, g·Cout/g + co, oy, ox] for the output pixel that tap (co, ky, kx) maps onto input pixel
// q = (b, iy, ix); 0 where no output pixel does (stride gaps, borders).
fn dy_tap_at(g: u32, tap: u32, q: Pos) -> f32 {
  let co = tap / (KH * KW);
  let ky = (tap / KW) % KH;
  let kx = tap % KW;
  let ny = i32(q.y + p.ph) - i32(ky);
  let nx = i32(q.x + p.pw) - i32(kx);
  if (ny < 0 || nx < 0 || u32(ny) % p.sh != 0u || u32(nx) % p.sw != 0u) { return 0.0; }
  let oy = u32(ny) / p.sh;
  let ox = u32(nx) / p.sw;
  if (oy >= p.ho || ox >= p.wo) { return 0.0; }
  return f32(B[((q.b * p.cout + g * p.cout_g + co) * p.ho + oy) * p.wo + ox]);
}

fn load_a(g: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  switch p.mode {
    case 0u: { return f32(A[(g * p.cout_g + m) * p.K + k]); }
    case 1u: {
      // weight[g·Cout/g + co, ci = m, ky, kx] with k = (co, ky, kx)
      return f32(A[((g * p.cout_g + k / (KH * KW)) * p.cin_g + m) * (KH * KW) + k % (KH * KW)]);
    }
    default: {
      // dy[b, g·Cout/g + m, oy, ox] with k = (b, oy, ox)
      let hw = p.ho * p.wo;
      return f32(A[((k / hw) * p.cout + g * p.cout_g + m) * hw + k % hw]);
    }
  }
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  switch p.mode {
    case 0u: { return x_tap(g, k, n); }
    case 1u: { return dy_tap_at(g, k, split_pos(n, p.h, p.w)); }
    default: { return dw_b(g, n, split_pos(k, p.ho, p.wo)); }
  }
}

// Mode 2's B[k = q, n]: the x patch value, or 1 in db's column.
fn dw_b(g: u32, n: u32, q: Pos) -> f32 {
  if (n >= p.n_w) { return 1.0; }
  return x_tap_at(g, n, q);
}

// Where output (g, m, n) of the forward (y) or dx lies in its tensor.
fn out_index(g: u32, m: u32, n: u32) -> u32 {
  if (p.mode == 0u) {
    let hw = p.ho * p.wo;
    return ((n / hw) * p.cout + g * p.cout_g + m) * hw + n % hw;
  }
  let hw = p.h * p.w;
  return ((n / hw) * p.cin + g * p.cin_g + m) * hw + n % hw;
}

fn store(g: u32, split: u32, m: u32, n: u32, v: f32) {
  switch p.mode {
    case 0u, 1u: { C[out_index(g, m, n)] = C_t(v); }
    default: {
      // chunk `split`'s partial dw, laid out as the weight [Cout, Cin/g, kh, kw], then its db
      let row = g * p.cout_g + m;
      if (n < p.n_w) { C[split * p.split_stride + row * p.n_w + n] = C_t(v); } else { C[split * p.split_stride + p.db_offset + row] = C_t(v); }
    }
  }
}

// Where this workgroup's tile lies: group, K chunk (mode 2), first row and column of C.
struct TileAt { g: u32, split: u32, m0: u32, n0: u32 }

// C's value at (m0 + mm, n0 + nn) of the tile, its sum done: bias, addend, store (edges masked).
fn emit(at: TileAt, mm: u32, nn: u32, sum: f32) {
  let m = at.m0 + mm;
  let n = at.n0 + nn;
  if (m >= p.M || n >= p.N) { return; }
  var v = sum;
  if (p.has_bias != 0u) { v += f32(bias[at.g * p.cout_g + m]); }
  if (p.has_addend != 0u) { v += f32(addend[out_index(at.g, m, n)]); }
  store(at.g, at.split, m, n, v);
}

// One dimension of THREADS invocations (subgroup matrices need whole subgroups along x); thread
// (lid.x, lid.y) of the TM×TN blocks is tid = lid.x + lid.y·WX, as a WX×WY workgroup would number it.
@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) tid: u32, sub: Subgroup) {
  let lid = vec2u(tid % WX, tid / WX);
  // N tiles fill x (folded into y past the per-dimension limit); z = (chunk, group, M tile).
  let n_tile = wg.x + wg.y * nwg.x;
  if (n_tile >= p.n_tiles) { return; }
  let m0 = (wg.z % p.m_tiles) * BM;
  let g = (wg.z / p.m_tiles) % p.groups;
  let split = wg.z / (p.m_tiles * p.groups);
  let n0 = n_tile * BN;
  let k_begin = split * p.k_chunk;
  let k_end = min(p.K, k_begin + p.k_chunk);

  var acc: Acc;

  // Modes 0 and 1: this thread's B-tile column, split once (see Pos).
  let own_n = n0 + tid % BN;
  var own = Pos(0u, 0u, 0u);
  if (p.mode == 0u) { own = split_pos(own_n, p.ho, p.wo); }
  if (p.mode == 1u) { own = split_pos(own_n, p.h, p.w); }
  let hoisted = THREADS % BN == 0u && p.mode != 2u;
  // Mode 2 stages A and B with k = k0 + e % BK: fixed per thread when THREADS is a multiple of BK.
  let mode2_hoisted = THREADS % BK == 0u && p.mode == 2u;

  for (var k0 = k_begin; k0 < k_end; k0 += BK) {
    // Consecutive threads take consecutive k for A and for mode 2's B (contiguous in memory there),
    // consecutive n for the other B tiles.
    if (mode2_hoisted) {
      // Mode 2: this thread's k (a K-tile row, the same in both staging loops) split once per step.
      let kk = tid % BK;
      let k = k0 + kk;
      let q = split_pos(min(k, p.K - 1u), p.ho, p.wo);
      let hw = p.ho * p.wo;
      let dy_base = (q.b * p.cout + g * p.cout_g) * hw + q.y * p.wo + q.x;
      for (var e = tid; e < BM * BK; e += THREADS) {
        let mm = e / BK;
        let m = m0 + mm;
        var v = 0.0;
        if (m < p.M && k < p.K) { v = f32(A[dy_base + m * hw]); }
        stage_a(kk * BM + mm, v);
      }
      for (var e = tid; e < BK * BN; e += THREADS) {
        let nn = e / BK;
        let n = n0 + nn;
        var v = 0.0;
        if (n < p.N && k < p.K) { v = dw_b(g, n, q); }
        stage_b(kk * BN + nn, v);
      }
    } else {
      for (var e = tid; e < BM * BK; e += THREADS) {
        let mm = e / BK;
        let kk = e % BK;
        stage_a(kk * BM + mm, load_a(g, m0 + mm, k0 + kk));
      }
      if (hoisted) {
        let nn = tid % BN;
        for (var e = tid; e < BK * BN; e += THREADS) {
          let kk = e / BN;
          let k = k0 + kk;
          var v = 0.0;
          if (k < p.K && own_n < p.N) {
            if (p.mode == 0u) { v = x_tap_at(g, k, own); } else { v = dy_tap_at(g, k, own); }
          }
          stage_b(kk * BN + nn, v);
        }
      } else {
        for (var e = tid; e < BK * BN; e += THREADS) {
          var nn: u32; var kk: u32;
          if (p.mode == 2u) { nn = e / BK; kk = e % BK; } else { kk = e / BN; nn = e % BN; }
          stage_b(kk * BN + nn, load_b(g, k0 + kk, n0 + nn));
        }
      }
    }
    workgroupBarrier();
    multiply(lid, sub, &acc);
    workgroupBarrier();
  }
  finish(lid, sub, &acc, TileAt(g, split, m0, n0));
}
