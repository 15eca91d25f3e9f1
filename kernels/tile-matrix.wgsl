// A GEMM's BM×BN tile of C from subgroup matrices (tensor cores where the adapter has them), with
// tile.wgsl's interface (matmul.wgsl and conv2d.wgsl use either). The A and B tiles are staged as
// there, k-major, but as scalars (a matrix load reads a strided block of scalars): A[m, k] at
// As[k·BM + m] is A's column-major layout with stride BM, B[k, n] at Bs[k·BN + n] B's row-major
// layout with stride BN. Subgroup s owns PER_SG result tiles of SM×SN, side by side in one row of
// tiles (one left operand serves them all), and adds SK-deep products per step. When the K loop is
// done the tiles go to workgroup memory (Cs), where every thread reads its TM×TN block for emit(),
// as from registers.
//
// A prelude (kernels/matrix-tiles.ts) defines SM, SN, SK, SGS (invocations per subgroup),
// Subgroup, subgroup_of(), MatrixResult and the four matrix operations: the adapter's subgroup-
// matrix builtins, or their plain-WGSL emulation (adapters without them: tests of this file's
// tiling and indexing).

const SUBGROUPS: u32 = THREADS / SGS;
const TILES_N: u32 = BN / SN;
const PER_SG: u32 = (BM / SM) * TILES_N / SUBGROUPS;

var<workgroup> As: array<opnd_t, BM * BK>;
var<workgroup> Bs: array<opnd_t, BK * BN>;
const C_ROWS: u32 = 2048u / BN;
var<workgroup> Cs: array<f32, C_ROWS * BN>;

alias Acc = array<MatrixResult, PER_SG>;

fn stage_a(i: u32, v: f32) { As[i] = opnd_t(v); }
fn stage_b(i: u32, v: f32) { Bs[i] = opnd_t(v); }

// Subgroup s's tile i is tile s·PER_SG + i in row-major order over the TILES_N tiles of a row:
// its first row and column in C's tile.
fn tile_row(s: u32) -> u32 { return (s * PER_SG / TILES_N) * SM; }
fn tile_col(s: u32, i: u32) -> u32 { return ((s * PER_SG + i) % TILES_N) * SN; }

fn multiply(lid: vec2u, sub: Subgroup, acc: ptr<function, Acc>) {
  let s = subgroup_of(sub);
  let row = tile_row(s);
  for (var k = 0u; k < BK; k += SK) {
    let left = load_left(k * BM + row);
    for (var i = 0u; i < PER_SG; i++) {
      (*acc)[i] = multiply_add(left, load_right(k * BN + tile_col(s, i)), (*acc)[i]);
    }
  }
}

// The tiles reach emit() through Cs, C_ROWS rows of C's tile at a time (8 KiB: a whole tile of f32
// would not fit the 16 KiB of workgroup memory every adapter has, next to As and Bs): the subgroups
// whose tiles lie in those rows store them, then the threads whose TM×TN blocks lie there copy them
// out. Each thread emits its block once, after the last part (a CPU adapter's compiler unrolls
// these loops: emit() inside them would be inlined once per part).
fn finish(lid: vec2u, sub: Subgroup, acc: ptr<function, Acc>, at: TileAt) {
  let s = subgroup_of(sub);
  let own_part = lid.y * TM / C_ROWS;
  var values: array<f32, TM * TN>;
  for (var part = 0u; part < BM / C_ROWS; part++) {
    let first = part * C_ROWS;
    if (tile_row(s) / C_ROWS == part) {
      for (var i = 0u; i < PER_SG; i++) { store_result((tile_row(s) - first) * BN + tile_col(s, i), (*acc)[i]); }
    }
    workgroupBarrier();
    if (own_part == part) {
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { values[i * TN + j] = Cs[(lid.y * TM + i - first) * BN + lid.x * TN + j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { emit(at, lid.y * TM + i, lid.x * TN + j, values[i * TN + j]); }
  }
}
