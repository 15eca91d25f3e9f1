// Asynchronous work consumed in order, one piece in flight: an evaluation's batches (each read back
// while the next is encoded) and an epoch's files (written while the next epoch trains). A piece
// starts once the previous one has finished; a failure surfaces at the next add() or at done().
export class InOrder {
  private last: Promise<void> = Promise.resolve();

  /** Waits for the previous piece (throwing its error), then starts `work` without waiting for it. */
  async next(work: () => Promise<void>): Promise<void> {
    await this.last;
    this.last = work();
    this.last.catch(() => {}); // awaited by the next call or by done(); not unhandled until then
  }

  /** A batch whose `read` is already in flight: `use` gets its value after the previous batch's use. */
  add<T>(read: Promise<T>, use: (value: T) => void): Promise<void> {
    return this.next(() => read.then(use));
  }

  /** Resolves when the last piece has finished; throws its failure. */
  done(): Promise<void> {
    return this.last;
  }

  /** Waits for the piece in flight, whatever its outcome (for an error already on its way). */
  settled(): Promise<void> {
    return this.last.catch(() => {});
  }
}
