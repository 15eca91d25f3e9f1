// quietly(): a wait that blocks the thread in slices, so that a setImmediate polling loop (how Dawn's
// Node binding delivers GPU results) turns about once a millisecond instead of spinning a core.
import { describe, it, expect } from 'vitest';
import { quietly } from '../engine/quiet-wait.js';

const after = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

/** Turns per millisecond of a self-rescheduling setImmediate loop while `wait` runs (timers fire late on a busy machine: a rate, not a count). */
async function pollerRate(wait: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let on = true;
  const tick = () => {
    turns++;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  await wait();
  on = false;
  return turns / (performance.now() - t0);
}

describe('quietly', () => {
  it('gives the promise\'s value, or its error', async () => {
    await expect(quietly(after(5, 42), true)).resolves.toBe(42);
    await expect(quietly(Promise.reject(new Error('lost')), true)).rejects.toThrow('lost');
  });
  it('starves a polling loop while it waits (about one turn per millisecond), where a plain wait lets it spin', async () => {
    // 200 ms, so that the first millisecond's spin (short waits end at once) weighs little.
    const plain = await pollerRate(() => after(200, 0));
    const quiet = await pollerRate(() => quietly(after(200, 0), true));
    expect(quiet).toBeLessThan(10);
    expect(plain).toBeGreaterThan(3 * quiet);
  });
  it('ends soon after the promise settles', async () => {
    let settled = 0;
    const p = after(30, 0).then(() => (settled = performance.now()));
    await quietly(p, true);
    expect(performance.now() - settled).toBeLessThan(50);
  });
  it('where the thread may not block, is a plain await', async () => {
    const rate = await pollerRate(() => quietly(after(30, 0), false));
    expect(rate).toBeGreaterThan(5);
  });
});
