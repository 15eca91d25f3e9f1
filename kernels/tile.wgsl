// The register-tiled inner product shared by matmul.wgsl and conv2d.wgsl (their launchers put it
// in front; it uses their BM, BN, BK, TM, TN constants): both stage BK-deep tiles of A ([BK][BM]) and B ([BK][BN]) in
// workgroup memory, then each thread accumulates its TM×TN block of C in vec4 registers. The tiles
// hold opnd_t (kernels/operand.ts: f16 under --precision mixed, so staging rounds the operands and
// halves the tiles' bytes); the sums stay f32.

var<workgroup> As: array<vec4<opnd_t>, BM * BK / 4u>;
var<workgroup> Bs: array<vec4<opnd_t>, BK * BN / 4u>;

// A thread's TM×TN block of C.
alias Acc = array<vec4f, TM * TN / 4u>;

fn multiply_tiles(lid: vec3u, acc: ptr<function, Acc>) {
  var ra: array<vec4f, TM / 4u>;
  var rb: array<vec4f, TN / 4u>;
  for (var k = 0u; k < BK; k++) {
    for (var i = 0u; i < TM / 4u; i++) { ra[i] = vec4f(As[(k * BM + lid.y * TM) / 4u + i]); }
    for (var j = 0u; j < TN / 4u; j++) { rb[j] = vec4f(Bs[(k * BN + lid.x * TN) / 4u + j]); }
    for (var i = 0u; i < TM; i++) {
      let a = ra[i / 4u][i % 4u];
      for (var j = 0u; j < TN / 4u; j++) {
        (*acc)[i * (TN / 4u) + j] += a * rb[j];
      }
    }
  }
}

// The interface matmul.wgsl and conv2d.wgsl use, shared with tile-matrix.wgsl: the staging stores
// (i = k·BM + m for A, k·BN + n for B), the multiply of each staged step by the thread at
// lid = (column, row) of TM×TN blocks, and finish(), which hands every finished sum of C's tile to
// the kernel's emit(at, row, column, sum) (TileAt and emit are the kernel's). Subgroup holds the
// entry point's builtins the matrix tiles need; register tiles need none (a struct needs a member).
struct Subgroup { @builtin(local_invocation_id) unused: vec3u }

fn stage_a(i: u32, v: f32) { As[i / 4u][i % 4u] = opnd_t(v); }
fn stage_b(i: u32, v: f32) { Bs[i / 4u][i % 4u] = opnd_t(v); }

fn multiply(lid: vec2u, sub: Subgroup, acc: ptr<function, Acc>) {
  multiply_tiles(vec3u(lid, 0u), acc);
}

fn finish(lid: vec2u, sub: Subgroup, acc: ptr<function, Acc>, at: TileAt) {
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { emit(at, lid.y * TM + i, lid.x * TN + j, (*acc)[i * (TN / 4u) + j / 4u][j % 4u]); }
  }
}
