// The WGSL put in front of kernels that walk their data as V: vec4f where a row splits into 4-value
// vectors, else f32. A CPU adapter loads lane by lane, so a vec4 moves four values per load; a GPU
// reads 16 bytes per invocation instead of 4.

/** `alias V` and hsum(v), the sum of a V's values, for rows of `width` 4 or 1 values per V. */
export function vectorPrelude(width: 1 | 4): string {
  return width === 4
    ? 'alias V = vec4f;\nfn hsum(v: V) -> f32 { return (v.x + v.y) + (v.z + v.w); }\n'
    : 'alias V = f32;\nfn hsum(v: V) -> f32 { return v; }\n';
}

/** 4 where `n` values split into 4-value vectors, else 1. */
export const widthOf = (n: number): 1 | 4 => (n % 4 === 0 ? 4 : 1);
