// Seeded randomness for the data pipeline. Everything random in data generation and augmentation
// draws from an Rng seeded by hashSeed(...), so results never depend on Math.random, worker count
// or scheduling order.
import { Rng as EngineRng } from '../../engine/rng.js';

/** Mixes integers (taken mod 2^32) into one 32-bit seed; the order of the parts matters. */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, then mixed with the seed. */
export function hashString(s: string, seed = 0): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return hashSeed(h, seed);
}

/** The engine's generator (xoshiro128**) with the draws the data pipeline needs. */
export class Rng extends EngineRng {
  u32(): number {
    return this.nextU32();
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uniform();
  }

  chance(p: number): boolean {
    return this.uniform() < p;
  }

  /** Gamma(k, 1) by Marsaglia–Tsang, boosted for k < 1. */
  gamma(k: number): number {
    if (k < 1) return this.gamma(k + 1) * Math.pow(1 - this.next(), 1 / k);
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const z = this.normal();
      const v = (1 + c * z) ** 3;
      if (v <= 0) continue;
      const u = 1 - this.next();
      if (Math.log(u) < 0.5 * z * z + d - d * v + d * Math.log(v)) return d * v;
    }
  }

  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    // Both draws can underflow to 0 for tiny shapes; the distribution is then split evenly.
    return x + y > 0 ? x / (x + y) : 0.5;
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}
