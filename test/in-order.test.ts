// InOrder (train/in-order.ts): an evaluation's batches and the trainer's epoch-end writes, one piece
// in flight at a time, in order, failures surfaced.
import { describe, it, expect } from 'vitest';
import { InOrder } from '../train/in-order.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('InOrder', () => {
  it('starts a piece only after the previous one finished, and next() does not wait for its own piece', async () => {
    const w = new InOrder();
    const log: string[] = [];
    const set = (name: string) => async () => {
      log.push(`${name} start`);
      await tick();
      log.push(`${name} end`);
    };
    await w.next(set('a'));
    expect(log).toEqual(['a start']);
    await w.next(set('b'));
    expect(log).toEqual(['a start', 'a end', 'b start']);
    await w.done();
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end']);
  });

  it('a failed piece is thrown by the next next() (whose piece never starts) and by done(); settled() waits without throwing', async () => {
    const w = new InOrder();
    await w.next(async () => {
      await tick();
      throw new Error('cannot write curves.png');
    });
    await expect(w.settled()).resolves.toBeUndefined();
    let started = false;
    await expect(w.next(async () => void (started = true))).rejects.toThrow('curves.png');
    expect(started).toBe(false);
    await expect(w.done()).rejects.toThrow('curves.png');
  });

  it('add(): reads already in flight are used in the order they were added, each after the previous use', async () => {
    const w = new InOrder();
    const used: number[] = [];
    const slow = new Promise<number>((r) => setTimeout(() => r(1), 20));
    const fast = Promise.resolve(2);
    await w.add(slow, (v) => used.push(v));
    await w.add(fast, (v) => used.push(v));
    await w.done();
    expect(used).toEqual([1, 2]);
  });
});
