// Fused dilated KNN (ViG's DenseDilatedKnnGraph) without the distance matrix in global memory.
// Tensors are viewed as rows of one channel group: query [R, CG, N], source [R, CG, M], R = B·G.
// A workgroup owns BQ consecutive queries of one row, one query per thread. Sources stream
// through workgroup memory in tiles of TS nodes × CK channels (with the tile's BQ × TS position
// terms); each thread accumulates TS inner products in registers, turns them into distances and
// merges them into its own sorted list of the KD smallest (distance, source) pairs, which is all
// a query needs: positions 0, d, …, (k−1)·d. KD = (k−1)·d + 1 is a template constant because
// private arrays need a constant size. The distance is computed in the official order,
// (‖u‖² − 2·u·v) + ‖v‖² (+ pos), with ‖·‖² of the normalised vectors from a pre-pass.
// Features (x, xn, q, s) are f32 or f16 in memory (x_t … s_t, withStorageTypes); distances, norms
// and the position terms are f32.

const KD: u32 = {{KD}}u;
const BQ: u32 = 64u;   // queries per workgroup
const TS: u32 = 32u;   // sources per tile
const CK: u32 = 32u;   // channels per staged chunk
const INF: f32 = 0x1.fffffep+127f;

override HAS_POS: bool = false;

struct Params {
  rows: u32,      // B·G
  cg: u32,        // channels per group
  n: u32,         // queries per row (for the pre-passes: nodes of the tensor at hand)
  m: u32,         // sources per row
  k: u32,
  dilation: u32,
  blocks: u32,    // query blocks per row
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
@group(0) @binding(2) var<storage, read_write> xn: array<xn_t>;
@group(0) @binding(3) var<storage, read_write> xsq: array<f32>;
@group(0) @binding(4) var<storage, read> q: array<q_t>;
@group(0) @binding(5) var<storage, read> qsq: array<f32>;
@group(0) @binding(6) var<storage, read> s: array<s_t>;
@group(0) @binding(7) var<storage, read> ssq: array<f32>;
@group(0) @binding(8) var<storage, read> pos: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<i32>;
// pos as whole vec4s (knn_lanes with POS4: rows of a multiple of 4 sources start on a vec4).
@group(0) @binding(10) var<storage, read> pos4: array<vec4f>;
// select_lanes: the inner products u·v of every (query, source) pair, [R, N, M], and as vec4s.
@group(0) @binding(11) var<storage, read> dots: array<f32>;
@group(0) @binding(12) var<storage, read> dots4: array<vec4f>;

// ---------------------------------------------------------------- pre-passes: one thread per node

fn node_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// Σ_c x[row, c, node]²: the base of the node's channel 0 and the channel stride.
fn sum_sq(base: u32, stride: u32) -> f32 {
  var acc = 0.0;
  for (var c = 0u; c < p.cg; c++) {
    let v = f32(x[base + c * stride]);
    acc += v * v;
  }
  return acc;
}

// xn = x / max(‖x‖, 1e-12) per (row, node) over the group's channels (F.normalize), xsq = ‖xn‖²
// of xn as stored (rounded to f16 where xn is), so that distances are those of the stored vectors.
@compute @workgroup_size(256)
fn normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = node_index(gid, nwg);
  if (t >= p.rows * p.n) { return; }
  let base = (t / p.n) * p.cg * p.n + t % p.n;
  let den = max(sqrt(sum_sq(base, p.n)), 1e-12);
  var acc = 0.0;
  for (var c = 0u; c < p.cg; c++) {
    let v = f32(xn_t(f32(x[base + c * p.n]) / den));
    xn[base + c * p.n] = xn_t(v);
    acc += v * v;
  }
  xsq[t] = acc;
}

// xsq = ‖x‖² only, for normalize = false.
@compute @workgroup_size(256)
fn square_norms(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = node_index(gid, nwg);
  if (t >= p.rows * p.n) { return; }
  xsq[t] = sum_sq((t / p.n) * p.cg * p.n + t % p.n, p.n);
}

// ---------------------------------------------------------------- fused distance + top-KD

// One query's KD smallest (distance, source) pairs, sorted ascending; private, so KD is a constant.
var<private> best_d: array<f32, KD>;
var<private> best_i: array<u32, KD>;

fn clear_nearest() {
  for (var j = 0u; j < KD; j++) {
    best_d[j] = INF;
    best_i[j] = 0xffffffffu;
  }
}

// Sources arrive in ascending index order, so an equal distance never displaces a kept one.
fn keep_nearest(d: f32, i: u32) {
  if (d < best_d[KD - 1u]) {
    var cd = d;
    var ci = i;
    for (var t = 0u; t < KD; t++) {
      let bd = best_d[t];
      let bi = best_i[t];
      let before = cd < bd || (cd == bd && ci < bi);
      best_d[t] = select(bd, cd, before);
      best_i[t] = select(bi, ci, before);
      cd = select(cd, bd, before);
      ci = select(ci, bi, before);
    }
  }
}

// Workgroup w's row and first query, and lane tid's query (clamped: lanes past the end compute a
// duplicate and write nothing). Rows vary fastest, so workgroups running side by side read the same
// position-term rows.
struct Query { row: u32, q0: u32, n: u32, base: u32, sq: f32 }

fn query_of(w: u32, per_group: u32, tid: u32) -> Query {
  let row = w % p.rows;
  let q0 = (w / p.rows) * per_group;
  let n = min(q0 + tid, p.n - 1u);
  return Query(row, q0, n, row * p.cg * p.n + n, qsq[row * p.n + n]);
}

// Positions 0, d, …, (k−1)·d of the sorted list.
fn write_nearest(row: u32, n: u32) {
  let o = (row * p.n + n) * p.k;
  for (var j = 0u; j < KD; j += 1u) {
    if (j % p.dilation == 0u) { out[o + j / p.dilation] = bitcast<i32>(best_i[j]); }
  }
}

var<workgroup> tile: array<vec4f, CK * TS / 4u>;    // [CK][TS] source values
var<workgroup> tile_sq: array<f32, TS>;
var<workgroup> tile_dist: array<f32, BQ * (TS + 1u)>; // [BQ][TS + 1] position terms, then distances
                                                      // (a padded row per query: no bank conflicts)

@compute @workgroup_size(BQ)
fn knn(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) tid: u32) {
  let w = wg.x + wg.y * nwg.x;
  if (w >= p.rows * p.blocks) { return; }
  let qy = query_of(w, BQ, tid);
  let row = qy.row;
  let q0 = qy.q0;
  let n = qy.n;
  let qbase = qy.base;
  let sq_u = qy.sq;

  clear_nearest();

  for (var m0 = 0u; m0 < p.m; m0 += TS) {
    // Explicit zero value: some compilers hoist an implicit zero-initialisation out of the loop.
    var acc = array<vec4f, TS / 4u>();
    for (var c0 = 0u; c0 < p.cg; c0 += CK) {
      workgroupBarrier();  // the previous chunk (and tile) has been consumed
      for (var e = tid; e < CK * TS; e += BQ) {
        let c = c0 + e / TS;
        let m = m0 + e % TS;
        var v = 0.0;
        if (c < p.cg && m < p.m) { v = f32(s[(row * p.cg + c) * p.m + m]); }
        tile[e / 4u][e % 4u] = v;
      }
      if (c0 == 0u) {
        if (tid < TS) { tile_sq[tid] = ssq[row * p.m + min(m0 + tid, p.m - 1u)]; }
        if (HAS_POS) {
          for (var e = tid; e < BQ * TS; e += BQ) {
            let qn = min(q0 + e / TS, p.n - 1u);
            let m = min(m0 + e % TS, p.m - 1u);
            tile_dist[(e / TS) * (TS + 1u) + e % TS] = pos[qn * p.m + m];
          }
        }
      }
      workgroupBarrier();
      let cn = min(CK, p.cg - c0);
      for (var c = 0u; c < cn; c++) {
        let u = f32(q[qbase + (c0 + c) * p.n]);
        for (var j = 0u; j < TS / 4u; j++) { acc[j] += u * tile[c * (TS / 4u) + j]; }
      }
    }

    // The tile's distances go to this thread's row of tile_dist (where its position terms were),
    // so that registers are only indexed by constant-trip loops and can stay registers.
    let row_off = tid * (TS + 1u);
    for (var j = 0u; j < TS; j++) {
      var d = (sq_u - 2.0 * acc[j / 4u][j % 4u]) + tile_sq[j];
      if (HAS_POS) { d += tile_dist[row_off + j]; }
      tile_dist[row_off + j] = d;
    }
    let count = min(TS, p.m - m0);
    for (var j = 0u; j < count; j++) {
      let d = tile_dist[row_off + j];
      keep_nearest(d, m0 + j);
    }
  }

  if (qy.q0 + tid < p.n) { write_nearest(row, n); }
}

// ---------------------------------------------------------------- CPU adapters: one lane per query

// On a CPU adapter (lavapipe) a workgroup is one thread and its invocations are SIMD lanes, so the
// tiled kernel's workgroup memory and barriers only add copies and coroutine switches. Here a
// workgroup is one SIMD vector of WQ queries of one row, and TC sources at a time accumulate in
// registers. Every query needs the same source values, read through a prelude the launcher puts in
// front (kernels/knn.ts): a load per source (`share_s` / `share_ssq` read it), or, with subgroups of
// TC lanes, lane j loads source m0 + j (`own_s` / `own_ssq`) and hands it to the others by a shuffle:
// a CPU adapter loads even an address all lanes share lane by lane, so that is one load per TC
// sources instead of one per source. The sums run over channels in the same order as above, so
// both kernels give the same distances.
const WQ: u32 = 8u;   // queries per workgroup (lanes)
const TC: u32 = 8u;   // sources accumulated at a time (two vec4s of pos with POS4)
override POS4: bool = false;  // rows of M sources (pos, dots) start on vec4s: M % 4 = 0

@compute @workgroup_size(WQ)
fn knn_lanes(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) tid: u32) {
  let w = wg.x + wg.y * nwg.x;
  if (w >= p.rows * p.blocks) { return; }
  let qy = query_of(w, WQ, tid);
  let row = qy.row;
  let n = qy.n;
  clear_nearest();
  let lane = own_lane();
  for (var m0 = 0u; m0 < p.m; m0 += TC) {
    let m_own = min(m0 + lane, p.m - 1u);
    var acc = array<f32, TC>();
    for (var c = 0u; c < p.cg; c++) {
      let u = f32(q[qy.base + c * p.n]);
      let sbase = (row * p.cg + c) * p.m;
      let own = own_s(sbase + m_own);
      for (var j = 0u; j < TC; j++) { acc[j] += u * share_s(own, sbase + min(m0 + j, p.m - 1u), j); }
    }
    let own_sq = own_ssq(row * p.m + m_own);
    keep_block(qy, m0, own_sq, acc);
  }
  if (qy.q0 + tid < p.n) { write_nearest(row, n); }
}

// This query's TC position terms from m0 on: two vec4 loads instead of TC lane-by-lane ones where
// rows start on vec4s (a CPU adapter loads every value in a loop over its lanes). Past the row's
// end they are never used.
fn rel_block(n: u32, m0: u32) -> array<f32, TC> {
  if (HAS_POS && POS4) {
    let i4 = (n * p.m + m0) / 4u;
    return eight(pos4[i4], pos4[i4 + 1u]);
  }
  return array<f32, TC>();
}

// TC values from two vec4 loads.
fn eight(a: vec4f, b: vec4f) -> array<f32, TC> {
  return array<f32, TC>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

// Sources m0 … m0 + TC − 1 of the query, given their inner products with it, into its nearest.
fn keep_block(qy: Query, m0: u32, own_sq: f32, dot: array<f32, TC>) {
  let rel = rel_block(qy.n, m0);
  for (var j = 0u; j < TC; j++) {
    let m = m0 + j;
    let sq = share_ssq(own_sq, qy.row * p.m + min(m, p.m - 1u), j);
    if (m < p.m) {
      var d = (qy.sq - 2.0 * dot[j]) + sq;
      if (HAS_POS) {
        if (POS4) { d += rel[j]; } else { d += pos[qy.n * p.m + m]; }
      }
      keep_nearest(d, m);
    }
  }
}

// The same selection from inner products computed beforehand as one matrix product (kernels/knn.ts:
// pointwise-subgroup.wgsl's gemm), which a CPU adapter runs with far fewer loads per product than
// knn_lanes' loop over each query's channels. The products sum the channels in knn_lanes' order and
// the distance is the same expression, so the neighbours are the same.
@compute @workgroup_size(WQ)
fn select_lanes(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) tid: u32) {
  let w = wg.x + wg.y * nwg.x;
  if (w >= p.rows * p.blocks) { return; }
  let qy = query_of(w, WQ, tid);
  clear_nearest();
  let lane = own_lane();
  let first = (qy.row * p.n + qy.n) * p.m;  // this query's row of products
  for (var m0 = 0u; m0 < p.m; m0 += TC) {
    let own_sq = own_ssq(qy.row * p.m + min(m0 + lane, p.m - 1u));
    var dot = array<f32, TC>();
    if (POS4) {
      let i4 = (first + m0) / 4u;
      dot = eight(dots4[i4], dots4[i4 + 1u]);
    } else {
      for (var j = 0u; j < TC; j++) { dot[j] = dots[first + min(m0 + j, p.m - 1u)]; }
    }
    keep_block(qy, m0, own_sq, dot);
  }
  if (qy.q0 + tid < p.n) { write_nearest(qy.row, qy.n); }
}
