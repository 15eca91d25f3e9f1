// Index ops. gather: out[o, j, i] = x[o, idx[j], i]. The deterministic scatter-add runs through an
// inverse index (CSR) built on the GPU: count per target (integer atomics: exact), exclusive scan,
// fill (slot order racy), sort each segment by source position (order fixed again), then each
// target sums its sources in ascending order. No float atomics: bitwise equal across runs. (The
// per-row variant, csr_rows, needs neither atomics nor a sort.) Values (x, out) are f32 or f16 in
// memory (x_t, out_t: withStorageTypes); index_add sums in f32.

struct Params {
  outer: u32,
  d: u32,      // rows of the indexed axis (targets)
  j: u32,      // number of indices
  inner: u32,  // csr_rows: blocks of indices per row
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<out_t>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> counts_r: array<u32>;
@group(0) @binding(6) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(7) var<storage, read> offsets_r: array<u32>;
@group(0) @binding(8) var<storage, read_write> cursor: array<atomic<u32>>;
@group(0) @binding(9) var<storage, read_write> list: array<u32>;
@group(0) @binding(10) var<storage, read> list_r: array<u32>;
@group(0) @binding(11) var<storage, read_write> block_counts: array<u32>;

fn linear(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.outer * p.j * p.inner) { return; }
  let i = t % p.inner;
  let jj = (t / p.inner) % p.j;
  let o = t / (p.inner * p.j);
  let k = idx[jj];
  var nan_bits = 0x7fc00000u;  // a var: a constant NaN is a shader-creation error
  if (k < 0 || u32(k) >= p.d) { out[t] = out_t(bitcast<f32>(nan_bits)); return; }  // NaN marks a bad index
  out[t] = out_t(x[(o * p.d + u32(k)) * p.inner + i]);
}

@compute @workgroup_size(256)
fn csr_count(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.j) { return; }
  let k = idx[t];
  if (k >= 0 && u32(k) < p.d) { atomicAdd(&counts[u32(k)], 1u); }
}

// offsets[0..d] = exclusive prefix sums of counts (offsets[d] = total). One workgroup.
var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(256)
fn csr_scan(@builtin(local_invocation_index) t: u32) {
  let chunk = (p.d + 255u) / 256u;
  let lo = min(t * chunk, p.d);
  let hi = min(lo + chunk, p.d);
  var s = 0u;
  for (var k = lo; k < hi; k++) { s += counts_r[k]; }
  part[t] = s;
  workgroupBarrier();
  if (t == 0u) {
    var acc = 0u;
    for (var k = 0u; k < 256u; k++) { let v = part[k]; part[k] = acc; acc += v; }
    offsets[p.d] = acc;
  }
  workgroupBarrier();
  var acc = part[t];
  for (var k = lo; k < hi; k++) { offsets[k] = acc; acc += counts_r[k]; }
}

@compute @workgroup_size(256)
fn csr_fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.j) { return; }
  let k = idx[t];
  if (k < 0 || u32(k) >= p.d) { return; }
  let slot = atomicAdd(&cursor[u32(k)], 1u);
  list[offsets_r[u32(k)] + slot] = t;
}

@compute @workgroup_size(256)
fn csr_sort(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let d = linear(gid, nwg);
  if (d >= p.d) { return; }
  let lo = offsets_r[d];
  let hi = offsets_r[d + 1u];
  for (var a = lo + 1u; a < hi; a++) {
    let v = list[a];
    var b = a;
    while (b > lo && list[b - 1u] > v) { list[b] = list[b - 1u]; b--; }
    list[b] = v;
  }
}

// The same inverse index per row of idx [rows = p.outer, p.j] whose values index that row's own
// p.d targets: one workgroup builds a row's part alone, in list[r·j ..) with segment (r, m) at
// offsets[r·(d + 1) + m .. + 1]. Out-of-range entries are left out (the row's tail stays unused).
// No atomics and no sort: the row's indices split into p.inner contiguous blocks, thread u < blocks
// counts its block's entries per target (block_counts[r, u, m]), a scan over (m, u) turns the counts
// into each block's first slot in each segment, and thread u fills its block in ascending order. So
// a segment holds block 0's entries, then block 1's, ..., each ascending: ascending throughout.
const ROW_WG: u32 = 64u;
var<workgroup> row_part: array<u32, ROW_WG>;

fn row_target(j: u32) -> u32 {
  let k = idx[j];
  return select(p.d, u32(k), k >= 0 && u32(k) < p.d);  // p.d: out of range
}

@compute @workgroup_size(ROW_WG)
fn csr_rows(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let blocks = p.inner;
  let first = wg.x * p.j;           // the row's indices and list entries
  let seg = wg.x * (p.d + 1u);      // its offsets
  let per_block = (p.j + blocks - 1u) / blocks;
  let j_lo = first + min(t * per_block, p.j);
  let j_hi = first + min((t + 1u) * per_block, p.j);  // empty for t ≥ blocks
  let own = (wg.x * blocks + t) * p.d;                 // this thread's counters, if t < blocks
  if (t < blocks) {
    for (var m = 0u; m < p.d; m++) { block_counts[own + m] = 0u; }
    for (var j = j_lo; j < j_hi; j++) {
      let m = row_target(j);
      if (m < p.d) { block_counts[own + m] += 1u; }
    }
  }
  storageBarrier();
  // Exclusive scan over (target, block): thread t owns a contiguous range of targets.
  let per = (p.d + ROW_WG - 1u) / ROW_WG;
  let lo = min(t * per, p.d);
  let hi = min(lo + per, p.d);
  let counts0 = wg.x * blocks * p.d;
  var s = 0u;
  for (var m = lo; m < hi; m++) {
    for (var u = 0u; u < blocks; u++) { s += block_counts[counts0 + u * p.d + m]; }
  }
  row_part[t] = s;
  workgroupBarrier();
  if (t == 0u) {
    var acc = first;
    for (var i = 0u; i < ROW_WG; i++) { let v = row_part[i]; row_part[i] = acc; acc += v; }
    offsets[seg + p.d] = acc;
  }
  workgroupBarrier();
  var acc = row_part[t];
  for (var m = lo; m < hi; m++) {
    offsets[seg + m] = acc;
    for (var u = 0u; u < blocks; u++) {
      let c = counts0 + u * p.d + m;
      let n = block_counts[c];
      block_counts[c] = acc;  // now block u's next slot in segment m
      acc += n;
    }
  }
  storageBarrier();
  if (t < blocks) {
    for (var j = j_lo; j < j_hi; j++) {
      let m = row_target(j);
      if (m < p.d) {
        let slot = block_counts[own + m];
        block_counts[own + m] = slot + 1u;
        list[slot] = j;
      }
    }
  }
}

// out[o, d, i] = Σ_{j ∈ list(d)} x[o, j, i], in ascending j.
@compute @workgroup_size(256)
fn index_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.outer * p.d * p.inner) { return; }
  let i = t % p.inner;
  let d = (t / p.inner) % p.d;
  let o = t / (p.inner * p.d);
  var s = 0.0;
  for (var e = offsets_r[d]; e < offsets_r[d + 1u]; e++) {
    s += f32(x[(o * p.j + list_r[e]) * p.inner + i]);
  }
  out[t] = out_t(s);
}
