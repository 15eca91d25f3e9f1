// Message passing over a fixed bipartite edge list (graph.ts): node features gathered onto edges
// (the first layer of a per-edge MLP on [src, dst, edge]) and edge features reduced onto nodes
// (sum or mean). Every reduction walks a CSR list built on the CPU in ascending edge order: no float
// atomics, bitwise reproducible. Channels are walked as V (vec4f where C % 4 = 0, else f32; the
// prelude the launcher puts in front defines it): an invocation's index arithmetic and edge-list
// reads then serve four channels.

struct Params {
  b: u32,
  e: u32,      // edges
  n: u32,      // nodes of the reduced side (csr rows)
  c: u32,      // channels, in V's
  ns: u32,     // source-side nodes
  nd: u32,     // destination-side nodes
  flags: u32,  // bit 0: a destination term, bit 1: an edge term, bit 2: mean (divide by degree)
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xs: array<V>;
@group(0) @binding(2) var<storage, read> xd: array<V>;
@group(0) @binding(3) var<storage, read> xe: array<V>;
@group(0) @binding(4) var<storage, read> src: array<u32>;
@group(0) @binding(5) var<storage, read> dst: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<V>;
@group(0) @binding(7) var<storage, read> offsets: array<u32>;
@group(0) @binding(8) var<storage, read> list: array<u32>;
@group(0) @binding(9) var<storage, read> node: array<u32>;

fn linear(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// out[b, e, c] = xs[b, src[e], c] (+ xd[b, dst[e], c]) (+ xe[b, e, c]).
@compute @workgroup_size(256)
fn edge_gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.e * p.c) { return; }
  let c = t % p.c;
  let e = (t / p.c) % p.e;
  let b = t / (p.c * p.e);
  var v = xs[(b * p.ns + src[e]) * p.c + c];
  if ((p.flags & 1u) != 0u) { v += xd[(b * p.nd + dst[e]) * p.c + c]; }
  if ((p.flags & 2u) != 0u) { v += xe[t]; }
  out[t] = v;
}

// out[b, n, c] = Σ_{e ∈ list(n)} xs[b, e, c], divided by the degree when mean (0 without edges).
@compute @workgroup_size(256)
fn reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.n * p.c) { return; }
  let c = t % p.c;
  let n = (t / p.c) % p.n;
  let b = t / (p.c * p.n);
  let lo = offsets[n];
  let hi = offsets[n + 1u];
  var acc = V(0.0);
  for (var k = lo; k < hi; k++) { acc += xs[(b * p.e + list[k]) * p.c + c]; }
  if ((p.flags & 4u) != 0u && hi > lo) { acc = acc / f32(hi - lo); }
  out[t] = acc;
}

// Backward of a mean: out[b, e, c] = xs[b, node[e], c] / degree(node[e]) (offsets are of that side).
@compute @workgroup_size(256)
fn spread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear(gid, nwg);
  if (t >= p.b * p.e * p.c) { return; }
  let c = t % p.c;
  let e = (t / p.c) % p.e;
  let b = t / (p.c * p.e);
  let n = node[e];
  var v = xs[(b * p.n + n) * p.c + c];
  if ((p.flags & 4u) != 0u) { v = v / f32(offsets[n + 1u] - offsets[n]); }
  out[t] = v;
}
