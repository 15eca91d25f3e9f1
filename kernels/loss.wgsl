// Fused multi-label losses on logits: per-element loss terms (forward) and d loss / d logit given the
// upstream gradient (backward). Both entries recompute the same float32 chain of PyTorch ops and the
// backward follows PyTorch's autograd through that chain step by step, so that saturation (σ(x) == 1
// in float32 for x ≳ 17), the clamps and pow's exponent-0 rule give exactly PyTorch's zeros.
//   KIND 0: BCE with logits (torch 1.13 formula) against target s, s = smoothed 0/1 labels or t itself.
//   KIND 1: mmcls asymmetric_loss element: −log(max(pt, eps)) · (1 − pt)^γ, weight differentiated.
//   KIND 2: Alibaba-MIIL AsymmetricLoss element (before −sum): (t·log max(p,eps) + (1−t)·log max(q,eps))·w,
//           w constant in backward when DETACH.
// Logits, upstream gradient and output are f32 or f16 in memory (x_t, g_t, out_t: withStorageTypes;
// the launcher writes the loss terms f32 and d loss / d logit in the logits' dtype); the chain is f32.

override KIND: u32 = 0u;
override DETACH: bool = false;

struct Params {
  n: u32,
  gamma_pos: f32,
  gamma_neg: f32,
  clip: f32,        // ≤ 0: no probability margin
  eps: f32,
  smoothing: u32,   // KIND 0: 1 = replace t by smooth_pos / smooth_neg
  smooth_pos: f32,  // f32(1 − ε), rounded from float64 like torch's masked_fill
  smooth_neg: f32,  // f32(ε)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<x_t>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<g_t>;
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

// Bases here are ≥ 0. Exponent 0 gives 1 (also for base 0, as torch); small integer exponents
// multiply out (WGSL's pow is exp2(e·log2 b): inaccurate, and undefined at b = 0).
fn pow_(b: f32, e: f32) -> f32 {
  if (e == round(e) && e >= 0.0 && e <= 8.0) {
    var r = 1.0;
    for (var k = 0; k < i32(e); k++) { r *= b; }
    return r;
  }
  if (b == 0.0) { return select(0.0, 1.0 / b, e < 0.0); }
  return pow(b, e);
}

fn sigmoid_(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

fn label(i: u32) -> f32 {
  let ti = t[i];
  if (KIND == 0u && p.smoothing != 0u) { return select(p.smooth_neg, p.smooth_pos, ti > 0.0); }
  return ti;
}

// The forward chain of the asymmetric losses, shared by both entries.
struct Asl {
  prob: f32,   // σ(x)
  inner: f32,  // 1 − p + clip before the clamp at 1
  q: f32,      // negative-class probability, clipped
  pt: f32,
  base: f32,   // 1 − pt
  e: f32,      // γ+·t + γ−·(1 − t)
  w: f32,      // base^e
}

fn asl(v: f32, ti: f32) -> Asl {
  var a: Asl;
  a.prob = sigmoid_(v);
  let neg = 1.0 - a.prob;
  a.inner = neg + p.clip;
  a.q = select(neg, min(a.inner, 1.0), p.clip > 0.0);
  a.pt = a.q * (1.0 - ti) + a.prob * ti;
  a.base = 1.0 - a.pt;
  a.e = p.gamma_pos * ti + p.gamma_neg * (1.0 - ti);
  a.w = pow_(a.base, a.e);
  return a;
}

// d w / d base · gw; PyTorch's pow backward is 0 wherever the exponent is 0.
fn pow_grad(a: Asl, gw: f32) -> f32 {
  return select(gw * (a.e * pow_(a.base, a.e - 1.0)), 0.0, a.e == 0.0);
}

// Through q = clamp(1 − p + clip, max = 1) (or 1 − p): gradient reaching p from gradient gq.
fn through_q(a: Asl, gq: f32) -> f32 {
  return -select(gq, select(0.0, gq, a.inner <= 1.0), p.clip > 0.0);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let v = f32(x[i]);
  let ti = label(i);
  if (KIND == 0u) {
    let m = max(-v, 0.0);
    out[i] = out_t((1.0 - ti) * v + m + log(exp(-m) + exp(-v - m)));
    return;
  }
  let a = asl(v, ti);
  if (KIND == 1u) {
    out[i] = out_t(-log(max(a.pt, p.eps)) * a.w);
  } else {
    out[i] = out_t((ti * log(max(a.prob, p.eps)) + (1.0 - ti) * log(max(a.q, p.eps))) * a.w);
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let v = f32(x[i]);
  let ti = label(i);
  let gi = f32(g[i]);
  if (KIND == 0u) {
    out[i] = out_t((sigmoid_(v) - ti) * gi);
    return;
  }
  let a = asl(v, ti);
  var gp: f32;
  if (KIND == 1u) {
    // loss = (−log c) · w, c = max(pt, eps)
    let c = max(a.pt, p.eps);
    let gc = -(gi * a.w) / c;
    let gpt = select(0.0, gc, a.pt >= p.eps) - pow_grad(a, gi * -log(c));
    gp = gpt * ti + through_q(a, gpt * (1.0 - ti));
  } else {
    // loss = L · w, L = t·log cp + (1 − t)·log cq; base = 1 − (p·t + q·(1 − t))
    let gl = gi * a.w;
    let cp = max(a.prob, p.eps);
    let cq = max(a.q, p.eps);
    var gpt = 0.0;
    if (!DETACH) {
      gpt = -pow_grad(a, gi * (ti * log(cp) + (1.0 - ti) * log(cq)));
    }
    let gq = select(0.0, gl * (1.0 - ti) / cq, a.q >= p.eps) + gpt * (1.0 - ti);
    gp = select(0.0, gl * ti / cp, a.prob >= p.eps) + gpt * ti + through_q(a, gq);
  }
  out[i] = out_t(gp * (1.0 - a.prob) * a.prob);
}
