// Batched C = act(op(A) · op(B) + bias), register-tiled: a workgroup computes a BM×BN tile of C,
// each thread a TM×TN block held in vec4 registers; A and B tiles of depth BK are staged in
// workgroup memory. Tile sizes are template constants (function-scope arrays need const sizes);
// transposes, bias mode and activation are override constants. Any M, N, K: edges are masked.
// Operands are staged as opnd_t (kernels/operand.ts, tile.wgsl).

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WX: u32 = BN / TN;    // threads along N
const WY: u32 = BM / TM;    // threads along M
const THREADS: u32 = WX * WY;

override TRANS_A: bool = false;  // A stored [K, M]
override TRANS_B: bool = false;  // B stored [N, K]
override BIAS: u32 = 0u;         // 0 none, 1 per row (M), 2 per column (N)
override ACT: u32 = 0u;          // 0 none, 1 relu, 2 gelu

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch_a: u32,   // element stride between batches of A (0 = shared)
  batch_b: u32,
  batch_c: u32,
  batch_bias: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

//!include tile.wgsl

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return A[base + k * p.M + m]; }
  return A[base + m * p.K + k];
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return B[base + n * p.K + k]; }
  return B[base + k * p.N + n];
}

//!include gelu.wgsl

fn epilogue(v: f32, bias_base: u32, m: u32, n: u32) -> f32 {
  var y = v;
  if (BIAS == 1u) { y += bias[bias_base + m]; }
  if (BIAS == 2u) { y += bias[bias_base + n]; }
  if (ACT == 1u) { y = max(y, 0.0); }
  if (ACT == 2u) { y = gelu_(y); }
  return y;
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) tid: u32) {
  let batch = wg.z;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let a_base = batch * p.batch_a;
  let b_base = batch * p.batch_b;

  var acc: Acc;

  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage the tiles, each thread a strided share; consecutive threads read consecutive addresses.
    for (var e = tid; e < BM * BK; e += THREADS) {
      var mm: u32; var kk: u32;
      if (TRANS_A) { kk = e / BM; mm = e % BM; } else { mm = e / BK; kk = e % BK; }
      As[(kk * BM + mm) / 4u][mm % 4u] = opnd_t(load_a(a_base, m0 + mm, k0 + kk));
    }
    for (var e = tid; e < BK * BN; e += THREADS) {
      var nn: u32; var kk: u32;
      if (TRANS_B) { nn = e / BK; kk = e % BK; } else { kk = e / BN; nn = e % BN; }
      Bs[(kk * BN + nn) / 4u][nn % 4u] = opnd_t(load_b(b_base, k0 + kk, n0 + nn));
    }
    workgroupBarrier();
    multiply_tiles(lid, &acc);
    workgroupBarrier();
  }

  let c_base = batch * p.batch_c;
  let bias_base = batch * p.batch_bias;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid.y * TM + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < TN; j++) {
      let n = n0 + lid.x * TN + j;
      if (n >= p.N) { break; }
      C[c_base + m * p.N + n] = epilogue(acc[i * (TN / 4u) + j / 4u][j % 4u], bias_base, m, n);
    }
  }
}
