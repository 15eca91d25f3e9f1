/**
 * The fixtures' error metric: max |a − b| / max(max |b|, floor). 0 when both are all zero, Infinity
 * when a NaN appears or b is all zero and a is not.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 0): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = floor;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : num / den;
}
