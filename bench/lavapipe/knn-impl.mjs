// dilatedKnn's two CPU implementations (kernels/knn.ts), alternating in one process, min ms of 3
// after a warm-up, 3 rounds: 'fused' (knn_lanes: each query's distances and selection in one
// kernel) and 'products' (one gemm for every inner product, then select_lanes), on the shapes of
// GKGNet-T's stages and gkgnet-tiny's graphs. Usage: node bench/lavapipe/knn-impl.mjs
import { init, Tensor } from '../../dist/kernels/index.js';
import { dilatedKnn } from '../../dist/kernels/knn.js';
import { timeGpu } from '../../dist/engine/timing.js';
await init();
// B, C, N (queries), M (sources), k, dilation, groups, relative position term
const shapes = [
  [4, 48, 3136, 196, 9, 1, 2, true], [4, 96, 784, 196, 9, 1, 2, true], [4, 240, 196, 196, 9, 2, 2, true], [4, 384, 49, 49, 9, 1, 2, true],
  [16, 8, 256, 64, 4, 1, 2, true], [16, 8, 80, 256, 4, 1, 2, false], [16, 32, 80, 16, 4, 1, 2, false],
];
const best = {};
for (let round = 0; round < 3; round++) {
  for (const [B, C, N, M, k, d, G, hasPos] of shapes) {
    const q = Tensor.randn([B, C, N], 1), s = Tensor.randn([B, C, M], 2), pos = hasPos ? Tensor.randn([N, M], 3) : undefined;
    for (const impl of ['fused', 'products']) {
      const t = await timeGpu(() => dilatedKnn(q, s, { k, dilation: d, groups: G, relativePos: pos, impl }).release(), { warmup: 1, iters: 3 });
      const key = `[${B},${C},${N}] × ${M}, ${C / G} channels per group, k ${k}·${d}|${impl}`;
      best[key] = Math.min(best[key] ?? Infinity, t.minMs);
    }
    for (const t of [q, s, pos]) t?.release();
  }
}
for (const [B, C, N, M, k, d, G] of shapes) {
  const key = `[${B},${C},${N}] × ${M}, ${C / G} channels per group, k ${k}·${d}`;
  console.log(`${key}: fused ${best[`${key}|fused`].toFixed(2)} ms, products ${best[`${key}|products`].toFixed(2)} ms`);
}
process.exit(0);
