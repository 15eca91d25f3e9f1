// F.dilatedKnn as GKGNet's stage-0 Grapher runs it (the same cases as bench/pytorch/kernels.py):
// B samples × G = 2 channel groups of C/G = 40 channels, N query patches (side/4)², M pooled
// sources (r = 4), k = 9, dilation 1, with the [N, M] relative-position term. GFLOP/s counts the
// inner products only (2·B·G·N·M·C/G). Per case it also reports `dense_bytes`, the B·G×N×M f32
// distance matrix that the official code materialises before its top-k, and `fused_bytes`, what
// the fused op allocates instead: the normalised query and source copies, their squared norms and
// the i32 index output. Shape: [B·G, N, M, C/G, k].
import { Tensor } from '../engine/tensor.js';
import { dilatedKnn } from '../kernels/knn.js';
import type { BenchSize, Family } from './common.js';

interface KnnCase {
  B: number;
  G: number;
  C: number;
  N: number;
  M: number;
}

const K = 9;

/** large: GKGNet-S at 448 (112² patches, 28² sources) and 576 (144², 36²). */
const CASES: Record<BenchSize, KnnCase[]> = {
  tiny: [{ B: 2, G: 2, C: 16, N: 100, M: 25 }],
  small: [{ B: 4, G: 2, C: 80, N: 1024, M: 64 }],
  large: [
    { B: 16, G: 2, C: 80, N: 12544, M: 784 },
    { B: 16, G: 2, C: 80, N: 20736, M: 1296 },
  ],
};

export const bench: Family = async (ctx) => {
  for (const { B, G, C, N, M } of CASES[ctx.size]) {
    const query = Tensor.randn([B, C, N], 1);
    const source = Tensor.randn([B, C, M], 2);
    const relativePos = Tensor.rand([N, M], 3, -1, 1);
    const rows = B * G;
    await ctx.measure(
      {
        name: 'knn',
        shape: [rows, N, M, C / G, K],
        flops: 2 * rows * N * M * (C / G),
        extra: {
          dense_bytes: rows * N * M * 4,
          fused_bytes: (B * C * (N + M) + rows * (N + M) + rows * N * K) * 4,
        },
      },
      () => dilatedKnn(query, source, { k: K, groups: G, relativePos }),
    );
    for (const t of [query, source, relativePos]) t.release();
  }
};
