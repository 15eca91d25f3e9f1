// An epoch's files (checkpoints, metrics, summary, curves) written behind the next epoch's steps:
// the writes mostly wait on fsync. One set at a time and in order, so the folder goes through the
// same states as with writes in line; a failed set surfaces at the next add() or at drained().
export class BackgroundWrites {
  private last: Promise<void> = Promise.resolve();

  /** Waits for the previous set (throwing its error), then starts `write` without waiting for it. */
  async add(write: () => Promise<void>): Promise<void> {
    await this.last;
    this.last = write();
    this.last.catch(() => {}); // surfaced by the next add() or drained()
  }

  /** Resolves when every set is on disk; throws a set's failure. */
  drained(): Promise<void> {
    return this.last;
  }

  /** Waits for the set in flight, whatever its outcome (for an error already on its way). */
  settled(): Promise<void> {
    return this.last.catch(() => {});
  }
}
