// The elementwise functions, selected by the override constant OP (a switch on it folds away at
// pipeline creation). Included by elementwise.wgsl (any broadcast) and elementwise-vec4.wgsl (same
// shape, 4 values per load); the including file declares OP and a uniform `p` with f32 fields alpha
// and beta (the scalar arguments).

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

// where (OP 0): c ≠ 0 ? a : b. addcmul (OP 1): a + b·c.
fn ternary_op(a: f32, b: f32, c: f32) -> f32 {
  switch OP {
    case 1u: { return a + b * c; }
    default: { return select(b, a, c != 0.0); }
  }
}
