// Waiting for the GPU without spinning a CPU core. Dawn's Node binding delivers the result of a
// pending promise (onSubmittedWorkDone, mapAsync, …) by polling its event queue from a setImmediate
// loop for as long as any is pending, so a main thread that awaits the GPU runs one core at 100 %.
// On a CPU adapter that core is taken from the threads doing the GPU's work: on a 2-core machine
// lavapipe's two workers then got ~54 % of a core each and a gkgnet-tiny step took 1.3–1.5× as long
// (bench/RESULTS.md). `quietly` sleeps in short slices instead: Atomics.wait blocks the thread, so
// the loop cannot spin, and one turn of the event loop between slices lets it deliver the result.

/** Sleep slices while waiting: the wait ends at most this late. */
const SLICE_MS = 1;
/** Spin (turn the event loop) this long first: short waits end as soon as they can. */
const SPIN_MS = 1;

const cell = typeof SharedArrayBuffer === 'function' ? new Int32Array(new SharedArrayBuffer(4)) : null;

/**
 * `p`, awaited without spinning where blocking the thread is allowed (Node; a page's main thread may
 * not block, and a browser delivers GPU results without polling, so there `p` is simply awaited).
 */
export async function quietly<T>(p: Promise<T>, blockingAllowed: boolean): Promise<T> {
  if (!blockingAllowed || !cell) return p;
  let done = false;
  const settle = () => {
    done = true;
  };
  p.then(settle, settle);
  const t0 = performance.now();
  while (!done) {
    if (performance.now() - t0 > SPIN_MS) Atomics.wait(cell, 0, 0, SLICE_MS);
    await new Promise<void>((r) => setImmediate(r));
  }
  return p;
}
