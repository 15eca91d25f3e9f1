// GELU in its exact erf form (PyTorch's nn.GELU() default) and its derivative, shared by every
// kernel that applies it (included with `//!include gelu.wgsl`).

const SQRT1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit); WGSL has no erf.
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}

fn gelu_(x: f32) -> f32 {
  return 0.5 * x * (1.0 + erf_(x * SQRT1_2));
}

fn gelu_grad(x: f32) -> f32 {
  return 0.5 * (1.0 + erf_(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
