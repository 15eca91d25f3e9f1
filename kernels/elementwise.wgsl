// Elementwise ops with NumPy broadcasting. OP selects the function (a switch on an override constant
// folds away at pipeline creation). Operands are addressed through per-dimension strides, 0 on a
// broadcast dimension; the launcher merges dimensions first, so the common case is rank 1.

override OP: u32 = 0u;

struct Params {
  n: u32,
  rank: u32,
  alpha: f32,
  beta: f32,
  shape: array<vec4u, 2>,
  sa: array<vec4u, 2>,
  sb: array<vec4u, 2>,
  sc: array<vec4u, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;

fn dim(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Offsets of output element i in operands a, b, c.
fn offsets(i: u32) -> vec3u {
  var rem = i;
  var o = vec3u(0u);
  for (var k = 0u; k < p.rank; k++) {
    let d = p.rank - 1u - k;
    let s = dim(p.shape, d);
    let c = rem % s;
    rem = rem / s;
    o += c * vec3u(dim(p.sa, d), dim(p.sb, d), dim(p.sc, d));
  }
  return o;
}

fn index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

//!include gelu.wgsl


// Cephes' tanhf: the built-in tanh may be evaluated as sinh/cosh, which keeps only absolute accuracy
// near 0 (lavapipe: tanh(1e-4) off by 2e-4 relative, tanh(1e-30) ≈ 3e-8).
fn tanh_(x: f32) -> f32 {
  let z = abs(x);
  if (z < 0.625) {
    let s = x * x;
    return x + x * s * ((((-5.70498872745e-3 * s + 2.06390887954e-2) * s - 5.37397155531e-2) * s +
                         1.33314422036e-1) * s - 3.33332819422e-1);
  }
  return sign(x) * (1.0 - 2.0 / (exp(2.0 * z) + 1.0));
}

fn sigmoid_(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

fn unary_op(x: f32) -> f32 {
  switch OP {
    case 0u: { return -x; }
    case 1u: { return exp(x); }
    case 2u: { return log(x); }
    case 3u: { return sqrt(x); }
    case 4u: { return inverseSqrt(x); }
    case 5u: { return abs(x); }
    case 6u: { return max(x, 0.0); }
    case 7u: { return gelu_(x); }
    case 8u: { return sigmoid_(x); }
    case 9u: { return tanh_(x); }
    case 10u: { return pow_(x, p.alpha); }
    case 11u: { return clamp(x, p.alpha, p.beta); }
    case 12u: { return x * p.alpha + p.beta; }
    case 13u: { return sign(x); }
    case 14u: { return select(0.0, 1.0, x > p.alpha); }
    case 15u: { return 1.0 / x; }
    default: { return x; }
  }
}

// x^e with PyTorch's conventions: x^0 = 1 (also for x = 0); negative bases only for integer e.
fn pow_(x: f32, e: f32) -> f32 {
  if (e == 0.0) { return 1.0; }
  if (e == 1.0) { return x; }
  if (e == 2.0) { return x * x; }
  if (x < 0.0 && e == round(e)) {
    let m = pow(-x, e);
    return select(m, -m, (i32(e) & 1) == 1);
  }
  if (x == 0.0) { return select(0.0, 1.0 / x, e < 0.0); }  // 1/x: +inf at run time
  return pow(x, e);
}

fn binary_op(a: f32, b: f32) -> f32 {
  switch OP {
    case 0u: { return a + b; }
    case 1u: { return a - b; }
    case 2u: { return a * b; }
    case 3u: { return a / b; }
    case 4u: { return max(a, b); }
    case 5u: { return min(a, b); }
    case 6u: { return pow_(a, b); }
    case 7u: { return select(0.0, 1.0, a > b); }
    case 8u: { return select(0.0, 1.0, a == b); }
    case 9u: { return select(0.0, 1.0, a >= b); }
    // Backward helpers: a = the forward input (or output), b = the incoming gradient.
    case 20u: { return b * gelu_grad(a); }
    case 21u: { return b * a * (1.0 - a); }             // sigmoid, a = output
    case 22u: { return b * (1.0 - a * a); }             // tanh, a = output
    case 23u: { return select(0.0, b, a > 0.0); }       // relu
    case 24u: { return b * sign(a); }                   // abs
    case 25u: { return select(0.0, b, a >= p.alpha && a <= p.beta); } // clamp
    case 26u: { return b * p.alpha * pow_(a, p.alpha - 1.0); }        // pow by a scalar
    default: { return a; }
  }
}

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn unary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  out[i] = unary_op(a[offsets(i).x]);
}

@compute @workgroup_size(256)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[i] = binary_op(a[o.x], b[o.y]);
}

// where(c != 0, a, b)
@compute @workgroup_size(256)
fn ternary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = index(gid, nwg);
  if (i >= p.n) { return; }
  let o = offsets(i);
  out[i] = select(b[o.y], a[o.x], c[o.z] != 0.0);
}
