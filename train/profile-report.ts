// With WEBVIG_PROFILE=1 (or =sites) every dispatch of a command is timed (engine/profiler.ts); the
// CLI prints the totals per kernel (or per kernel and call site) on stderr after the command's own
// output, slowest first.
import type { Io } from './args.js';
import type { KernelTime } from '../engine/profiler.js';

/** Rows shown; the rest are summed in one line. */
const SHOWN = 40;

export function formatProfile(rows: readonly KernelTime[]): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  const lines = [
    `GPU time per kernel (WEBVIG_PROFILE; each dispatch timed in its own pass): ${calls} dispatches, ${total.toFixed(1)} ms`,
    `${'ms'.padStart(10)} ${'share'.padStart(6)} ${'calls'.padStart(7)} ${'min ms'.padStart(9)} ${'max ms'.padStart(9)}  kernel`,
  ];
  for (const r of rows.slice(0, SHOWN)) {
    const share = total > 0 ? (100 * r.ms) / total : 0;
    lines.push(`${r.ms.toFixed(1).padStart(10)} ${`${share.toFixed(1)}%`.padStart(6)} ${String(r.calls).padStart(7)} ${r.minMs.toFixed(3).padStart(9)} ${r.maxMs.toFixed(3).padStart(9)}  ${r.kernel}`);
  }
  const rest = rows.slice(SHOWN);
  if (rest.length) {
    lines.push(`${rest.reduce((s, r) => s + r.ms, 0).toFixed(1).padStart(10)} ${''.padStart(6)} ${String(rest.reduce((s, r) => s + r.calls, 0)).padStart(7)}  (${rest.length} more kernels)`);
  }
  return `${lines.join('\n')}\n`;
}

/** The profile of everything the command dispatched, if the profiler is on. */
export async function printProfile(io: Io): Promise<void> {
  const { currentDevice } = await import('../engine/context.js');
  const profiler = currentDevice()?.profiler;
  if (!profiler) return;
  io.stderr(formatProfile(await profiler.report()));
}
