// Progress bar for an epoch: images done, images/s, ETA and caller-supplied fields (loss, lr, …).
// Silent when the stream is not a terminal or CI is set, where redrawn lines would only clutter logs;
// the caller then prints one plain line per epoch.
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  /** Text before the bar, e.g. "epoch 3/80". */
  label?: string;
  /** Default process.stdout. */
  stream?: NodeJS.WriteStream;
  /** Force silence. */
  quiet?: boolean;
}

export interface Progress {
  /** Adds `images` processed; `info` replaces the fields shown after the ETA. */
  tick(images: number, info?: Record<string, string | number>): void;
  stop(): void;
}

export function progressIsQuiet(stream: NodeJS.WriteStream = process.stdout): boolean {
  const ci = process.env.CI;
  return !stream.isTTY || (ci !== undefined && !/^(|0|false)$/i.test(ci));
}

export function createProgress(total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stdout;
  if (opts.quiet || progressIsQuiet(stream)) return { tick() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${opts.label ?? ''} {bar} {value}/{total} img | {speed} img/s | ETA {eta_formatted} {info}`.trimStart(),
    barsize: 30,
    hideCursor: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  const start = performance.now();
  let done = 0;
  bar.start(total, 0, { speed: '-', info: '' });
  return {
    tick(images, info = {}) {
      done += images;
      const speed = done / ((performance.now() - start) / 1000);
      const fields = Object.entries(info).map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`);
      bar.update(done, { speed: speed.toFixed(1), info: fields.join(' ') });
    },
    stop() {
      bar.stop();
    },
  };
}

/** 4 significant digits; exponent form for small magnitudes such as learning rates. */
function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}
