// Starts a worker thread from a module of this folder, given the URL of its compiled .js.
// Production runs dist/, where the .js exists. Under vitest the sources are .ts and no .js exists
// beside them; Node 20 cannot execute TypeScript, so the worker first registers module hooks that
// map missing './x.js' imports to './x.ts' and transpile .ts with the project's typescript package
// (a devDependency, present wherever the sources are run), then imports the .ts entry.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Module hooks that run the TypeScript sources directly (also used by tests that fork a child). */
export const TS_HOOKS = `
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
let ts;
export function initialize(base) { ts = createRequire(base)('typescript'); }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.endsWith('.js')) throw e;
    return next(specifier.slice(0, -3) + '.ts', context);
  }
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const source = await readFile(new URL(url), 'utf8');
  const options = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
  return { format: 'module', shortCircuit: true, source: ts.transpileModule(source, { fileName: url, compilerOptions: options }).outputText };
}`;

const BOOT = `
const { register } = require('node:module');
const { workerData } = require('node:worker_threads');
register('data:text/javascript,' + encodeURIComponent(workerData.hooks), { data: workerData.entry });
import(workerData.entry);`;

export function spawnModuleWorker(jsUrl: URL): Worker {
  if (existsSync(jsUrl)) return new Worker(jsUrl);
  const entry = jsUrl.href.replace(/\.js$/, '.ts');
  return new Worker(BOOT, { eval: true, workerData: { hooks: TS_HOOKS, entry } });
}
