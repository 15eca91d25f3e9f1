// The trainer's epoch-end writes behind the next epoch: one set at a time, in order, failures surfaced.
import { describe, it, expect } from 'vitest';
import { BackgroundWrites } from '../train/background-writes.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('BackgroundWrites', () => {
  it('starts a set only after the previous one finished, and add() does not wait for its own set', async () => {
    const w = new BackgroundWrites();
    const log: string[] = [];
    const set = (name: string) => async () => {
      log.push(`${name} start`);
      await tick();
      log.push(`${name} end`);
    };
    await w.add(set('a'));
    expect(log).toEqual(['a start']);
    await w.add(set('b'));
    expect(log).toEqual(['a start', 'a end', 'b start']);
    await w.drained();
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end']);
  });

  it("a failed set is thrown by the next add() (whose set never starts) and by drained(); settled() waits without throwing", async () => {
    const w = new BackgroundWrites();
    await w.add(async () => {
      await tick();
      throw new Error('cannot write curves.png');
    });
    await expect(w.settled()).resolves.toBeUndefined();
    let started = false;
    await expect(w.add(async () => void (started = true))).rejects.toThrow('curves.png');
    expect(started).toBe(false);
    await expect(w.drained()).rejects.toThrow('curves.png');
  });
});
