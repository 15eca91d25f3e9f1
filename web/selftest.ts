// `/?selftest=1`: the page's contract with scripts outside the project. It trains a few steps on the
// built-in data, checks that the loss falls, runs one block fixture's parity, then sets
// `document.title` to `selftest pass` (or `selftest fail: <reason>`) and `window.webvigSelftest` to
// the figures: { pass, reason?, steps, firstLoss, lastLoss, losses, parity: { file, pass, worstError,
// worstTensor, modes }, parityWorstError, adapter, limits, seconds }.
import { startEngine, Trainer, runFixtureParity } from './session.js';
import { syntheticSet } from './data.js';

export const SELFTEST = { preset: 'gkgnet-tiny', steps: 5, batch: 4, fixture: 'gkg_block_self' } as const;

export interface SelftestResult {
  pass: boolean;
  reason?: string;
  steps: number;
  firstLoss: number | null;
  lastLoss: number | null;
  losses: number[];
  parity: { file: string; pass: boolean; worstError: number; worstTensor: string; modes: { mode: string; pass: boolean; worstError: number; tensor: string; tol: number }[] } | null;
  parityWorstError: number | null;
  adapter: string | null;
  limits: Record<string, number> | null;
  seconds: number;
}

export async function runSelftest(log: (line: string) => void = () => undefined): Promise<SelftestResult> {
  const t0 = performance.now();
  const r: SelftestResult = { pass: false, steps: 0, firstLoss: null, lastLoss: null, losses: [], parity: null, parityWorstError: null, adapter: null, limits: null, seconds: 0 };
  const fail = (reason: string) => {
    r.pass = false;
    r.reason = reason;
  };
  try {
    const info = await startEngine();
    r.adapter = info.adapter;
    r.limits = info.limits;
    log(`adapter: ${info.adapter}`);
    // One fixed batch of the built-in set, trained on for a few steps: the loss must fall.
    const batch = await syntheticSet('train', SELFTEST.batch, 64);
    log(`data (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const trainer = new Trainer(SELFTEST.preset, SELFTEST.steps);
    try {
      for (let i = 0; i < SELFTEST.steps; i++) {
        const loss = await trainer.trainStep(batch);
        r.losses.push(loss);
        r.steps++;
        log(`step ${i + 1}: loss ${loss.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${i + 1}`);
      }
    } finally {
      trainer.release();
    }
    r.firstLoss = r.losses[0];
    r.lastLoss = r.losses[r.losses.length - 1];
    const reports = await runFixtureParity(SELFTEST.fixture);
    const worst = reports.reduce((w, f) => (f.worst.rel_err > w.worst.rel_err ? f : w));
    r.parity = {
      file: `${SELFTEST.fixture}.safetensors`,
      pass: reports.every((f) => f.pass),
      worstError: worst.worst.rel_err,
      worstTensor: `${worst.mode}: ${worst.worst.tensor}`,
      modes: reports.map((f) => ({ mode: f.mode, pass: f.pass, worstError: f.worst.rel_err, tensor: f.worst.tensor, tol: f.worst.tol })),
    };
    r.parityWorstError = worst.worst.rel_err;
    log(`parity ${r.parity.file} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${r.parity.pass ? 'pass' : 'FAIL'}, worst ${worst.worst.rel_err.toExponential(2)} (${r.parity.worstTensor})`);
    if (!(r.lastLoss < r.firstLoss)) fail(`the loss did not fall (${r.firstLoss} → ${r.lastLoss})`);
    else if (!r.parity.pass) fail(`parity of ${r.parity.file} failed (worst ${worst.worst.rel_err.toExponential(2)} at ${r.parity.worstTensor})`);
    else r.pass = true;
  } catch (e) {
    fail((e as Error).message.split('\n')[0]);
  }
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}
