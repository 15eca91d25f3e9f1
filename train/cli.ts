#!/usr/bin/env node
// The `webvig` command line: `webvig <command> [options]`.
//
// COMMANDS is the whole table. Each command lives in its own module exporting
// `command = defineCommand({ name, summary, flags, positionals?, run })` (train/args.ts), imported
// only when that command runs, so `webvig info` never loads the training code. To add a command,
// point its `load` at the module, e.g.
//   train: { summary: '…', load: () => import('./commands/train.js') },
// Exit codes: 0 success, 1 failure, 2 usage error (one line on stderr naming the flag at fault).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, parseArgs, formatHelp, closest, PROGRAM, type Command, type Io } from './args.js';

interface Entry {
  summary: string;
  load: () => Promise<{ command: Command<any> }>;
}

export const COMMANDS: Record<string, Entry> = {
  train: { summary: 'train a model and evaluate it', load: () => import('./commands/train.js') },
  eval: { summary: 'evaluate a checkpoint (mAP, per-class AP)', load: () => import('./commands/eval.js') },
  predict: { summary: 'predict labels for images', load: () => import('./commands/predict.js') },
  parity: { summary: 'compare forward/backward with the PyTorch fixtures', load: () => import('./commands/parity.js') },
  bench: { summary: 'run a benchmark suite (--suite kernels)', load: () => import('./commands/bench.js') },
  info: { summary: 'print the WebGPU adapter, features, limits and memory', load: () => import('./commands/info.js') },
};

export const processIo: Io = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const rows = Object.entries(COMMANDS).map(([k, e]) => `  ${k.padEnd(width)}  ${e.summary}`);
  return `Usage: ${PROGRAM} <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun \`${PROGRAM} <command> --help\` for a command's options.\n`;
}

/** Run one command line (argv without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout)(overview());
    return name === undefined ? 2 : 0;
  }
  const prog = `${PROGRAM} ${name}`;
  try {
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) {
      const guess = closest(name, Object.keys(COMMANDS));
      throw new UsageError(
        `${PROGRAM}: unknown command '${name}'${guess ? ` (did you mean ${guess}?)` : ''}; commands: ${Object.keys(COMMANDS).join(', ')}`,
      );
    }
    const { command } = await entry.load();
    const args = parseArgs(command, rest);
    if (args.help) {
      io.stdout(formatHelp(command));
      return 0;
    }
    await checkEngineEnvironment();
    const code = (await command.run(args, io)) ?? 0;
    if (process.env.WEBVIG_PROFILE) await (await import('./profile-report.js')).printProfile(io);
    return code;
  } catch (e) {
    if (e instanceof UsageError) {
      // Commands may throw without their name ("--out X: …"); the line always starts with it.
      io.stderr(`${e.message.startsWith(`${PROGRAM}`) ? '' : `${prog}: `}${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    // WEBVIG_DEBUG=1 shows where it happened.
    const detail = process.env.WEBVIG_DEBUG ? `\n${err.stack ?? ''}` : '';
    io.stderr(`${prog}: ${err?.message ?? String(e)}${detail}\n`);
    return 1;
  }
}

/** The device's environment variables, checked before a command opens one: a bad value is a usage error (exit 2). */
async function checkEngineEnvironment(): Promise<void> {
  const { togglesOf, limitsOf } = await import('../engine/device.js');
  try {
    togglesOf();
    limitsOf();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    // npm's bin link points at this file through a symlink.
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const code = await main(process.argv.slice(2));
  // Exit explicitly (Dawn's instance would keep the process alive), once stdout has drained.
  process.stdout.write('', () => process.exit(code));
}
