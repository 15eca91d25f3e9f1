// The register-tiled inner product shared by matmul.wgsl and conv2d.wgsl (included after their
// BM, BN, BK, TM, TN constants): both stage BK-deep tiles of A ([BK][BM]) and B ([BK][BN]) in
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
