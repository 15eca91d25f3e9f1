// Batched C = act(op(A) · op(B) + bias), register-tiled: a workgroup computes a BM×BN tile of C,
// each thread a TM×TN block held in vec4 registers; A and B tiles of depth BK are staged in
// workgroup memory. Tile sizes are template constants (function-scope arrays need const sizes);
// transposes, bias mode and activation are override constants. Any M, N, K: edges are masked.
// Operands are staged as opnd_t (kernels/operand.ts, tile.wgsl). Every array is f32 or f16 in
// memory (A_t … C_t, withStorageTypes: f16 activations); loads widen to f32, the store rounds to C_t.

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
@group(0) @binding(1) var<storage, read> A: array<A_t>;
@group(0) @binding(2) var<storage, read> B: array<B_t>;
@group(0) @binding(3) var<storage, read> bias: array<bias_t>;
@group(0) @binding(4) var<storage, read_write> C: array<C_t>;

// The tile arithmetic (tile.wgsl) is put in front by the launcher (kernels/matmul.ts).

fn load_a(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return f32(A[base + k * p.M + m]); }
  return f32(A[base + m * p.K + k]);
}

fn load_b(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return f32(B[base + n * p.K + k]); }
  return f32(B[base + k * p.N + n]);
}

//!include gelu.wgsl

fn epilogue(v: f32, bias_base: u32, m: u32, n: u32) -> f32 {
  var y = v;
  if (BIAS == 1u) { y += f32(bias[bias_base + m]); }
  if (BIAS == 2u) { y += f32(bias[bias_base + n]); }
  if (ACT == 1u) { y = max(y, 0.0); }
  if (ACT == 2u) { y = gelu_(y); }
  return y;
}

// Where this workgroup's tile lies: batch, first row and column of C.
struct TileAt { batch: u32, m0: u32, n0: u32 }

// C's value at (m0 + mm, n0 + nn) of the tile, its sum done: epilogue and store (edges masked).
fn emit(at: TileAt, mm: u32, nn: u32, sum: f32) {
  let m = at.m0 + mm;
  let n = at.n0 + nn;
  if (m >= p.M || n >= p.N) { return; }
  C[at.batch * p.batch_c + m * p.N + n] = C_t(epilogue(sum, at.batch * p.batch_bias, m, n));
}

// Thread (lid.x, lid.y) of the TM×TN blocks is tid = lid.x + lid.y·WX (see conv2d.wgsl).
@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) tid: u32, sub: Subgroup) {
  let lid = vec2u(tid % WX, tid / WX);
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
      stage_a(kk * BM + mm, load_a(a_base, m0 + mm, k0 + kk));
    }
    for (var e = tid; e < BK * BN; e += THREADS) {
      var nn: u32; var kk: u32;
      if (TRANS_B) { nn = e / BK; kk = e % BK; } else { kk = e / BN; nn = e % BN; }
      stage_b(kk * BN + nn, load_b(b_base, k0 + kk, n0 + nn));
    }
    workgroupBarrier();
    multiply(lid, sub, &acc);
    workgroupBarrier();
  }
  finish(lid, sub, &acc, TileAt(batch, m0, n0));
}
