// Matmuls on a CPU adapter: the tiled kernel (matmul.wgsl, forced by its tile) against the default,
// which on adapters with fixed-size subgroups is pointwise-subgroup.wgsl's gemm / dot form
// (kernels/matmul.ts). The three products of a Linear layer (forward with bias, dA, dB), min ms of
// 5 after a warm-up, alternating, 3 rounds. Usage: node bench/lavapipe/matmul-cpu.mjs
import { init, Tensor, F } from '../../dist/kernels/index.js';
import { TILES } from '../../dist/kernels/matmul.js';
import { timeGpu } from '../../dist/engine/timing.js';
await init();
const best = {};
const time = async (key, f) => {
  const t = await timeGpu(() => f().release(), { warmup: 1, iters: 5 });
  best[key] = Math.min(best[key] ?? Infinity, t.minMs);
};
const shapes = [[1280, 32, 48], [1280, 8, 16], [160, 32, 48]]; // rows, in, out: gkgnet-tiny's label path
for (let round = 0; round < 3; round++) {
  for (const [R, I, O] of shapes) {
    const a = Tensor.randn([R, I], 1), w = Tensor.randn([O, I], 2), bias = Tensor.randn([O], 3), g = Tensor.randn([R, O], 4);
    for (const [impl, tile] of [['tiled', TILES.small], ['default', undefined]]) {
      const k = `${I}->${O} on ${R} rows|${impl}`;
      await time(`${k}|forward`, () => F.matmul(a, w, { transB: true, bias, biasMode: 'col', tile }));
      await time(`${k}|dA`, () => F.matmul(g, w, { tile }));
      await time(`${k}|dB`, () => F.matmul(g, a, { transA: true, tile }));
    }
    for (const t of [a, w, bias, g]) t.release();
  }
}
for (const [R, I, O] of shapes) {
  const row = (impl) => ['forward', 'dA', 'dB'].map((p) => best[`${I}->${O} on ${R} rows|${impl}|${p}`].toFixed(2)).join(' / ');
  console.log(`Linear ${I}->${O} on ${R} rows (forward / dA / dB ms): tiled ${row('tiled')}, default ${row('default')}`);
}
process.exit(0);
