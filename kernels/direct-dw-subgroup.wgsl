// direct.wgsl's weight gradient for adapters with fixed-size subgroups, appended to direct.wgsl
// (whose parameters, bindings and row helpers it uses) only when shuffles are on. A workgroup is one
// subgroup: lane l owns input channel ci0 + l and loads that channel's input rows; output channel
// co0 + i's dy reaches every lane by a shuffle from lane i, which loaded it. One kernel row ky per
// workgroup, all of its chunk's (image, row, 4 columns) steps in order: per step XW + 4 loads feed
// SG·KW·4 products, where weight_grad's lanes each load TM dy rows and KH input rows for TM·KH·KW·4.
//   dw[co, ci, ky, kx] = Σ_b,oy,ox dy[b, co, oy, ox] · x[b, ci, oy·SH − ph + ky, ox·SW − pw + kx]
// Grid: x = blocks of SG input channels, y = blocks of SG output channels, z = (chunk · groups +
// group) · KH + ky.

const SG: u32 = {{SG}}u;   // lanes per subgroup = per workgroup

@compute @workgroup_size(SG)
fn weight_grad_shuffled(@builtin(workgroup_id) wg: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let ci0 = wg.x * SG;
  let co0 = wg.y * SG;
  let ky = wg.z % KH;
  let g = (wg.z / KH) % p.groups;
  let chunk = wg.z / (KH * p.groups);
  let b_begin = chunk * p.n_images;
  let b_end = max(b_begin, min(p.batch, b_begin + p.n_images));
  let ci_own = min(ci0 + lane, p.cin_g - 1u);
  let co_own = min(co0 + lane, p.cout_g - 1u);
  let hw = p.h * p.w;
  let ohw = p.ho * p.wo;
  var acc: array<f32, SG * KW>;
  for (var b = b_begin; b < b_end; b++) {
    let x_plane = (b * p.cin + g * p.cin_g + ci_own) * hw;
    let dy_plane = (b * p.cout + g * p.cout_g + co_own) * ohw;
    for (var oy = 0u; oy < p.ho; oy++) {
      let iy = i32(oy * SH + ky) - i32(p.ph);
      for (var x0 = 0u; x0 < p.wo; x0 += 4u) {
        let v = input_row(x_plane, iy, input_cols(x0));
        var d: vec4f;
        for (var j = 0u; j < 4u; j++) {
          d[j] = opnd(select(0.0, Wt[dy_plane + oy * p.wo + min(x0 + j, p.wo - 1u)], x0 + j < p.wo));
        }
        for (var i = 0u; i < SG; i++) {
          let di = subgroupShuffle(d, i);
          for (var kx = 0u; kx < KW; kx++) { acc[i * KW + kx] += dot(di, taps(v, kx)); }
        }
      }
    }
  }
  let ci = ci0 + lane;
  if (ci >= p.cin_g) { return; }
  for (var i = 0u; i < SG; i++) {
    let co = co0 + i;
    if (co >= p.cout_g) { break; }
    let at = ((((chunk * p.groups + g) * p.cout_g + co) * p.cin_g + ci) * KH + ky) * KW;
    for (var kx = 0u; kx < KW; kx++) { C[at + kx] = acc[i * KW + kx]; }
  }
}
