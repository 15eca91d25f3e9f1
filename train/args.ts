// A small declarative flag parser for the `webvig` commands (no dependency). A command declares its
// flags once — name, type, default, help — and gets back typed values, a --help text that shows
// every default, and one-line UsageErrors that name the flag at fault.
//
//   export const command = defineCommand({
//     name: 'train', summary: 'Train a model',
//     flags: { lr: { type: 'number', default: 1e-3, help: 'peak learning rate' },
//              data: { type: 'path', mustExist: true, help: 'dataset root' } },
//     positionals: [{ name: 'config', help: 'a preset name', optional: true }],
//     async run({ flags, positionals }, io) { … },   // flags.lr: number, flags.data: string | undefined
//   });
//
// train/cli.ts calls parseArgs(command, argv) and then run(); parseArgs works on any CommandSpec.
//
// Flag keys are camelCase; on the command line they are kebab-case (batchSize → --batch-size).
// Accepted forms: `--flag value`, `--flag=value`, boolean `--flag` / `--no-flag` / `--flag=false`,
// `--` ends the flags. `-h` / `--help` sets `help` instead of failing on missing required values.
import { existsSync } from 'node:fs';

export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagType = 'number' | 'string' | 'boolean' | 'path';

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: number | string | boolean;
  /** number: reject non-integers. */
  integer?: boolean;
  min?: number;
  max?: number;
  /** string: the accepted values (listed in --help). */
  choices?: readonly string[];
  /** How --help and errors name a long list of choices (e.g. the model names in one line), with its placeholder. */
  choicesSummary?: { placeholder: string; text: string };
  /** path: the file or directory must exist. */
  mustExist?: boolean;
  /** The flag must be given (when it has no default). */
  required?: boolean;
}

export interface PositionalSpec {
  name: string;
  help: string;
  optional?: boolean;
  /** The last positional may take every remaining argument. */
  variadic?: boolean;
}

export interface CommandSpec<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  /** The subcommand, e.g. 'train' (messages read "webvig train: …"). */
  name: string;
  summary: string;
  flags: F;
  positionals?: readonly PositionalSpec[];
}

type Base<S extends FlagSpec> = S['type'] extends 'number' ? number : S['type'] extends 'boolean' ? boolean : string;
/** A flag's value: its type, or possibly undefined when it has no default (booleans default to false). */
export type FlagValue<S extends FlagSpec> = S extends { default: number | string | boolean }
  ? Base<S>
  : S['type'] extends 'boolean'
    ? boolean
    : S extends { required: true }
      ? Base<S>
      : Base<S> | undefined;

export type FlagValues<F extends Record<string, FlagSpec>> = { [K in keyof F]: FlagValue<F[K]> };

export interface ParsedArgs<F extends Record<string, FlagSpec>> {
  flags: FlagValues<F>;
  positionals: string[];
  /** --help / -h was given: print formatHelp(spec) and do nothing else. */
  help: boolean;
}

/** Where a command writes (process streams from the bin, buffers in tests). */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** A subcommand: its declared flags and what it does; run returns the exit code (default 0). */
export interface Command<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> extends CommandSpec<F> {
  run(args: ParsedArgs<F>, io: Io): Promise<number | void>;
}

/** Identity, for type inference: `run` sees the flag values typed from the table. */
export function defineCommand<const F extends Record<string, FlagSpec>>(command: Command<F>): Command<F> {
  return command;
}

export const PROGRAM = 'webvig';

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function parseArgs<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>, argv: readonly string[]): ParsedArgs<F> {
  const prog = `${PROGRAM} ${spec.name}`;
  const fail = (msg: string): never => {
    throw new UsageError(`${prog}: ${msg}`);
  };
  const byName = new Map<string, string>(Object.keys(spec.flags).map((k) => [kebab(k), k]));
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  let help = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-' || isNumber(arg)) {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) fail(`unknown flag ${arg}${suggest(arg.slice(1), byName) || ' (flags are spelled --name)'}`);
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let key = byName.get(name);
    // --no-foo for a boolean foo
    if (!key && name.startsWith('no-') && spec.flags[byName.get(name.slice(3)) ?? '']?.type === 'boolean') {
      if (inline !== undefined) fail(`--${name} takes no value`);
      key = byName.get(name.slice(3))!;
      name = name.slice(3);
      inline = 'false';
    }
    if (!key) fail(`unknown flag --${name}${suggest(name, byName)}`);
    const f = spec.flags[key!];
    if (f.type === 'boolean') {
      if (inline === undefined) values[key!] = true;
      else if (/^(true|1|yes)$/i.test(inline)) values[key!] = true;
      else if (/^(false|0|no)$/i.test(inline)) values[key!] = false;
      else fail(`--${name} is a switch: expected true or false, got '${inline}'`);
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      // A following flag is not a value (a negative number is: it has one dash).
      if (next === undefined || next.startsWith('--')) {
        fail(`--${name} needs a value (${describeType(f)})`);
      }
      raw = next;
      i++;
    }
    values[key!] = convert(name, f, raw!, fail);
  }

  for (const [key, f] of Object.entries(spec.flags)) {
    if (values[key] !== undefined) continue;
    if (f.default !== undefined) values[key] = f.default;
    else if (f.type === 'boolean') values[key] = false;
    else if (f.required && !help) fail(`--${kebab(key)} is required (${f.help})`);
  }

  const pos = spec.positionals ?? [];
  if (!help) {
    const variadic = pos.length > 0 && pos[pos.length - 1].variadic;
    if (positionals.length > pos.length && !variadic) {
      const extra = positionals[pos.length];
      fail(
        pos.length === 0
          ? `unexpected argument '${extra}' (this command takes no positional arguments)`
          : `unexpected argument '${extra}' (expected ${pos.map((p) => `<${p.name}>`).join(' ')})`,
      );
    }
    const missing = pos.find((p, i) => !p.optional && positionals[i] === undefined);
    if (missing) fail(`missing argument <${missing.name}> (${missing.help})`);
  }
  return { flags: values as FlagValues<F>, positionals, help };
}

function isNumber(s: string): boolean {
  return s.trim() !== '' && Number.isFinite(Number(s));
}

function describeType(f: FlagSpec): string {
  if (f.choicesSummary) return `one of ${f.choicesSummary.text}`;
  if (f.choices) return `one of ${f.choices.join(', ')}`;
  if (f.type === 'number') return f.integer ? 'an integer' : 'a number';
  return f.type === 'path' ? 'a path' : 'a string';
}

function convert(name: string, f: FlagSpec, raw: string, fail: (msg: string) => never): number | string {
  if (f.type === 'number') {
    if (!isNumber(raw)) fail(`--${name} expects ${describeType(f)}, got '${raw}'`);
    const v = Number(raw);
    if (f.integer && !Number.isInteger(v)) fail(`--${name} expects an integer, got '${raw}'`);
    if (f.min !== undefined && v < f.min) fail(`--${name} must be ≥ ${f.min}, got ${raw}`);
    if (f.max !== undefined && v > f.max) fail(`--${name} must be ≤ ${f.max}, got ${raw}`);
    return v;
  }
  if (raw === '') fail(`--${name} needs a non-empty value (${describeType(f)})`);
  if (f.choices && !f.choices.includes(raw)) {
    const near = closest(raw, f.choices);
    fail(`--${name} must be ${describeType(f)}, got '${raw}'${near ? ` (did you mean ${near}?)` : ''}`);
  }
  if (f.type === 'path' && f.mustExist && !existsSync(raw)) fail(`--${name}: no such file or directory: ${raw}`);
  return raw;
}

/** " (did you mean --lr?)" for a close known flag, else "". */
function suggest(name: string, byName: Map<string, string>): string {
  const best = closest(name, byName.keys());
  return best ? ` (did you mean --${best}?)` : '';
}

/** The candidate a typo most likely meant (a prefix, or within a small edit distance), if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(name) && name.length >= 2 ? 1 : editDistance(name, c);
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return bestDist <= Math.max(1, Math.min(2, Math.floor(name.length / 3))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The --help text: usage line, summary, positionals, and every flag with its type and default. */
export function formatHelp(spec: CommandSpec): string {
  const pos = spec.positionals ?? [];
  const usage = [
    `${PROGRAM} ${spec.name}`,
    ...pos.map((p) => (p.optional ? `[${p.name}${p.variadic ? '...' : ''}]` : `<${p.name}${p.variadic ? '...' : ''}>`)),
    Object.keys(spec.flags).length ? '[options]' : '',
  ].filter(Boolean);
  const rows: [string, string][] = [];
  for (const [key, f] of Object.entries(spec.flags)) {
    const value = f.type === 'boolean' ? '' : f.choicesSummary ? ` <${f.choicesSummary.placeholder}>` : f.choices ? ` <${f.choices.join('|')}>` : ` <${f.type}>`;
    const dflt =
      f.default !== undefined
        ? ` (default: ${JSON.stringify(f.default)})`
        : f.type === 'boolean'
          ? ' (default: false)'
          : f.required
            ? ' (required)'
            : /\(default/.test(f.help)
              ? ''
              : ' (default: none)';
    const choices = f.choicesSummary ? `; one of ${f.choicesSummary.text}` : '';
    rows.push([`--${kebab(key)}${value}`, `${f.help}${choices}${f.mustExist ? ' (must exist)' : ''}${dflt}`]);
  }
  rows.push(['-h, --help', 'show this help']);
  // Labels longer than the column (a long list of choices) put their help on the next line.
  const COLUMN = 30;
  const width = Math.min(COLUMN, Math.max(...rows.map(([l]) => l.length), ...pos.map((p) => p.name.length + 2)));
  const row = (l: string, r: string) => (l.length > width ? `  ${l}\n  ${''.padEnd(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`);
  const lines = [`Usage: ${usage.join(' ')}`, '', spec.summary];
  if (pos.length) {
    lines.push('', 'Arguments:');
    for (const p of pos) lines.push(row(`<${p.name}>`, `${p.help}${p.optional ? ' (optional)' : ''}`));
  }
  lines.push('', 'Options:');
  for (const [l, r] of rows) lines.push(row(l, r));
  return lines.join('\n') + '\n';
}
