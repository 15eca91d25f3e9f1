// The frozen `relative_pos` term of a ViG / GKGNet Grapher (spec §3.5), rebuilt from its closed
// form instead of being loaded: for nodes n = (i, j), n' = (i', j') of a g×g grid,
//   Rfull[n, n'] = (2/D) · Σ_f [cos((j − j')·ω_f) + cos((i − i')·ω_f)],
// which is what the official code gets from the MAE 2-D sin-cos embedding E as (2/D)·E·Eᵀ.
// For r > 1 the official code then bicubic-resizes the n×n matrix to n × n/r² (treating it as
// an image), i.e. it resamples the *flattened* source index axis; that quirk is reproduced.

// PyTorch's bicubic kernel constant (A = −0.75) and its two polynomial pieces.
const A = -0.75;
const cubicNear = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| ≤ 1
const cubicFar = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2

/**
 * The `[n, n/r²]` table (row-major) stored as `relative_pos[0]` (already negated) for a stage
 * with nominal n = g² nodes, `channels` channels and reduce ratio r. Built in float64, cast to
 * float32.
 */
export function relativePosTable(n: number, channels: number, r: number): Float32Array<ArrayBuffer> {
  const g = Math.round(Math.sqrt(n));
  if (!Number.isInteger(n) || n < 1 || g * g !== n) throw new Error(`relativePosTable: n = ${n} is not a perfect square`);
  if (!Number.isInteger(channels) || channels < 4) {
    throw new Error(`relativePosTable: channels = ${channels} must be an integer ≥ 4`);
  }
  if (!Number.isInteger(r) || r < 1 || g % r !== 0) {
    throw new Error(`relativePosTable: reduce ratio r = ${r} must be a positive integer dividing the grid side ${g}`);
  }

  // Each axis gets half the channels (embed_dim // 2) as q sin/cos pairs with
  // ω_f = 10000^(−f / (half/2)); the embedding width is D = 4q (= channels when divisible by 4).
  const half = Math.floor(channels / 2);
  const q = Math.floor(half / 2);
  const D = 4 * q;
  // profile[Δ] = Σ_f cos(Δ·ω_f) for an axis offset Δ (cos is even, so |Δ| suffices)
  const profile = new Float64Array(g);
  for (let d = 0; d < g; d++) {
    for (let f = 0; f < q; f++) profile[d] += Math.cos(d * 10000 ** (-f / (half / 2)));
  }
  const full = (a: number, b: number) => {
    const di = Math.abs(Math.floor(a / g) - Math.floor(b / g));
    const dj = Math.abs((a % g) - (b % g));
    return (2 / D) * (profile[dj] + profile[di]);
  };

  // Bicubic resize of the column axis n → m (align_corners=False): output column j samples
  // source position (j + 0.5)·n/m − 0.5 with 4 taps, clamped at the borders. The row axis keeps
  // its size, which makes bicubic the identity there. With r = 1 this is the identity too.
  const m = n / (r * r);
  const taps = new Int32Array(4 * m);
  const weights = new Float64Array(4 * m);
  for (let j = 0; j < m; j++) {
    const src = (j + 0.5) * (n / m) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubicFar(t + 1), cubicNear(t), cubicNear(1 - t), cubicFar(2 - t)];
    for (let k = 0; k < 4; k++) {
      taps[4 * j + k] = Math.min(Math.max(i0 - 1 + k, 0), n - 1);
      weights[4 * j + k] = w[k];
    }
  }

  const out = new Float32Array(n * m);
  for (let row = 0; row < n; row++) {
    for (let j = 0; j < m; j++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += weights[4 * j + k] * full(row, taps[4 * j + k]);
      out[row * m + j] = -v; // stored negated: close pairs get a smaller KNN distance
    }
  }
  return out;
}
