// Autotuning: a launcher with a few equivalent variants of a kernel (register blocks, lanes per
// workgroup: same sums in the same order, only the speed differs) asks `tuned()` which one to use
// for a shape. The answer is the cached choice for this adapter, or the first (default) variant
// while the shape has not been timed; `autotune()` (awaited between steps, never inside one) times
// the variants of every shape still waiting and keeps the fastest. A choice, once made, never
// changes for the process, and a cache (train/tune-cache.ts on Node: one file per adapter) carries
// it to the next run, so results are the same on rerun.
import { device } from '../engine/context.js';
import { timeGpu } from '../engine/timing.js';

/** A variant's template values, e.g. { TM: 8, TN: 1 } (plain data: compared and cached as JSON). */
export type Variant = object;

/** What a cache holds for one adapter: key (kernel, shape class and variant list) → chosen variant. */
export type TuneEntries = Record<string, Variant>;

interface Waiting {
  variants: readonly Variant[];
  /** Encodes one launch of the kernel at the waiting shape with variant v (scratch tensors). */
  trial: (v: Variant) => void;
}

const chosen = new Map<string, Variant>();
/** A cache's entries, not yet checked against a launcher's variant list. */
const loaded = new Map<string, Variant>();
const waiting = new Map<string, Waiting>();
const listKeys = new WeakMap<readonly Variant[], string>();
let onChange: ((entries: TuneEntries) => Promise<void>) | null = null;

/** The adapter the choices are for: a cache file per adapter (and driver: the description holds Mesa's version). */
export function adapterKey(): string {
  const i = device().adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].join('|');
}

function keyOf(kernel: string, shapeClass: string, variants: readonly Variant[]): string {
  // The variant list is part of the key: a changed list invalidates the entries made from the old one.
  let list = listKeys.get(variants);
  if (list === undefined) listKeys.set(variants, (list = JSON.stringify(variants)));
  return `${kernel}|${shapeClass}|${list}`;
}

/**
 * The variant to launch `kernel` with at `shapeClass`: the tuned one, or variants[0] until
 * autotune() has timed them (the shape then waits for it, with `trial` to time a variant).
 */
export function tuned<V extends Variant>(kernel: string, shapeClass: string, variants: readonly V[], trial: (v: V) => void): V {
  const key = keyOf(kernel, shapeClass, variants);
  const v = chosen.get(key);
  if (v) return v as V;
  const cached = loaded.get(key);
  // Only a variant of the list is ever launched, whatever a cache file says.
  const match = cached && variants.find((x) => JSON.stringify(x) === JSON.stringify(cached));
  if (match) {
    chosen.set(key, match);
    return match;
  }
  if (!waiting.has(key)) waiting.set(key, { variants, trial: trial as (v: Variant) => void });
  return variants[0];
}

/**
 * For variants whose default depends on the shape: each member of `list` → the list with that
 * member first (the default tuned() launches until timed), one array per default (tuned() keys by it).
 */
export function choicesByDefault<V>(list: readonly V[]): Map<V, readonly V[]> {
  return new Map(list.map((v) => [v, [v, ...list.filter((u) => u !== v)]]));
}

/** Shapes waiting to be timed. */
export function tunePending(): number {
  return waiting.size;
}

/**
 * Time the variants of every waiting shape (GPU timestamps, else wall clock; the fastest minimum of
 * a few runs wins, ties to the earlier variant) and keep the choices; then hand every choice so far
 * to the cache, if one is attached. Returns the number of shapes tuned.
 */
export async function autotune({ iters = 3 }: { iters?: number } = {}): Promise<number> {
  const todo = [...waiting];
  waiting.clear();
  for (const [key, w] of todo) {
    let best = 0;
    let bestMs = Infinity;
    for (let i = 0; i < w.variants.length; i++) {
      const t = await timeGpu(() => w.trial(w.variants[i]), { warmup: 1, iters });
      if (t.minMs < bestMs) [best, bestMs] = [i, t.minMs];
    }
    chosen.set(key, w.variants[best]);
  }
  if (todo.length && onChange) await onChange(tuneEntries());
  return todo.length;
}

/** Every choice made or loaded so far. */
export function tuneEntries(): TuneEntries {
  return { ...Object.fromEntries(loaded), ...Object.fromEntries(chosen) };
}

/**
 * Start from a cache's entries (the adapter's, read before the first step) and have later choices
 * handed to `save`. Entries for other variant lists simply never match a key.
 */
export function attachTuneCache(entries: TuneEntries, save: ((entries: TuneEntries) => Promise<void>) | null): void {
  for (const [k, v] of Object.entries(entries)) loaded.set(k, v);
  onChange = save;
}

/** Forget every choice and waiting shape, and detach the cache (tests). */
export function resetTuning(): void {
  chosen.clear();
  loaded.clear();
  waiting.clear();
  onChange = null;
}
