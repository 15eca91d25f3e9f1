// Which op contexts (op + shapes) one train step dispatches, with counts.
import { init, device, tidy } from '../../dist/engine/context.js';
import { runSuite } from '../../dist/bench/run.js';
await init();
const dev = device();
const counts = new Map();
const orig = dev.dispatch.bind(dev);
let on = false;
dev.dispatch = (p, args, params, wg, ctx) => { if (on) { const k = `${p.label} | ${ctx} | wg ${wg.join('x')}`; counts.set(k, (counts.get(k) ?? 0) + 1); } return orig(p, args, params, wg, ctx); };
setTimeout(() => { on = true; }, 0);
on = true;
await runSuite({ suite: 'train', size: 'small', trainCase: process.env.CASE, warmup: 0, iters: 1, log: () => {} });
const re = new RegExp(process.env.FILTER ?? '.');
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1])) if (re.test(k)) console.log(String(v).padStart(4), k);
process.exit(0);
