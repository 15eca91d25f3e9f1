// Grouped max-relative aggregation (MRConv): R[b,c,n] = max_t (y[b,c,idx[row,n,t]] − x[b,c,n]),
// row = b·G + c / CG, with the first maximising t kept for the backward pass. The gradient to y is
// a gather over an inverse index of idx (CSR built on the GPU, sources in ascending order), or on
// CPU adapters a walk of each (b, c) row in node order: either way each sum runs in a fixed order,
// with no float atomics, bitwise reproducible and the same in both.
// INTERLEAVE: out is MRConv's interleave [B, 2C, N] (channel 2c = x[c], 2c + 1 = R[c]) written in the
// same pass, so the grouped conv after it reads no materialised concat and the backward pass no slices.
// Float arrays are f32 or f16 in memory (x_t … addend_t, withStorageTypes); values and sums are f32.

override INTERLEAVE: bool = false;
override ADDEND: bool = false;   // backward_x / backward_y add `addend` (shaped as dx / dy): the input's other gradient
// The neighbours per node (idx's last axis, = p.k), a template constant (one source per k): so that
// backward_y splits a slot into (node, neighbour) by a constant divisor (a multiply and a shift)
// instead of by a uniform (a hardware division per lane on CPU adapters, which do not vectorise
// it; bench/RESULTS.md), and forward_lanes keeps a node's candidates in a private array.
const K: u32 = {{K}}u;
// Invocations per workgroup of the CPU-adapter entries: 8 (a workgroup is one thread there).
override WG: u32 = 8u;

struct Params {
  b: u32,
  c: u32,
  n: u32,   // query (centre) nodes
  m: u32,   // source nodes
  g: u32,   // channel groups
  k: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
@group(0) @binding(2) var<storage, read> y: array<y_t>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;
@group(0) @binding(5) var<storage, read_write> arg: array<u32>;
@group(0) @binding(7) var<storage, read> grad: array<grad_t>;
@group(0) @binding(8) var<storage, read> arg_r: array<u32>;
@group(0) @binding(9) var<storage, read> offsets: array<u32>;
@group(0) @binding(10) var<storage, read> list: array<u32>;
@group(0) @binding(11) var<storage, read_write> dy: array<dy_t>;
@group(0) @binding(12) var<storage, read> choice: array<u32>;
@group(0) @binding(13) var<storage, read_write> dx: array<dx_t>;
@group(0) @binding(14) var<storage, read> addend: array<addend_t>;

fn linear(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// The idx row of sample b, channel c.
fn row_of(bc: u32) -> u32 {
  return (bc / p.c) * p.g + (bc % p.c) / (p.c / p.g);
}

// Where R's element (b·C + c, n) lives in out (and its gradient in grad).
fn rel_index(bc: u32, n: u32) -> u32 {
  if (INTERLEAVE) { return (2u * bc + 1u) * p.n + n; }
  return bc * p.n + n;
}

// Where x's element (b·C + c, n) is copied to in an interleaved out.
fn centre_index(bc: u32, n: u32) -> u32 {
  return 2u * bc * p.n + n;
}

// R's value r for (b·C + c, n), and the centre x[b, c, n] (its copy, when interleaved).
fn put(bc: u32, n: u32, centre: f32, r: f32) {
  out[rel_index(bc, n)] = out_t(r);
  if (INTERLEAVE) { out[centre_index(bc, n)] = out_t(centre); }
}

// One thread per (b, c, n). A bad index gives NaN and no gradient (arg = k).
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.c * p.n) { return; }
  let bc = t / p.n;
  let n = t - bc * p.n;
  let base = (row_of(bc) * p.n + n) * p.k;
  let centre = f32(x[t]);
  var best = 0.0;
  var best_t = 0u;
  for (var j = 0u; j < p.k; j++) {
    let m = idx[base + j];
    if (m < 0 || u32(m) >= p.m) {
      var nan_bits = 0x7fc00000u;  // a var: a constant NaN is a shader-creation error
      put(bc, n, centre, bitcast<f32>(nan_bits));
      arg[t] = p.k;
      return;
    }
    // The difference per neighbour, then the max (as the reference): rounding can tie them.
    let v = f32(y[bc * p.m + u32(m)]) - centre;
    if (j == 0u || v > best) {
      best = v;
      best_t = j;
    }
  }
  put(bc, n, centre, best);
  arg[t] = best_t;
}

// forward for CPU adapters, which load every value lane by lane: one thread per (b, group, n)
// loads the node's K candidates once and walks the group's channels, where forward reloads them
// (and splits its index by a division) per channel. The same differences and comparisons: bitwise the same out.
@compute @workgroup_size(WG)
fn forward_lanes(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;   // (b·G + g)·N + n
  if (t >= p.b * p.g * p.n) { return; }
  let row = t / p.n;
  let n = t - row * p.n;
  var cand: array<u32, K>;
  var bad = false;
  for (var j = 0u; j < K; j++) {
    let m = idx[t * K + j];
    bad = bad || m < 0 || u32(m) >= p.m;
    cand[j] = u32(m);
  }
  let cg = p.c / p.g;
  for (var bc = row * cg; bc < (row + 1u) * cg; bc++) {   // b·C + c over the group's channels
    let e = bc * p.n + n;
    let centre = f32(x[e]);
    if (bad) {
      var nan_bits = 0x7fc00000u;
      put(bc, n, centre, bitcast<f32>(nan_bits));
      arg[e] = K;
      continue;
    }
    var best = f32(y[bc * p.m + cand[0]]) - centre;
    var best_t = 0u;
    for (var j = 1u; j < K; j++) {
      let v = f32(y[bc * p.m + cand[j]]) - centre;
      if (v > best) {
        best = v;
        best_t = j;
      }
    }
    put(bc, n, centre, best);
    arg[e] = best_t;
  }
}

// As forward, with the slot given per (b, c, n) instead of the argmax (a reference's decisions).
@compute @workgroup_size(256)
fn forward_chosen(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.c * p.n) { return; }
  let bc = t / p.n;
  let n = t - bc * p.n;
  let centre = f32(x[t]);
  let j = choice[t];
  var m = -1;
  if (j < p.k) { m = idx[(row_of(bc) * p.n + n) * p.k + j]; }
  if (m < 0 || u32(m) >= p.m) {
    var nan_bits = 0x7fc00000u;
    put(bc, n, centre, bitcast<f32>(nan_bits));
    arg[t] = p.k;
    return;
  }
  put(bc, n, centre, f32(y[bc * p.m + u32(m)]) - centre);
  arg[t] = j;
}

// dy[b, c, m] = Σ grad[b, c, n] over the (n, t) slots of row(b, c) that point at m and won the max
// for channel c, in ascending slot order (+ addend).
@compute @workgroup_size(256)
fn backward_y(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.c * p.m) { return; }
  let bc = t / p.m;
  let row = row_of(bc);
  let seg = row * (p.m + 1u) + t - bc * p.m;  // offsets are [rows, M + 1]
  let row_first = row * p.n * K;              // the row's first slot
  var acc = 0.0;
  for (var e = offsets[seg]; e < offsets[seg + 1u]; e++) {
    let slot = list[e] - row_first;  // n·K + neighbour
    let n = slot / K;
    if (arg_r[bc * p.n + n] == slot - n * K) { acc += f32(grad[rel_index(bc, n)]); }
  }
  if (ADDEND) { acc += f32(addend[t]); }
  dy[t] = dy_t(acc);
}

// backward_y for CPU adapters, which load every value lane by lane: one thread per (b, c) row walks
// the nodes n in order and adds grad[b, c, n] into dy at the neighbour that won n's max, so it
// touches each winner once where backward_y tests all K slots that point at a source (and needs no
// inverse index). Each dy[b, c, m] sums the same terms in the same (ascending n) order: bitwise the
// same dy. The row is the thread's own, so its read-modify-writes need no atomics. They sum in dy's
// type, so the launcher always binds an f32 dy here (and casts it for an f16 y).
@compute @workgroup_size(WG)
fn backward_y_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let bc = gid.x + gid.y * nwg.x * WG;   // b·C + c
  if (bc >= p.b * p.c) { return; }
  let dy_row = bc * p.m;
  for (var m = 0u; m < p.m; m++) { dy[dy_row + m] = dy_t(0.0); }
  let idx_row = row_of(bc) * p.n;
  for (var n = 0u; n < p.n; n++) {
    let j = arg_r[bc * p.n + n];
    if (j >= K) { continue; }   // a bad index: no gradient
    let m = u32(idx[(idx_row + n) * K + j]);
    if (m < p.m) { dy[dy_row + m] += dy_t(grad[rel_index(bc, n)]); }
  }
  if (ADDEND) {
    for (var m = 0u; m < p.m; m++) { dy[dy_row + m] += dy_t(addend[dy_row + m]); }
  }
}

// dx = −dR, plus the gradient of x's own copy when interleaved (plus `addend`: x's gradient from
// its other uses, e.g. as y).
@compute @workgroup_size(256)
fn backward_x(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.c * p.n) { return; }
  let bc = t / p.n;
  let n = t - bc * p.n;
  let r = f32(grad[rel_index(bc, n)]);
  var v = -r;
  if (INTERLEAVE) { v = f32(grad[centre_index(bc, n)]) - r; }
  if (ADDEND) { v += f32(addend[t]); }
  dx[t] = dx_t(v);
}
