// BatchNorm over x [B, C, S] (S = the flattened spatial size), per channel c over its n = B·S values.
// When one workgroup per channel is enough (the host decides: small n, or a CPU adapter, where only
// the number of workgroups in flight matters), `train_forward` and `grad_fused` do a channel's
// reduction and its elementwise pass in one dispatch: the second walk over the channel reads what
// the first just read, and the reduced values never leave the workgroup. Otherwise the reductions run
// in two passes so that large B·S still spread over many workgroups: `*_partial` reduces chunk k of
// channel c (workgroup (k, c)) and `*_final` combines the chunks of one channel, then an elementwise
// pass. Every combination happens in a fixed order (per-thread strided loops, then a tree), so the
// results are bitwise deterministic. Statistics use Welford per thread and Chan's pairwise merge
// (no E[x²] − E[x]² cancellation). A device with fewer storage bindings per stage than the fused
// entries bind runs split ones instead (stats_final, then normalize; grad_final, then grad_dx).
// With RESIDUAL the forward adds the block's residual to its output, y = residual + scale_b·bn(x),
// where scale_b is image b's drop-path factor (SCALED; else 1): the sum a separate add (or addcmul)
// would make from bn's output, without that output ever being stored. Backward then sees
// gy·scale_b (the residual's own gradient is gy itself, which needs no pass).
// x, gy, the residual and out (y or dx) are stored as f32 or f16 (their `NAME_t` aliases, given by
// the host); every value is widened as it is read, and statistics and sums stay f32.

override GELU: bool = false;    // the output is gelu(bn(x)); backward recomputes the pre-activation
override TRAIN: bool = true;    // backward: batch statistics (full gradient) vs running ones (affine)
override RESIDUAL: bool = false; // forward: out = residual + scale_b·bn(x)
override SCALED: bool = false;   // the branch scaled per image (drop path): forward and backward
// With GELU, grad_fused* park gz in dx's slot between their walks; an f16 dx would round it, so
// then (false) the second walk recomputes it instead.
override PARK: bool = true;

struct Params {
  c: u32,
  s: u32,
  n: u32,         // B·S, values per channel
  chunks: u32,    // chunks per channel
  chunk: u32,     // values per chunk
  total: u32,     // B·C·S
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xv: array<xv_t>;   // x ("x" would also match every `.x` in wgsl_reflect's use analysis)
@group(0) @binding(2) var<storage, read> gy: array<gy_t>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<vec2f>;      // (mean, 1/√(var + eps)) per channel
@group(0) @binding(6) var<storage, read> part_in: array<vec4f>;
@group(0) @binding(7) var<storage, read> branch_scale: array<f32>; // per image (SCALED)
@group(0) @binding(8) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(9) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(10) var<storage, read_write> part_out: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> stats_out: array<vec2f>;
@group(0) @binding(12) var<storage, read_write> out: array<out_t>;
@group(0) @binding(13) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(14) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(15) var<storage, read> residual: array<residual_t>;
// The same x, gy and out as whole vec4s (the *4 kernels, planes of a multiple of 4 values): a CPU
// adapter loads and stores lane by lane, and a vec4 moves 4 values per lane loop (bench/RESULTS.md).
@group(0) @binding(16) var<storage, read> x4: array<vec4<x4_t>>;
@group(0) @binding(17) var<storage, read> gy4: array<vec4<gy4_t>>;
@group(0) @binding(18) var<storage, read_write> out4: array<vec4<out4_t>>;
@group(0) @binding(19) var<storage, read> residual4: array<vec4<residual4_t>>;

// Invocations per workgroup (a power of two) and values per invocation of the elementwise passes:
// 256 and 1 on GPUs; CPU adapters take fewer, fuller invocations (a barrier there is a coroutine
// switch per 8 lanes and an index division costs tens of cycles, bench/RESULTS.md).
override WG: u32 = 256u;
override PER: u32 = 1u;
var<workgroup> red: array<vec4f, WG>;

// Walks the units j, j + WG, j + 2·WG, … of one channel without dividing per step: (image,
// position), and the step WG as whole images and a remainder, so that a step costs the same on
// small planes (S = 4: 16 images per step) as on large ones. A unit is a value (plane = p.s) or a
// vec4 (plane = p.s / 4).
struct Cursor { b: u32, s: u32, db: u32, ds: u32, plane: u32 }

fn cursor_in(j: u32, plane: u32) -> Cursor {
  return Cursor(j / plane, j % plane, WG / plane, WG % plane, plane);
}

fn cursor(j: u32) -> Cursor {
  return cursor_in(j, p.s);
}

fn advance(k: ptr<function, Cursor>) {
  (*k).s += (*k).ds;
  (*k).b += (*k).db;
  if ((*k).s >= (*k).plane) { (*k).s -= (*k).plane; (*k).b += 1u; }
}

fn at(c: u32, k: Cursor) -> u32 {
  return (k.b * p.c + c) * k.plane + k.s;
}

// Chan et al.: merge (count, mean, M2) summaries.
fn merge(a: vec4f, b: vec4f) -> vec4f {
  let n = a.x + b.x;
  if (n == 0.0) { return a; }
  let d = b.y - a.y;
  return vec4f(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * b.x / n), 0.0);
}

// Fixed-order tree over `red`; every thread returns red[0].
fn tree_merge(t: u32) -> vec4f {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { red[t] = merge(red[t], red[t + s]); }
  }
  workgroupBarrier();
  return red[0];
}

fn tree_sum(t: u32) -> vec4f {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { red[t] += red[t + s]; }
  }
  workgroupBarrier();
  return red[0];
}

//!include gelu.wgsl

// Channel c's (weight, bias), read once per walk: a CPU adapter loads even a lane-uniform address
// lane by lane (bench/RESULTS.md), so a read per value would cost as much as reading x again twice.
fn affine(c: u32) -> vec2f {
  return vec2f(weight[c], bias[c]);
}

// Gradient reaching the normalised value: gy, or gy·gelu'(z) with z recomputed from x̂.
fn grad_z(wb: vec2f, xhat: f32, g: f32) -> f32 {
  if (!GELU) { return g; }
  let z = xhat * wb.x + wb.y;
  return g * gelu_grad(z);
}

// Image b's branch factor: its drop-path scale, or 1 (a product with 1 is exact).
fn scale_of(b: u32) -> f32 {
  if (SCALED) { return branch_scale[b]; }
  return 1.0;
}

// The forward's stored value at flat index a of image b from the branch's value v: residual + v·scale
// (as addcmul computes it), or v alone.
fn with_residual(v: f32, b: u32, a: u32) -> f32 {
  if (RESIDUAL) { return f32(residual[a]) + v * scale_of(b); }
  return v;
}

fn with_residual4(v: vec4f, b: u32, a: u32) -> vec4f {
  if (RESIDUAL) { return vec4f(residual4[a]) + v * scale_of(b); }
  return v;
}

// Flat element i of x, stepped to i + 1 without dividing: (image, channel, position in plane).
struct Element { b: u32, c: u32, s: u32 }

fn element(i: u32) -> Element {
  return Element(i / (p.s * p.c), (i / p.s) % p.c, i % p.s);
}

fn next(e: ptr<function, Element>) {
  (*e).s += 1u;
  if ((*e).s == p.s) {
    (*e).s = 0u;
    (*e).c += 1u;
    if ((*e).c == p.c) {
      (*e).c = 0u;
      (*e).b += 1u;
    }
  }
}

// ---------------------------------------------------------------- forward

// Thread t's (count, mean, M2) over values begin + t, begin + t + WG, … < end of channel c.
fn welford_add(acc: ptr<function, vec4f>, v: f32) {
  (*acc).x += 1.0;
  let d = v - (*acc).y;
  (*acc).y += d / (*acc).x;
  (*acc).z += d * (v - (*acc).y);
}

fn welford(c: u32, begin: u32, end: u32, t: u32) -> vec4f {
  var acc = vec4f(0.0);
  var k = cursor(begin + t);
  for (var j = begin + t; j < end; j += WG) {
    welford_add(&acc, f32(xv[at(c, k)]));
    advance(&k);
  }
  return acc;
}

// (count, mean, M2) of chunk wg.x of channel wg.y.
@compute @workgroup_size(WG)
fn stats_partial(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.y;
  let begin = wg.x * p.chunk;
  red[t] = welford(c, begin, min(p.n, begin + p.chunk), t);
  let r = tree_merge(t);
  if (t == 0u) { part_out[c * p.chunks + wg.x] = r; }
}

// Batch mean and 1/√(biased var + eps) of channel c from its (count, mean, M2); running statistics
// updated in place with the unbiased variance, as PyTorch: run ← (1 − m)·run + m·stat.
fn finish_stats(c: u32, r: vec4f) {
  let n = r.x;
  stats_out[c] = vec2f(r.y, inverseSqrt(r.z / n + p.eps));
  let m = p.momentum;
  running_mean[c] = (1.0 - m) * running_mean[c] + m * r.y;
  running_var[c] = (1.0 - m) * running_var[c] + m * (r.z / (n - 1.0));
}

// Channel c's (count, mean, M2) from its chunk summaries, merged in a fixed order.
fn merged_chunks(c: u32, t: u32) -> vec4f {
  var acc = vec4f(0.0);
  for (var k = t; k < p.chunks; k += WG) { acc = merge(acc, part_in[c * p.chunks + k]); }
  red[t] = acc;
  return tree_merge(t);
}

// After stats_partial, on devices with too few storage bindings for normalize_chunk (see
// kernels/batchnorm.ts): channel wg.x's statistics and running-statistics update, for `normalize`.
@compute @workgroup_size(WG)
fn stats_final(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = merged_chunks(wg.x, t);
  if (t == 0u) { finish_stats(wg.x, r); }
}

// Train mode, after stats_partial: every workgroup of channel wg.y merges the channel's chunk
// summaries in a fixed order (the first also writes the statistics and updates the running ones),
// then normalises chunk wg.x. A pass that only merged would cost a dispatch of its own.
@compute @workgroup_size(WG)
fn normalize_chunk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.y;
  let r = merged_chunks(c, t);
  if (wg.x == 0u && t == 0u) { finish_stats(c, r); }
  let st = vec2f(r.y, inverseSqrt(r.z / r.x + p.eps));
  let wb = affine(c);
  let begin = wg.x * p.chunk;
  let end = min(p.n, begin + p.chunk);
  var k = cursor(begin + t);
  for (var j = begin + t; j < end; j += WG) {
    let a = at(c, k);
    out[a] = out_t(with_residual(normalized(wb, st, f32(xv[a])), k.b, a));
    advance(&k);
  }
}

// Eval mode: the running statistics, in the same (mean, 1/√(var + eps)) form.
@compute @workgroup_size(64)
fn eval_stats(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.c) { return; }
  stats_out[c] = vec2f(running_mean[c], inverseSqrt(running_var[c] + p.eps));
}

fn normalized(wb: vec2f, st: vec2f, v: f32) -> f32 {
  let z = (v - st.x) * st.y * wb.x + wb.y;
  if (GELU) { return gelu_(z); }
  return z;
}

@compute @workgroup_size(WG)
fn normalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = (gid.x + gid.y * nwg.x * WG) * PER;
  if (i0 >= p.total) { return; }
  var e = element(i0);
  for (var q = 0u; q < PER; q++) {
    let i = i0 + q;
    if (i >= p.total) { return; }
    out[i] = out_t(with_residual(normalized(affine(e.c), stats[e.c], f32(xv[i])), e.b, i));
    next(&e);
  }
}

// Channel c's batch (mean, 1/√(var + eps)) from the merged thread summaries in `red`; thread 0
// also writes them and updates the running statistics.
fn batch_stats(c: u32, t: u32) -> vec2f {
  let r = tree_merge(t);
  if (t == 0u) { finish_stats(c, r); }
  return vec2f(r.y, inverseSqrt(r.z / r.x + p.eps));
}

// Train mode, channel wg.x in one workgroup: statistics, running-statistics update, normalisation.
@compute @workgroup_size(WG)
fn train_forward(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  red[t] = welford(c, 0u, p.n, t);
  let st = batch_stats(c, t);
  let wb = affine(c);
  var k = cursor(t);
  for (var j = t; j < p.n; j += WG) {
    let a = at(c, k);
    out[a] = out_t(with_residual(normalized(wb, st, f32(xv[a])), k.b, a));
    advance(&k);
  }
}

// train_forward over whole vec4s: a thread takes 4 consecutive values per step.
@compute @workgroup_size(WG)
fn train_forward4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  let plane = p.s / 4u;
  var acc = vec4f(0.0);
  var k = cursor_in(t, plane);
  for (var j = t; j < p.n / 4u; j += WG) {
    let v = vec4f(x4[at(c, k)]);
    advance(&k);
    for (var q = 0u; q < 4u; q++) { welford_add(&acc, v[q]); }
  }
  red[t] = acc;
  let st = batch_stats(c, t);
  let wb = affine(c);
  k = cursor_in(t, plane);
  for (var j = t; j < p.n / 4u; j += WG) {
    let a = at(c, k);
    let v = vec4f(x4[a]);
    out4[a] = vec4<out4_t>(with_residual4(vec4f(normalized(wb, st, v.x), normalized(wb, st, v.y), normalized(wb, st, v.z), normalized(wb, st, v.w)), k.b, a));
    advance(&k);
  }
}

// ---------------------------------------------------------------- backward

// Thread t's (Σ gz, Σ gz·x̂) over values begin + t, begin + t + WG, … < end of channel c.
fn grad_sums(c: u32, st: vec2f, begin: u32, end: u32, t: u32) -> vec4f {
  var acc = vec4f(0.0);
  let wb = affine(c);
  var k = cursor(begin + t);
  for (var j = begin + t; j < end; j += WG) {
    let a = at(c, k);
    let xhat = (f32(xv[a]) - st.x) * st.y;
    let gz = grad_z(wb, xhat, f32(gy[a]) * scale_of(k.b));
    advance(&k);
    acc += vec4f(gz, gz * xhat, 0.0, 0.0);
  }
  return acc;
}

// (Σ gz, Σ gz·x̂) of chunk wg.x of channel wg.y.
@compute @workgroup_size(WG)
fn grad_partial(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.y;
  let begin = wg.x * p.chunk;
  red[t] = grad_sums(c, stats[c], begin, min(p.n, begin + p.chunk), t);
  let r = tree_sum(t);
  if (t == 0u) { part_out[c * p.chunks + wg.x] = r; }
}

// dbias = Σ gz, dweight = Σ gz·x̂ for channel c (r = the sums), and the coefficients of dx:
// train: dx = w·σ⁻¹·(gz − Σgz/n − x̂·Σgz·x̂/n) (the batch statistics depend on x); eval: dx = w·σ⁻¹·gz.
fn dx_coefficients(c: u32, r: vec4f) -> vec4f {
  let alpha = weight[c] * stats[c].y;
  if (TRAIN) {
    let inv_n = 1.0 / f32(p.n);
    return vec4f(alpha, -alpha * r.y * inv_n, -alpha * r.x * inv_n, 0.0);
  }
  return vec4f(alpha, 0.0, 0.0, 0.0);
}

// Channel c's (Σ gz, Σ gz·x̂) from its chunks' sums, added in a fixed order.
fn channel_grad_sums(c: u32, t: u32) -> vec4f {
  var acc = vec4f(0.0);
  for (var k = t; k < p.chunks; k += WG) { acc += part_in[c * p.chunks + k]; }
  red[t] = acc;
  return tree_sum(t);
}

fn store_affine_grads(c: u32, r: vec4f) {
  dbias[c] = r.x;
  dweight[c] = r.y;
}

// dweight and dbias only (x needs no gradient, or grad_dx writes it).
@compute @workgroup_size(WG)
fn grad_final(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = channel_grad_sums(wg.x, t);
  if (t == 0u) { store_affine_grads(wg.x, r); }
}

// After grad_partial: every workgroup of channel wg.y adds the channel's chunk sums in a fixed order
// (the first also writes dweight and dbias), then writes dx over chunk wg.x.
@compute @workgroup_size(WG)
fn grad_chunk(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let r = channel_grad_sums(wg.y, t);
  if (wg.x == 0u && t == 0u) { store_affine_grads(wg.y, r); }
  chunk_dx(wg.y, wg.x, dx_coefficients(wg.y, r), t);
}

// grad_chunk without dweight and dbias (grad_final writes them), on devices with too few storage
// bindings for grad_chunk (see kernels/batchnorm.ts).
@compute @workgroup_size(WG)
fn grad_dx(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  chunk_dx(wg.y, wg.x, dx_coefficients(wg.y, channel_grad_sums(wg.y, t)), t);
}

// dx over chunk `chunk` of channel c, from the coefficients of its dx.
fn chunk_dx(c: u32, chunk: u32, coefs: vec4f, t: u32) {
  let st = stats[c];
  let wb = affine(c);
  let begin = chunk * p.chunk;
  let end = min(p.n, begin + p.chunk);
  var k = cursor(begin + t);
  for (var j = begin + t; j < end; j += WG) {
    let a = at(c, k);
    out[a] = out_t(dx_value(wb, st, coefs, f32(xv[a]), f32(gy[a]) * scale_of(k.b)));
    advance(&k);
  }
}

// Channel c's dbias = Σ gz and dweight = Σ gz·x̂ from the threads' sums in `red` (thread 0 writes
// them), and the coefficients of its dx.
fn affine_grads(c: u32, t: u32) -> vec4f {
  let r = tree_sum(t);
  if (t == 0u) { store_affine_grads(c, r); }
  return dx_coefficients(c, r);
}

fn dx_of(k: vec4f, xhat: f32, gz: f32) -> f32 {
  return k.x * gz + k.y * xhat + k.z;
}

fn dx_value(wb: vec2f, st: vec2f, k: vec4f, v: f32, g: f32) -> f32 {
  let xhat = (v - st.x) * st.y;
  return dx_of(k, xhat, grad_z(wb, xhat, g));
}

// Channel wg.x in one workgroup: dweight, dbias and dx (which must be wanted: it is always written).
// With GELU, the first walk parks gz (GELU's derivative costs an erf and an exp) in dx's own slot,
// where the second walk, on the same elements in the same lane, picks it up: no second evaluation.
@compute @workgroup_size(WG)
fn grad_fused(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  let st = stats[c];
  let wb = affine(c);
  var acc = vec4f(0.0);
  var k = cursor(t);
  for (var j = t; j < p.n; j += WG) {
    let a = at(c, k);
    let xhat = (f32(xv[a]) - st.x) * st.y;
    let gz = grad_z(wb, xhat, f32(gy[a]) * scale_of(k.b));
    advance(&k);
    if (GELU && PARK) { out[a] = out_t(gz); }
    acc += vec4f(gz, gz * xhat, 0.0, 0.0);
  }
  red[t] = acc;
  let coefs = affine_grads(c, t);
  k = cursor(t);
  for (var j = t; j < p.n; j += WG) {
    let a = at(c, k);
    let xhat = (f32(xv[a]) - st.x) * st.y;
    var gz = f32(gy[a]) * scale_of(k.b);
    advance(&k);
    if (GELU && PARK) { gz = f32(out[a]); } else { gz = grad_z(wb, xhat, gz); }
    out[a] = out_t(dx_of(coefs, xhat, gz));
  }
}

// grad_fused over whole vec4s: a thread takes 4 consecutive values per step.
@compute @workgroup_size(WG)
fn grad_fused4(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) t: u32) {
  let c = wg.x;
  let st = stats[c];
  let wb = affine(c);
  let plane = p.s / 4u;
  var acc = vec4f(0.0);
  var k = cursor_in(t, plane);
  for (var j = t; j < p.n / 4u; j += WG) {
    let a = at(c, k);
    let xhat = (vec4f(x4[a]) - st.x) * st.y;
    let g = vec4f(gy4[a]) * scale_of(k.b);
    advance(&k);
    let gz = vec4f(grad_z(wb, xhat.x, g.x), grad_z(wb, xhat.y, g.y), grad_z(wb, xhat.z, g.z), grad_z(wb, xhat.w, g.w));
    if (GELU && PARK) { out4[a] = vec4<out4_t>(gz); }
    acc += vec4f(dot(gz, vec4f(1.0)), dot(gz, xhat), 0.0, 0.0);
  }
  red[t] = acc;
  let coefs = affine_grads(c, t);
  k = cursor_in(t, plane);
  for (var j = t; j < p.n / 4u; j += WG) {
    let a = at(c, k);
    let xhat = (vec4f(x4[a]) - st.x) * st.y;
    var gz = vec4f(gy4[a]) * scale_of(k.b);
    advance(&k);
    if (GELU && PARK) {
      gz = vec4f(out4[a]);
    } else {
      gz = vec4f(grad_z(wb, xhat.x, gz.x), grad_z(wb, xhat.y, gz.y), grad_z(wb, xhat.z, gz.z), grad_z(wb, xhat.w, gz.w));
    }
    out4[a] = vec4<out4_t>(coefs.x * gz + coefs.y * xhat + coefs.z);
  }
}
