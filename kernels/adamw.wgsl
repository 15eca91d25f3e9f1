// Fused AdamW (torch.optim.AdamW's formula) and global-norm gradient clipping over every parameter
// at once. Parameters, gradients and both moments sit in flat buffers (adamw.ts copies parameters
// and gradients in and out) in which every parameter starts on a CHUNK boundary, so each chunk
// belongs to exactly one parameter: `owner` maps chunk → parameter slot and `hyper` holds that
// slot's values for this step. Large models split into buckets (one binding each); `chunk_base`
// locates a bucket's chunks in `owner` and `partials`.
//   norm_partial: Σ g² of each chunk of active slots (0 elsewhere), one workgroup per chunk;
//   norm_final:   one workgroup sums the partials in a fixed order → norm, clip scale, non-finite flag;
//   adamw:        the update, with each gradient multiplied by the clip scale;
//   scale_grads:  gradients × clip scale (for clipGradNorm without an optimizer step).

const CHUNK: u32 = 1024u;
// Invocations per workgroup: 256 on GPUs; CPU adapters take 8 (a workgroup is one thread there, and
// each level of the reduction tree a coroutine switch per SIMD row) with the *4 entries.
override WG: u32 = 256u;

struct Params {
  n: u32,               // elements in this bucket; norm_final: number of partial sums
  chunk_base: u32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32, // rounded from float64, as torch passes 1 − β to its kernels
  one_minus_beta2: f32,
  eps: f32,
  skip_nonfinite: u32,  // leave parameters and moments untouched when the norm is NaN/Inf
  max_norm: f32,        // < 0: no clipping
  clip_eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> owner: array<u32>;
// Per slot: (active this step, 1 − lr·wd, lr / (1 − β1^t), sqrt(1 − β2^t)), written every step.
@group(0) @binding(2) var<storage, read> hyper: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
// (global gradient norm, clip scale, 1 if the norm is NaN or ±Inf)
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> param: array<f32>;
@group(0) @binding(7) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(8) var<storage, read_write> exp_avg_sq: array<f32>;
// The same flat buffers as whole vec4s (the *4 entries, CPU adapters: a vec4 moves 4 values per
// lane loop, and a chunk's 4 consecutive values share its owner's hyperparameters, read once).
@group(0) @binding(9) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> param4: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> exp_avg4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> exp_avg_sq4: array<vec4f>;

var<workgroup> acc: array<f32, WG>;

// Fixed-order tree over the workgroup (bitwise deterministic); the result is valid in thread 0.
fn tree_sum(t: u32, v: f32) -> f32 {
  acc[t] = v;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (t < s) { acc[t] += acc[t + s]; }
  }
  return acc[0];
}

@compute @workgroup_size(WG)
fn norm_partial(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) t: u32) {
  let c = wg.x + wg.y * nwg.x;
  if (c * CHUNK >= p.n) { return; }
  // Inactive slots may hold last step's gradients: mask them instead of branching (barriers follow).
  let on = hyper[owner[p.chunk_base + c]].x != 0.0;
  var s = 0.0;
  for (var k = t; k < CHUNK; k += WG) {
    let g = select(0.0, grad[c * CHUNK + k], on);
    s += g * g;
  }
  let total = tree_sum(t, s);
  if (t == 0u) { partials[p.chunk_base + c] = total; }
}

@compute @workgroup_size(WG)
fn norm_partial4(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) t: u32) {
  let c = wg.x + wg.y * nwg.x;
  if (c * CHUNK >= p.n) { return; }
  let on = hyper[owner[p.chunk_base + c]].x != 0.0;
  var s = 0.0;
  for (var k = t; k < CHUNK / 4u; k += WG) {
    let g = select(vec4f(0.0), grad4[c * (CHUNK / 4u) + k], on);
    s += dot(g, g);
  }
  let total = tree_sum(t, s);
  if (t == 0u) { partials[p.chunk_base + c] = total; }
}

@compute @workgroup_size(WG)
fn norm_final(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var c = t; c < p.n; c += WG) { s += partials[c]; }
  let total = tree_sum(t, s);
  if (t == 0u) {
    let norm = sqrt(total);
    // Exponent bits all ones: NaN or Inf (comparisons with NaN may be folded away by compilers).
    let nonfinite = (bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u;
    stats[0] = norm;
    // torch.nn.utils.clip_grad_norm_: clamp(max_norm / (norm + 1e-6), max = 1)
    stats[1] = select(1.0, min(p.max_norm / (norm + p.clip_eps), 1.0), p.max_norm >= 0.0);
    stats[2] = select(0.0, 1.0, nonfinite);
  }
}

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let h = hyper[owner[p.chunk_base + i / CHUNK]];
  if (h.x == 0.0 || (p.skip_nonfinite != 0u && stats[2] != 0.0)) { return; }
  let r = adamw_value(grad[i] * stats[1], exp_avg[i], exp_avg_sq[i], param[i], h);
  exp_avg[i] = r.x;
  exp_avg_sq[i] = r.y;
  param[i] = r.z;
}

// One value's step with (clipped) gradient g, moments m0, v0, parameter w and its slot's hyper h:
// torch: p.mul_(1 − lr·wd); m.mul_(β1).add_(g, alpha=1−β1); v.mul_(β2).addcmul_(g, g, value=1−β2);
// denom = v.sqrt() / sqrt(bc2) + eps; p.addcdiv_(m, denom, value=−lr/bc1). → (m, v, p)
fn adamw_value(g: f32, m0: f32, v0: f32, w: f32, h: vec4f) -> vec3f {
  let m = m0 * p.beta1 + g * p.one_minus_beta1;
  let v = v0 * p.beta2 + p.one_minus_beta2 * g * g;
  let denom = sqrt(v) / h.w + p.eps;
  return vec3f(m, v, w * h.y - h.z * (m / denom));
}

// adamw on 4 consecutive values (one chunk, one owner) per invocation, the same arithmetic per value.
@compute @workgroup_size(WG)
fn adamw4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n / 4u) { return; }
  let h = hyper[owner[p.chunk_base + i / (CHUNK / 4u)]];
  let st = vec3f(stats[0], stats[1], stats[2]);
  if (h.x == 0.0 || (p.skip_nonfinite != 0u && st.z != 0.0)) { return; }
  let g = grad4[i] * st.y;
  let m0 = exp_avg4[i];
  let v0 = exp_avg_sq4[i];
  let w0 = param4[i];
  var m: vec4f;
  var v: vec4f;
  var w: vec4f;
  for (var j = 0u; j < 4u; j++) {
    let r = adamw_value(g[j], m0[j], v0[j], w0[j], h);
    m[j] = r.x;
    v[j] = r.y;
    w[j] = r.z;
  }
  exp_avg4[i] = m;
  exp_avg_sq4[i] = v;
  param4[i] = w;
}

@compute @workgroup_size(WG)
fn scale_grads(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  grad[i] = grad[i] * stats[1];
}
