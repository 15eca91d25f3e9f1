import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, device, F } from '../kernels/index.js';
import { parseArgs, formatHelp, defineCommand, UsageError, type CommandSpec } from '../train/args.js';
import { main, COMMANDS } from '../train/cli.js';
import { MODEL_NAMES, modelNamesSummary } from '../models/factory.js';

const spec = defineCommand({
  name: 'train',
  summary: 'Train a model.',
  flags: {
    lr: { type: 'number', default: 0.001, help: 'peak learning rate' },
    epochs: { type: 'number', integer: true, min: 1, default: 80, help: 'epochs' },
    batchSize: { type: 'number', integer: true, min: 1, help: 'images per step' },
    model: { type: 'string', choices: ['gkgnet-s', 'vig-s'], default: 'gkgnet-s', help: 'architecture' },
    out: { type: 'path', default: 'runs', help: 'output directory' },
    data: { type: 'path', mustExist: true, help: 'dataset root' },
    json: { type: 'boolean', help: 'JSON output' },
    name: { type: 'string', help: 'run name' },
  },
  positionals: [{ name: 'preset', help: 'a preset', optional: true }],
  async run() {},
});

/** The UsageError that parsing `argv` throws (fails the test if it parses). */
function usageError(s: CommandSpec, argv: string[]): UsageError {
  try {
    parseArgs(s, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).not.toContain('\n');
    return e as UsageError;
  }
  throw new Error(`parsed without error: ${argv.join(' ')}`);
}

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (s: string) => void (out.stdout += s), stderr: (s: string) => void (out.stderr += s) } };
}

describe('args parser', () => {
  it('fills defaults and converts values', () => {
    const a = parseArgs(spec, []);
    expect(a.flags).toEqual({ lr: 0.001, epochs: 80, batchSize: undefined, model: 'gkgnet-s', out: 'runs', data: undefined, json: false, name: undefined });
    expect(a.positionals).toEqual([]);
    expect(a.help).toBe(false);
    const b = parseArgs(spec, ['--lr', '3e-4', '--epochs=5', '--batch-size', '16', '--model', 'vig-s', '--json', '--name=run 1']);
    expect(b.flags).toMatchObject({ lr: 3e-4, epochs: 5, batchSize: 16, model: 'vig-s', json: true, name: 'run 1' });
  });

  it('accepts negative numbers as values and booleans as --no-x / --x=false', () => {
    expect(parseArgs(spec, ['--lr', '-0.5']).flags.lr).toBe(-0.5);
    expect(parseArgs(spec, ['--json', '--no-json']).flags.json).toBe(false);
    expect(parseArgs(spec, ['--json=false']).flags.json).toBe(false);
    expect(parseArgs(spec, ['--json=true']).flags.json).toBe(true);
    expect(usageError(spec, ['--json=maybe']).message).toBe("webvig train: --json is a switch: expected true or false, got 'maybe'");
  });

  it('names an unknown flag and suggests the closest one', () => {
    expect(usageError(spec, ['--lrr', '1']).message).toBe('webvig train: unknown flag --lrr (did you mean --lr?)');
    expect(usageError(spec, ['--batchsize', '4']).message).toBe('webvig train: unknown flag --batchsize (did you mean --batch-size?)');
    expect(usageError(spec, ['--zzzzzz']).message).toBe('webvig train: unknown flag --zzzzzz');
    expect(usageError(spec, ['-x']).message).toMatch(/^webvig train: unknown flag -x/);
  });

  it('rejects bad numbers, naming the flag', () => {
    expect(usageError(spec, ['--lr', 'fast']).message).toBe("webvig train: --lr expects a number, got 'fast'");
    expect(usageError(spec, ['--lr=']).message).toBe("webvig train: --lr expects a number, got ''");
    expect(usageError(spec, ['--epochs', '2.5']).message).toBe("webvig train: --epochs expects an integer, got '2.5'");
    expect(usageError(spec, ['--epochs', '0']).message).toBe('webvig train: --epochs must be ≥ 1, got 0');
    expect(usageError(spec, ['--lr', 'Infinity']).message).toContain('--lr expects a number');
  });

  it('rejects missing values, bad choices and missing paths', () => {
    expect(usageError(spec, ['--lr']).message).toBe('webvig train: --lr needs a value (a number)');
    expect(usageError(spec, ['--name', '--json']).message).toBe('webvig train: --name needs a value (a string)');
    expect(usageError(spec, ['--model', 'resnet']).message).toBe("webvig train: --model must be one of gkgnet-s, vig-s, got 'resnet'");
    const missing = join(tmpdir(), 'webvig-no-such-dir-xyz');
    expect(usageError(spec, ['--data', missing]).message).toBe(`webvig train: --data: no such file or directory: ${missing}`);
    const dir = mkdtempSync(join(tmpdir(), 'webvig-cli-'));
    expect(parseArgs(spec, ['--data', dir]).flags.data).toBe(dir);
    // A path that need not exist is taken as given.
    expect(parseArgs(spec, ['--out', missing]).flags.out).toBe(missing);
  });

  it('a long list of choices: --help and errors name it by its summary, and a typo gets the closest choice', () => {
    const models = defineCommand({
      name: 'train',
      summary: 's',
      flags: { model: { type: 'string', choices: MODEL_NAMES, choicesSummary: { placeholder: 'name', text: modelNamesSummary() }, help: 'model' } },
      run: async () => 0,
    });
    const help = formatHelp(models);
    expect(help).toContain('--model <name>');
    expect(help).not.toContain('gm-mlic-gkgnet-b-boxes');
    expect(usageError(models, ['--model', 'gkgnet-x']).message).toBe(`webvig train: --model must be one of ${modelNamesSummary()}, got 'gkgnet-x' (did you mean gkgnet-t?)`);
    expect(parseArgs(models, ['--model', 'gm-mlic-vig-s-boxes']).flags.model).toBe('gm-mlic-vig-s-boxes');
    // The summary describes exactly MODEL_NAMES: expand it and compare.
    const [graph, region] = modelNamesSummary().split('; ');
    const expand = (list: string) => list.split(', ').flatMap((w) => {
      const cut = w.indexOf('-');
      return w.slice(cut + 1).split('|').map((v) => `${w.slice(0, cut)}-${v}`);
    });
    const bases = expand(graph.replace(', each also as NAME-mlgcn', ''));
    const m = /^(\S+) with an optional -TRUNK \((.+)\) then an optional -grid\|-boxes$/.exec(region)!;
    const regions = m[1].split('|').flatMap((f) => ['', ...expand(m[2])].flatMap((t) => ['', '-grid', '-boxes'].map((src) => `${f}${t && `-${t}`}${src}`)));
    expect([...bases, ...bases.map((b) => `${b}-mlgcn`), ...regions].sort()).toEqual([...MODEL_NAMES].sort());
  });

  it('handles positionals, -- and required flags', () => {
    expect(parseArgs(spec, ['quick', '--lr', '1']).positionals).toEqual(['quick']);
    expect(usageError(spec, ['quick', 'extra']).message).toBe("webvig train: unexpected argument 'extra' (expected <preset>)");
    const two = defineCommand({
      name: 'predict',
      summary: 's',
      flags: { checkpoint: { type: 'string', required: true, help: 'weights file' } },
      positionals: [
        { name: 'model', help: 'model name' },
        { name: 'images', help: 'image files', variadic: true, optional: true },
      ],
      async run() {},
    });
    const p = parseArgs(two, ['vig', 'a.jpg', '--checkpoint', 'w.safetensors', '--', '--odd-name.jpg']);
    expect(p.positionals).toEqual(['vig', 'a.jpg', '--odd-name.jpg']);
    expect(p.flags.checkpoint).toBe('w.safetensors');
    expect(usageError(two, ['--checkpoint', 'w']).message).toBe('webvig predict: missing argument <model> (model name)');
    expect(usageError(two, ['vig']).message).toBe('webvig predict: --checkpoint is required (weights file)');
    // --help wins over missing requirements.
    expect(parseArgs(two, ['--help']).help).toBe(true);
  });

  it('--help lists every flag with its default', () => {
    expect(parseArgs(spec, ['--lr', '1', '-h']).help).toBe(true);
    const h = formatHelp(spec);
    expect(h).toMatch(/^Usage: webvig train \[preset\] \[options\]/);
    expect(h).toMatch(/--lr <number>\s+peak learning rate \(default: 0\.001\)/);
    expect(h).toMatch(/--epochs <number>\s+epochs \(default: 80\)/);
    expect(h).toMatch(/--batch-size <number>\s+images per step \(default: none\)/);
    expect(h).toMatch(/--model <gkgnet-s\|vig-s>\s+architecture \(default: "gkgnet-s"\)/);
    expect(h).toMatch(/--data <path>\s+dataset root \(must exist\) \(default: none\)/);
    expect(h).toMatch(/--json\s+JSON output \(default: false\)/);
    expect(h).toContain('-h, --help');
  });
});

describe('webvig main()', () => {
  beforeAll(async () => {
    await init();
  });
  afterEach(() => {
    delete COMMANDS.boom;
  });

  it('info --json reports the adapter, features, limits and memory', async () => {
    const { out, io } = capture();
    expect(await main(['info', '--json'], io)).toBe(0);
    expect(out.stderr).toBe('');
    const r = JSON.parse(out.stdout);
    for (const k of ['vendor', 'architecture', 'device', 'description']) expect(typeof r.adapter[k]).toBe('string');
    expect(r.adapter.vendor.length + r.adapter.device.length).toBeGreaterThan(0);
    expect(r.backend).toMatch(/dawn|navigator/);
    expect(Array.isArray(r.features)).toBe(true);
    expect(r.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(r.limitsRequested).toBe(process.env.WEBVIG_LIMITS === 'default' ? 'default' : 'adapter');
    expect(r.limits.maxComputeWorkgroupsPerDimension).toBeGreaterThanOrEqual(65535);
    expect(typeof r.memory.liveBytes).toBe('number');
    expect(typeof r.memory.pipelinesCreated).toBe('number');
    // The kernels the engine picks for this adapter: lavapipe has subgroups of a fixed 8.
    expect(r.kernels.profile).toBe(device().kernelProfile);
    expect(r.kernels.shuffleLanes).toBe(device().kernelProfile === 'cpu' ? F.fixedSubgroupSize() : null);
  });

  it('info prints readable text', async () => {
    const { out, io } = capture();
    expect(await main(['info'], io)).toBe(0);
    expect(out.stdout).toMatch(/^adapter\n\s+vendor/);
    expect(out.stdout).toMatch(/maxStorageBufferBindingSize\s+\d/);
    expect(out.stdout).toContain('memory (buffer pool)');
  });

  it('usage errors print one line and exit 2', async () => {
    for (const [argv, msg] of [
      [['info', '--jsn'], 'webvig info: unknown flag --jsn (did you mean --json?)\n'],
      [['infp'], "webvig: unknown command 'infp' (did you mean info?); commands: train, eval, predict, parity, bench, info\n"],
      [['bench', '--suite', 'nope'], "webvig bench: unknown suite 'nope'; known suites: kernels, train\n"],
      [['bench', '--iters', 'many'], "webvig bench: --iters expects an integer, got 'many'\n"],
    ] as const) {
      const { out, io } = capture();
      expect(await main(argv, io)).toBe(2);
      expect(out.stderr).toBe(msg);
      expect(out.stdout).toBe('');
    }
  });

  it('help: overview and per-command flags with defaults', async () => {
    const top = capture();
    expect(await main(['--help'], top.io)).toBe(0);
    expect(top.out.stdout).toMatch(/Usage: webvig <command>/);
    for (const cmd of Object.keys(COMMANDS)) expect(top.out.stdout).toContain(`  ${cmd}`);
    const none = capture();
    expect(await main([], none.io)).toBe(2);
    expect(none.out.stderr).toMatch(/Usage: webvig <command>/);
    const bench = capture();
    expect(await main(['bench', '--help'], bench.io)).toBe(0);
    expect(bench.out.stdout).toMatch(/--suite <string>\s+suite to run: kernels, train \(default: "kernels"\)/);
    expect(bench.out.stdout).toMatch(/--size <tiny\|small\|large>.*\(default: "small"\)/);
    expect(bench.out.stdout).toMatch(/--iters <number>.*\(default: 10\)/);
  });

  it('other errors print the message and exit 1', async () => {
    COMMANDS.boom = {
      summary: 'fails',
      load: async () => ({
        command: defineCommand({
          name: 'boom',
          summary: 'fails',
          flags: {},
          async run() {
            throw new Error('the GPU caught fire');
          },
        }),
      }),
    };
    const { out, io } = capture();
    expect(await main(['boom'], io)).toBe(1);
    expect(out.stderr).toMatch(/^webvig boom: the GPU caught fire\n/);
  });
});
