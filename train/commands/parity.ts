// `webvig parity DIR [--json]`: every .safetensors fixture in DIR against the engine (train/parity/parity.ts;
// the `losses` and `mlgcn` kinds in train/parity/losses.ts and mlgcn.ts).
// Exit code 0 iff everything passes; 2 for an unknown fixture type or a malformed file.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../../engine/context.js';
import { defineCommand, UsageError } from '../args.js';
import { DEVICE_FLAGS, adapterOf } from './info.js';
import { FixtureError, type FileReport } from '../../train/parity/parity.js';
import { parityFile } from '../../train/parity/parity-file.js';

export const command = defineCommand({
  name: 'parity',
  summary: 'Compare forward and backward with the PyTorch reference fixtures in DIR.',
  positionals: [{ name: 'DIR', help: 'folder of .safetensors fixtures (or one file)' }],
  flags: {
    json: { type: 'boolean', help: 'print one JSON object {pass, files: [...]}' },
    verbose: { type: 'boolean', help: 'list every compared tensor' },
    ...DEVICE_FLAGS,
  },
  async run({ flags, positionals }, io) {
    const target = positionals[0];
    let files: string[];
    try {
      files = statSync(target).isDirectory()
        ? readdirSync(target).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(target, f))
        : [target];
    } catch {
      throw new UsageError(`webvig parity: ${target}: no such file or directory`);
    }
    if (files.length === 0) throw new UsageError(`webvig parity: ${target}: no .safetensors files`);
    await init({ adapter: adapterOf(flags, 'webvig parity'), backend: flags.backend });
    const reports: FileReport[] = [];
    for (const f of files) {
      try {
        const r = await parityFile(f);
        reports.push(...r);
        if (!flags.json) for (const x of r) io.stdout(line(x, flags.verbose));
      } catch (e) {
        if (e instanceof FixtureError) {
          io.stderr(`webvig parity: ${e.message}\n`);
          return 2;
        }
        throw e;
      }
    }
    const pass = reports.every((r) => r.pass);
    if (flags.json) {
      io.stdout(`${JSON.stringify({ pass, files: reports })}\n`);
    } else io.stdout(`${pass ? 'PASS' : 'FAIL'}: ${reports.filter((r) => r.pass).length}/${reports.length} file×mode checks passed\n`);
    return pass ? 0 : 1;
  },
});

function line(r: FileReport, verbose: boolean): string {
  const knn = r.knn.rows ? `  knn ${r.knn.mismatched}/${r.knn.rows} rows differ (allowed ${r.knn.allowed})` : '';
  const m = r.maxrel;
  const maxrel = m ? `  max-relative ${m.fragile}/${m.choices} near-ties${m.flipped === null ? '' : `, ${m.flipped} flipped (${m.unexplained} not near-ties; reference choices injected)`}` : '';
  let s = `${r.pass ? 'ok  ' : 'FAIL'} ${r.file} [${r.mode}]  worst ${r.worst.tensor} ${r.worst.rel_err.toExponential(2)} (tol ${r.worst.tol})${knn}${maxrel}\n`;
  if (m?.note) s += `       note: ${m.note}\n`;
  if (verbose || !r.pass) for (const c of r.checks) if (verbose || !c.pass) s += `       ${c.pass ? ' ' : '!'} ${c.tensor} ${c.rel_err.toExponential(2)} (tol ${c.tol})\n`;
  return s;
}
