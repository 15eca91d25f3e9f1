// The built-in synthetic set's scenes, without any I/O: which shapes an image holds (planObjects)
// and the image as SVG plus per-pixel noise. train/data/synthetic.ts renders them with sharp into
// the cached files; the demo page (web/) rasterises the same SVG on a canvas.
import { Rng, hashSeed } from './rng.js';

/** Bump when the generator's output changes, so stale caches are not reused. */
export const SYNTHETIC_VERSION = 2;
/** Image side and split sizes of the default set: sized so that `npm run train` takes about ten minutes on two CPU cores. */
export const SYNTHETIC_DEFAULTS = { size: 64, train: 1200, val: 300 } as const;

export const SYNTHETIC_CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring', 'star', 'bar', 'diamond', 'hexagon', 'arrow'];
const HUES = [0, 220, 120, 55, 300, 25, 185, 265, 85, 335];
/** Relative class frequencies: unequal, so per-class AP differs from plain accuracy. */
const WEIGHTS = [1.6, 1.4, 1.3, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5];
/** Pairs that co-occur: when one is drawn the other joins with probability PAIR_P. */
const PAIRS: [number, number][] = [[2, 6], [5, 7], [1, 3]];
const PAIR_P = 0.7;
/** P(1, 2, 3, 4 objects) before pairing adds partners (capped at MAX_OBJECTS). */
const COUNT_P = [0.3, 0.35, 0.25, 0.1];
const MAX_OBJECTS = 4;
const OFF_COLOUR_P = 0.2;

export interface SyntheticOptions {
  /** Image side in px (default 64). */
  size?: number;
  train?: number;
  val?: number;
  seed?: number;
}

export type SyntheticParams = Required<SyntheticOptions>;
export type SyntheticSplit = 'train' | 'val';
export const SYNTHETIC_SPLITS: SyntheticSplit[] = ['train', 'val'];

export function withDefaults(o: SyntheticOptions): SyntheticParams {
  return { size: o.size ?? SYNTHETIC_DEFAULTS.size, train: o.train ?? SYNTHETIC_DEFAULTS.train, val: o.val ?? SYNTHETIC_DEFAULTS.val, seed: o.seed ?? 0 };
}

export function imageRng(p: SyntheticParams, split: SyntheticSplit, i: number): Rng {
  return new Rng(hashSeed(p.seed, SYNTHETIC_SPLITS.indexOf(split), i));
}

export interface Obj {
  cls: number;
  x: number;
  y: number;
  side: number;
  angle: number;
  colour: string;
}

export function planObjects(rng: Rng, size: number): Obj[] {
  const count = pickWeighted(rng, COUNT_P) + 1;
  const classes: number[] = [];
  while (classes.length < count) {
    const c = pickWeighted(rng, WEIGHTS.map((w, k) => (classes.includes(k) ? 0 : w)));
    classes.push(c);
    const pair = PAIRS.find((p) => p.includes(c));
    const partner = pair && pair[0] === c ? pair[1] : pair?.[0];
    if (partner !== undefined && !classes.includes(partner) && classes.length < MAX_OBJECTS && rng.chance(PAIR_P)) classes.push(partner);
  }
  const objects = classes.map((cls): Obj => {
    const side = rng.uniform(0.2, 0.6) * size;
    const hue = rng.chance(OFF_COLOUR_P) ? rng.uniform(0, 360) : HUES[cls] + rng.uniform(-12, 12);
    return {
      cls,
      side,
      x: rng.uniform(side / 2, size - side / 2),
      y: rng.uniform(side / 2, size - side / 2),
      angle: rng.uniform(0, 360),
      colour: hsl(hue, rng.uniform(0.65, 1), rng.uniform(0.4, 0.65)),
    };
  });
  // Large objects first, so small ones are never hidden completely.
  return objects.sort((a, b) => b.side - a.side);
}

function pickWeighted(rng: Rng, weights: number[]): number {
  let r = rng.next() * weights.reduce((a, b) => a + b, 0);
  let k = -1;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    k = i;
    if ((r -= weights[i]) < 0) break;
  }
  return k; // the last candidate when rounding leaves r >= 0
}

const f = (x: number) => x.toFixed(2);
const polygon = (pts: number[][]) => (s: number) => `<polygon points="${pts.map(([x, y]) => `${f(x * s)},${f(y * s)}`).join(' ')}"/>`;
const regular = (n: number, radii: number[]) =>
  Array.from({ length: n * radii.length }, (_, i) => {
    const a = ((i / (n * radii.length)) * 360 - 90) * (Math.PI / 180);
    const r = radii[i % radii.length];
    return [r * Math.cos(a), r * Math.sin(a)];
  });
const t = 0.16;
/** Shapes centred on the origin with extent ~side, filled with currentColor. */
const SHAPES: ((side: number) => string)[] = [
  (s) => `<circle r="${f(s / 2)}"/>`,
  (s) => `<rect x="${f(-0.4 * s)}" y="${f(-0.4 * s)}" width="${f(0.8 * s)}" height="${f(0.8 * s)}"/>`,
  polygon(regular(3, [0.55])),
  polygon([[-t, -0.5], [t, -0.5], [t, -t], [0.5, -t], [0.5, t], [t, t], [t, 0.5], [-t, 0.5], [-t, t], [-0.5, t], [-0.5, -t], [-t, -t]]),
  (s) => `<circle r="${f(0.38 * s)}" fill="none" stroke="currentColor" stroke-width="${f(0.2 * s)}"/>`,
  polygon(regular(5, [0.5, 0.2])),
  (s) => `<rect x="${f(-0.5 * s)}" y="${f(-0.12 * s)}" width="${f(s)}" height="${f(0.24 * s)}"/>`,
  polygon([[0, -0.5], [0.3, 0], [0, 0.5], [-0.3, 0]]),
  polygon(regular(6, [0.5])),
  polygon([[-0.5, -0.12], [0.1, -0.12], [0.1, -0.32], [0.5, 0], [0.1, 0.32], [0.1, 0.12], [-0.5, 0.12]]),
];

/** The scene as an SVG image of `size`² px (draws the background and clutter from `rng`). */
export function sceneSvg(objects: Obj[], rng: Rng, size: number): string {
  const bg = () => hsl(rng.uniform(0, 360), rng.uniform(0, 0.5), rng.uniform(0.15, 0.85));
  const a = rng.uniform(0, 2 * Math.PI);
  const gradient =
    `<linearGradient id="g" x1="${f(0.5 - Math.cos(a) / 2)}" y1="${f(0.5 - Math.sin(a) / 2)}" x2="${f(0.5 + Math.cos(a) / 2)}" y2="${f(0.5 + Math.sin(a) / 2)}">` +
    `<stop offset="0" stop-color="${bg()}"/><stop offset="1" stop-color="${bg()}"/></linearGradient>`;
  const clutter = Array.from({ length: 8 + rng.int(9) }, () => {
    const [x, y] = [rng.uniform(0, size), rng.uniform(0, size)];
    const style = `opacity="${f(rng.uniform(0.35, 0.8))}"`;
    const colour = hsl(rng.uniform(0, 360), rng.uniform(0.2, 1), rng.uniform(0.2, 0.8));
    if (rng.chance(0.5)) {
      const len = rng.uniform(0.1, 0.5) * size;
      const b = rng.uniform(0, 2 * Math.PI);
      return `<line x1="${f(x)}" y1="${f(y)}" x2="${f(x + len * Math.cos(b))}" y2="${f(y + len * Math.sin(b))}" stroke="${colour}" stroke-width="${f(rng.uniform(1, 2.5))}" ${style}/>`;
    }
    return `<ellipse cx="${f(x)}" cy="${f(y)}" rx="${f(rng.uniform(0.02, 0.08) * size)}" ry="${f(rng.uniform(0.02, 0.08) * size)}" fill="${colour}" ${style}/>`;
  }).join('');
  const shapes = objects
    .map((o) => `<g transform="translate(${f(o.x)} ${f(o.y)}) rotate(${f(o.angle)})" color="${o.colour}" fill="currentColor">${SHAPES[o.cls](o.side)}</g>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><defs>${gradient}</defs><rect width="${size}" height="${size}" fill="url(#g)"/>${clutter}${shapes}</svg>`;
}

/** Per-pixel triangular noise of ±16 grey levels, in place (drawn from `rng` after sceneSvg). */
export function addNoise(pixels: Uint8Array | Uint8ClampedArray, rng: Rng): void {
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(255, Math.max(0, pixels[i] + (rng.next() + rng.next() - 1) * 16));
}

/** CSS colour from hue (degrees), saturation and lightness in [0, 1]. */
export function hsl(h: number, s: number, l: number): string {
  const k = (n: number) => (n + (((h % 360) + 360) % 360) / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const channel = (n: number) => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))));
  return `rgb(${channel(0)},${channel(8)},${channel(4)})`;
}
