// k×k convolution (any kernel, stride, padding, groups) as direct loops shaped for CPU adapters, as
// pointwise.wgsl is for 1×1 (lavapipe: a workgroup is one CPU thread, invocations are SIMD lanes,
// a barrier is a coroutine switch). Forward and dx use no workgroup memory and no barrier: the
// channels a workgroup computes come from the grid, so weight reads are uniform scalar loads; each
// invocation keeps TM×4 outputs (4 consecutive columns of one row) in registers, loads the input
// row segment those 4 columns read once per (channel, kernel row) and applies every kernel column
// to it. The kernel size and stride are template constants, so the tap loops unroll and the
// segment stays in registers. Edges are masked with clamped loads, never with branches.
//   forward     y[b, co, oy, ox]  = Σ_ci,ky,kx w[co, ci, ky, kx] · x[b, ci, oy·SH − ph + ky, ox·SW − pw + kx]
//   input_grad  dx[b, ci, iy, ix] = Σ_co,ky,kx w[co, ci, ky, kx] · dy[b, co, oy, ox] where
//               iy = oy·SH − ph + ky, ix = ox·SW − pw + kx
//   weight_grad dw[co, ci, ky, kx] = Σ_b,oy,ox dy[b, co, oy, ox] · x[b, ci, oy·SH − ph + ky, ox·SW − pw + kx]
// (channels within one group throughout). Forward and dx read weights through a prelude the launcher
// puts in front (kernels/conv2d.ts): either one load per row and tap (`tap_weight` reads it), or,
// with fixed-size subgroups of TM lanes, each lane loads its own row's KW taps (`own_taps`) and row
// i's reach every lane by shuffles from lane i: a CPU adapter loads even a lane-uniform address lane
// by lane, so that is KW loads per kernel row instead of TM·KW. With subgroups the weight gradient is
// direct-dw-subgroup.wgsl's, appended to this file. weight_grad may split the images into wg.z chunks whose
// partial sums the launcher adds in a fixed order. forward may add a tensor shaped as y (a residual),
// input_grad one shaped as dx (x's gradient from its other uses), in the store, saving an add pass. Operands pass
// through opnd() (kernels/operand.ts: f16 rounding under --precision mixed); sums stay f32.

const TM: u32 = {{TM}}u;   // output channels (forward, weight_grad) or input channels (input_grad) per workgroup
const WG: u32 = {{WG}}u;   // invocations per workgroup
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const SH: u32 = {{SH}}u;
const SW: u32 = {{SW}}u;
// Input columns that 4 consecutive output columns read (forward, weight_grad).
const XW: u32 = 3u * SW + KW;
// input_grad: kernel rows / columns that reach one input pixel, and the dy columns 4 consecutive
// input columns of one stride phase read.
const TY: u32 = (KH + SH - 1u) / SH;
const TX: u32 = (KW + SW - 1u) / SW;
const DW: u32 = TX + 3u;

override ADDEND: bool = false;  // forward / input_grad add `addend` (shaped as y / dx) to their result

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
  ph: u32,
  pw: u32,
  has_bias: u32,  // forward
  n_images: u32,  // weight_grad: images per chunk
  batch: u32,     // weight_grad: images in all
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;    // weight (forward, input_grad) or dy (weight_grad)
@group(0) @binding(2) var<storage, read> X: array<f32>;     // x (forward, weight_grad) or dy (input_grad)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
@group(0) @binding(5) var<storage, read> addend: array<f32>;

// Columns and validity of the XW input columns read by output columns ox0 … ox0 + 3.
struct Cols { at: array<u32, XW>, ok: array<bool, XW> }

fn input_cols(ox0: u32) -> Cols {
  var c: Cols;
  let ix0 = i32(ox0 * SW) - i32(p.pw);
  for (var u = 0u; u < XW; u++) {
    let ix = ix0 + i32(u);
    c.ok[u] = ix >= 0 && ix < i32(p.w);
    c.at[u] = u32(clamp(ix, 0, i32(p.w) - 1));
  }
  return c;
}

// Row iy of the plane at `plane` (0 outside the image), at the XW columns of `c`.
fn input_row(plane: u32, iy: i32, c: Cols) -> array<f32, XW> {
  let row_ok = iy >= 0 && iy < i32(p.h);
  let row = plane + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w;
  var v: array<f32, XW>;
  for (var u = 0u; u < XW; u++) { v[u] = opnd(select(0.0, X[row + c.at[u]], row_ok && c.ok[u])); }
  return v;
}

// The 4 values that kernel column kx multiplies for the 4 output columns.
fn taps(v: array<f32, XW>, kx: u32) -> vec4f {
  return vec4f(v[kx], v[SW + kx], v[2u * SW + kx], v[3u * SW + kx]);
}

// An invocation's (image, row, first column) of 4 consecutive output columns: lanes run over the
// quads of all images, so planes smaller than a workgroup still fill its lanes. `idx` may run past
// the last image (b ≥ batch): such lanes read image batch − 1 and store nothing.
struct Quad { b: u32, y: u32, x0: u32 }

fn quad_at(idx: u32, rows: u32, cols: u32) -> Quad {
  let q4 = (cols + 3u) / 4u;
  let plane = rows * q4;
  let quad = idx % plane;
  return Quad(idx / plane, quad / q4, (quad % q4) * 4u);
}

// Invocations count along x (folded into y past the per-dimension limit) of a grid whose z is
// (group, channel block[, phase]).
fn lane_index(wg: vec3u, nwg: vec3u, lane: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lane;
}

// Grid z = channel block · groups + group; TM output channels per workgroup.
@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let q = quad_at(lane_index(wg, nwg, lane), p.ho, p.wo);
  let b = min(q.b, p.batch - 1u);
  let g = wg.z % p.groups;
  let m0 = (wg.z / p.groups) * TM;
  let cols = input_cols(q.x0);
  let iy0 = i32(q.y * SH) - i32(p.ph);
  let hw = p.h * p.w;
  let x_base = (b * p.cin + g * p.cin_g) * hw;
  let co_own = g * p.cout_g + min(m0 + own_lane(), p.cout_g - 1u);
  var acc: array<vec4f, TM>;
  for (var ci = 0u; ci < p.cin_g; ci++) {
    for (var ky = 0u; ky < KH; ky++) {
      let v = input_row(x_base + ci * hw, iy0 + i32(ky), cols);
      let own = own_taps(((co_own * p.cin_g + ci) * KH + ky) * KW);
      for (var i = 0u; i < TM; i++) {
        let co = g * p.cout_g + min(m0 + i, p.cout_g - 1u);
        let w_row = ((co * p.cin_g + ci) * KH + ky) * KW;
        for (var kx = 0u; kx < KW; kx++) { acc[i] += tap_weight(own[kx], w_row + kx, i) * taps(v, kx); }
      }
    }
  }
  if (q.b >= p.batch) { return; }
  let y_base = ((b * p.cout + g * p.cout_g) * p.ho + q.y) * p.wo + q.x0;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= p.cout_g) { break; }
    var r = acc[i];
    if (p.has_bias != 0u) { r += vec4f(bias[g * p.cout_g + m]); }
    for (var j = 0u; j < 4u; j++) {
      let c = y_base + m * p.ho * p.wo + j;
      if (q.x0 + j < p.wo) {
        if (ADDEND) { C[c] = r[j] + addend[c]; } else { C[c] = r[j]; }
      }
    }
  }
}

// dx is computed per stride phase (iy mod SH, ix mod SW), one phase per workgroup: within a phase
// only the kernel rows ky ≡ ry + ph and columns kx ≡ rx + pw (mod stride) contribute, and input
// columns rx + SW·c read dy columns c + const, so 4 consecutive c read DW consecutive dy columns,
// as a stride-1 forward does. No tap is masked out per invocation and no stride gap is visited.
// Grid z = (channel block · groups + group) · SH·SW + phase; TM input channels per workgroup; x
// covers phase (0, 0), the largest.
@compute @workgroup_size(WG)
fn input_grad(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let phase = wg.z % (SH * SW);
  let ry = phase / SW;
  let rx = phase % SW;
  let g = (wg.z / (SH * SW)) % p.groups;
  let m0 = (wg.z / (SH * SW * p.groups)) * TM;
  let hp = (p.h + SH - 1u - ry) / SH;   // rows iy = ry + SH·r in the image
  let wp = (p.w + SW - 1u - rx) / SW;   // columns ix = rx + SW·c
  let q = quad_at(lane_index(wg, nwg, lane), hp, wp);
  let b = min(q.b, p.batch - 1u);
  // First contributing kernel row / column and the dy row / column offset it maps to; the t-th
  // contributing one is ky0 + t·SH at offset oy_off − t.
  let ky0 = (ry + p.ph) % SH;
  let kx0 = (rx + p.pw) % SW;
  let oy_off = i32((ry + p.ph - ky0) / SH);
  let ox_off = i32((rx + p.pw - kx0) / SW);
  // dy columns x0 + ox_off − (TX − 1) + u, u < DW; tap t of output column j reads u = j + TX − 1 − t.
  var at: array<u32, DW>;
  var ok: array<bool, DW>;
  for (var u = 0u; u < DW; u++) {
    let ox = i32(q.x0 + u) + ox_off - i32(TX - 1u);
    ok[u] = ox >= 0 && ox < i32(p.wo);
    at[u] = u32(clamp(ox, 0, i32(p.wo) - 1));
  }
  let ohw = p.ho * p.wo;
  let dy_base = (b * p.cout + g * p.cout_g) * ohw;
  let ci_own = min(m0 + own_lane(), p.cin_g - 1u);
  var acc: array<vec4f, TM>;
  for (var co = 0u; co < p.cout_g; co++) {
    for (var ty = 0u; ty < TY; ty++) {
      let ky = ky0 + ty * SH;
      // Uniform, and no break: the loop keeps its constant trip count (unrolled, d in registers).
      if (ky < KH) {
        let oy = i32(q.y) + oy_off - i32(ty);
        let row_ok = oy >= 0 && oy < i32(p.ho);
        let row = dy_base + co * ohw + u32(clamp(oy, 0, i32(p.ho) - 1)) * p.wo;
        var d: array<f32, DW>;
        for (var u = 0u; u < DW; u++) { d[u] = opnd(select(0.0, X[row + at[u]], row_ok && ok[u])); }
        let own = own_taps((((g * p.cout_g + co) * p.cin_g + ci_own) * KH + ky) * KW);
        for (var i = 0u; i < TM; i++) {
          let ci = min(m0 + i, p.cin_g - 1u);
          let w_row = (((g * p.cout_g + co) * p.cin_g + ci) * KH + ky) * KW;
          for (var tx = 0u; tx < TX; tx++) {
            let kx = kx0 + tx * SW;
            let s = TX - 1u - tx;
            if (kx < KW) { acc[i] += tap_weight(own[min(kx, KW - 1u)], w_row + kx, i) * vec4f(d[s], d[s + 1u], d[s + 2u], d[s + 3u]); }
          }
        }
      }
    }
  }
  if (q.b >= p.batch || q.y >= hp) { return; }
  let hw = p.h * p.w;
  let dx_row = (b * p.cin + g * p.cin_g) * hw + (ry + SH * q.y) * p.w + rx;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m >= p.cin_g) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = dx_row + m * hw + SW * (q.x0 + j);
      if (q.x0 + j < wp) {
        if (ADDEND) { C[c] = acc[i][j] + addend[c]; } else { C[c] = acc[i][j]; }
      }
    }
  }
}

// dw: a workgroup owns dw[co0 … co0 + TM − 1, ci, ·, ·] (ci from wg.x, the co block from wg.y,
// wg.z = chunk · groups + group). Its invocations split the chunk's (image, quad) steps between
// them, each keeping TM·KH·KW partial sums. One barrier, then the partials are added in invocation
// order (deterministic).
var<workgroup> red: array<array<f32, TM * KH * KW>, WG>;

@compute @workgroup_size(WG)
fn weight_grad(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lane: u32) {
  let ci = wg.x;
  let m0 = wg.y * TM;
  let g = wg.z % p.groups;
  let chunk = wg.z / p.groups;
  let b_begin = chunk * p.n_images;
  let b_end = max(b_begin, min(p.batch, b_begin + p.n_images));
  let steps = (b_end - b_begin) * p.ho * ((p.wo + 3u) / 4u);
  let hw = p.h * p.w;
  let ohw = p.ho * p.wo;
  var acc: array<f32, TM * KH * KW>;
  for (var step = lane; step < steps; step += WG) {
    let q = quad_at(step, p.ho, p.wo);
    let b = b_begin + q.b;
    let cols = input_cols(q.x0);
    let iy0 = i32(q.y * SH) - i32(p.ph);
    // dy past the row's end reads as 0, so the x values it meets need no mask of their own.
    var d: array<vec4f, TM>;
    for (var i = 0u; i < TM; i++) {
      let row = (b * p.cout + g * p.cout_g + min(m0 + i, p.cout_g - 1u)) * ohw + q.y * p.wo;
      for (var j = 0u; j < 4u; j++) { d[i][j] = opnd(select(0.0, Wt[row + min(q.x0 + j, p.wo - 1u)], q.x0 + j < p.wo)); }
    }
    let x_plane = (b * p.cin + g * p.cin_g + ci) * hw;
    for (var ky = 0u; ky < KH; ky++) {
      let v = input_row(x_plane, iy0 + i32(ky), cols);
      for (var i = 0u; i < TM; i++) {
        for (var kx = 0u; kx < KW; kx++) {
          let k = (i * KH + ky) * KW + kx;
          acc[k] += dot(d[i], taps(v, kx));
        }
      }
    }
  }
  for (var k = 0u; k < TM * KH * KW; k++) { red[lane][k] = acc[k]; }
  workgroupBarrier();
  for (var k = lane; k < TM * KH * KW; k += WG) {
    let m = m0 + k / (KH * KW);
    if (m >= p.cout_g) { break; }
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += red[l][k]; }
    C[(((chunk * p.groups + g) * p.cout_g + m) * p.cin_g + ci) * KH * KW + k % (KH * KW)] = total;
  }
}
