// Matmul forward and backward against a float64 reference: every transpose combination, every tile
// configuration on sizes that are not tile multiples, batches (shared and broadcast), row / column
// bias (shared or per batch), and the relu / gelu epilogue both fused (no grad) and recorded (grad).
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, noGrad, tidy, device } from '../kernels/index.js';
import { TILES, type MatmulOptions } from '../kernels/matmul.js';
import { fixedSubgroupSize } from '../kernels/subgroups.js';
import { randArr, matmulFullRef, runGrad, expectClose, numel, type Input, type MatmulCase } from './ref.js';

beforeAll(async () => {
  await init();
});

const TOL = 1e-4;

interface Case {
  M: number;
  N: number;
  K: number;
  /** Batch dims of A and B ([] = none). */
  ba?: number[];
  bb?: number[];
  transA?: boolean;
  transB?: boolean;
  bias?: 'row' | 'col';
  biasPerBatch?: boolean;
  activation?: 'none' | 'relu' | 'gelu';
  tile?: keyof typeof TILES;
  /** Inputs that take no gradient. */
  frozen?: ('a' | 'b' | 'bias')[];
}

function describeCase(c: Case): string {
  return JSON.stringify(c);
}

function operands(c: Case, seed: number) {
  const ba = c.ba ?? [];
  const bb = c.bb ?? [];
  const sa = [...ba, ...(c.transA ? [c.K, c.M] : [c.M, c.K])];
  const sb = [...bb, ...(c.transB ? [c.N, c.K] : [c.K, c.N])];
  const batch = Math.max(numel(ba), numel(bb));
  const batchShape = numel(ba) >= numel(bb) ? ba : bb;
  const len = c.bias === 'row' ? c.M : c.N;
  const sbias = c.biasPerBatch ? [batch, len] : [len];
  return {
    a: randArr(sa, seed),
    b: randArr(sb, seed + 1),
    bias: c.bias ? randArr(sbias, seed + 2) : undefined,
    sa,
    sb,
    sbias,
    outShape: [...batchShape, c.M, c.N],
    batchA: numel(ba),
    batchB: numel(bb),
  };
}

async function check(c: Case, seed: number) {
  const o = operands(c, seed);
  const frozen = new Set(c.frozen ?? []);
  const inputs: Input[] = [
    { data: o.a, shape: o.sa, noGrad: frozen.has('a') },
    { data: o.b, shape: o.sb, noGrad: frozen.has('b') },
  ];
  if (o.bias) inputs.push({ data: o.bias, shape: o.sbias, noGrad: frozen.has('bias') });
  const opts = (bias?: Tensor): MatmulOptions => ({
    transA: c.transA,
    transB: c.transB,
    bias,
    biasMode: c.bias,
    activation: c.activation,
    tile: c.tile ? TILES[c.tile] : undefined,
  });
  const r = await runGrad(inputs, (a, b, bias) => F.matmul(a, b, opts(bias)), seed);
  const mc: MatmulCase = {
    M: c.M, N: c.N, K: c.K, batchA: o.batchA, batchB: o.batchB, transA: c.transA, transB: c.transB,
    bias: o.bias, biasMode: c.bias, biasPerBatch: c.biasPerBatch, activation: c.activation,
  };
  const ref = matmulFullRef(o.a, o.b, mc, r.w);
  const what = describeCase(c);
  expect(r.shape, what).toEqual(o.outShape);
  expectClose(r.out, ref.data, TOL, `${what} forward`);
  for (const [k, name, g] of [[0, 'a', ref.ga], [1, 'b', ref.gb], [2, 'bias', ref.gbias]] as const) {
    if (k === 2 && !o.bias) continue;
    if (frozen.has(name)) expect(r.grads[k], `${what} d/d${name} should be absent`).toBeNull();
    else expectClose(r.grads[k], g, TOL, `${what} d/d${name}`);
  }
  // The fused epilogue (no autograd recording) must agree with the recorded one.
  if (c.activation || c.bias) {
    const ts = inputs.map((x) => Tensor.from(Float32Array.from(x.data), x.shape));
    const y = noGrad(() => tidy(() => F.matmul(ts[0], ts[1], opts(ts[2]))));
    expectClose(await y.toArray(), ref.data, TOL, `${what} fused (no grad)`);
    for (const t of [...ts, y]) t.release();
  }
}

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [5, 7, 3],
  [33, 17, 9],
  [19, 70, 40],
  [1, 9, 16],
  [9, 1, 17],
];
const TRANS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

// Lavapipe compiles each matmul pipeline (tile × transposes × bias × activation) in seconds, so the
// cases below are arranged to cover every code path with few distinct pipelines: all transposes on
// the small tile (the backward pass reuses those), the transposed and plain loaders on the other two
// tiles, and bias / activation variants on plain operands (the epilogue does not depend on them).
describe('matmul', () => {
  it('small tiles: all four transpose combinations on awkward sizes', async () => {
    let seed = 1;
    for (const [M, N, K] of SIZES) {
      for (const [transA, transB] of TRANS) await check({ M, N, K, transA, transB, tile: 'small' }, seed++);
    }
  });

  for (const tile of ['medium', 'large'] as const) {
    it(`${tile} tiles: plain and transposed loaders on awkward sizes`, async () => {
      let seed = tile === 'medium' ? 50 : 70;
      for (const [M, N, K] of SIZES) {
        for (const trans of [false, true]) await check({ M, N, K, transA: trans, transB: trans, tile }, seed++);
      }
    });
  }

  it('automatic tile choice at sizes around the medium-tile threshold', async () => {
    let seed = 100;
    for (const [M, N, K] of [[64, 64, 5], [65, 63, 20], [70, 66, 33]] as const) {
      const trans = seed % 2 === 0;
      await check({ M, N, K, transA: trans, transB: trans }, seed++);
    }
  });

  it('batched, and one operand shared across the batch (either side), multi-dim batches', async () => {
    const cases: Partial<Case>[] = [
      { ba: [3], bb: [3] },
      { ba: [3], bb: [] },
      { ba: [], bb: [4] },
      { ba: [2, 3], bb: [2, 3] },
      { ba: [2, 3], bb: [1] },
      { ba: [1], bb: [2] },
      { ba: [5], bb: [5] },
    ];
    let seed = 200;
    for (const [i, bc] of cases.entries()) {
      for (const [transA, transB] of TRANS) {
        await check({ M: 6 + i, N: 5, K: 7 + (i % 3), ...bc, transA, transB }, seed++);
      }
    }
  });

  it('row and column bias, shared or per batch, with gradients', async () => {
    let seed = 300;
    for (const bias of ['row', 'col'] as const) {
      for (const ba of [[], [3], [2, 2]]) {
        for (const biasPerBatch of ba.length ? [false, true] : [false]) {
          await check({ M: 9, N: 11, K: 6, ba, bb: ba, bias, biasPerBatch }, seed++);
        }
      }
      // A batched A against a shared B, bias per batch.
      await check({ M: 4, N: 3, K: 5, ba: [2], bb: [], bias, biasPerBatch: true }, seed++);
    }
  });

  it('relu / gelu epilogue after a row / column bias, fused without grad and recorded with grad', async () => {
    let seed = 400;
    for (const [activation, bias] of [['relu', 'row'], ['gelu', 'col']] as const) {
      await check({ M: 13, N: 10, K: 8, ba: [2], bb: [2], bias, activation }, seed++);
      await check({ M: 40, N: 35, K: 20, bias, activation, biasPerBatch: false }, seed++);
    }
  });

  it('gradients only for the inputs that require them (bias alone, A alone, B alone)', async () => {
    let seed = 500;
    for (const frozen of [['a', 'b'], ['b', 'bias'], ['a', 'bias'], ['a']] as Case['frozen'][]) {
      await check({ M: 7, N: 6, K: 5, ba: [2], bb: [2], bias: 'col', activation: 'gelu', frozen }, seed++);
      await check({ M: 7, N: 6, K: 5, ba: [2], bb: [], bias: 'row', frozen }, seed++);
    }
  });

  it('the activation runs as its own op when recording (its backward sees pre-activation values)', () => {
    const a = Tensor.from(randArr([3, 4], 1), [3, 4]).param();
    const b = Tensor.from(randArr([4, 2], 2), [4, 2]);
    const y = tidy(() => F.matmul(a, b, { activation: 'gelu' }));
    expect(y.node?.op).toBe('gelu');
    expect(y.node?.inputs[0].node?.op).toBe('matmul');
    const z = noGrad(() => tidy(() => F.matmul(a, b, { activation: 'gelu' })));
    expect(z.node).toBeNull();
    for (const t of [a, b, y, z]) t.release();
  });
});

// On CPU adapters with fixed-size subgroups (lavapipe) matmuls run as pointwise-subgroup.wgsl's gemm
// (A·B, Aᵀ·B) and dot form (A·Bᵀ); the cases above cover them too (those without a forced tile). These
// add the shapes their blocks depend on: rows past one subgroup, columns in vec4s (N or K % 4 = 0)
// or not, 2 and 4 dot-form columns per lane, each way of mapping a batch, and which kernel ran.
describe('matmul on CPU-shaped kernels', () => {
  it('gemm and dot form: row blocks, vec4 planes, wide column blocks, biases, batches', async () => {
    let seed = 600;
    const cases: Case[] = [
      { M: 37, N: 48, K: 32, transB: true, bias: 'col' }, // a Linear: dot form, vec4 rows, 2 columns per lane
      { M: 21, N: 130, K: 20, transB: true, bias: 'row' }, // 4 columns per lane, row bias
      { M: 19, N: 9, K: 13, transB: true }, // no vec4s
      { M: 20, N: 36, K: 13, bias: 'row' }, // gemm: vec4 planes of B's rows
      { M: 20, N: 36, K: 13, transA: true },
      { M: 11, N: 7, K: 40, transA: true, bias: 'row' },
      { M: 10, N: 12, K: 9, ba: [3], bb: [3] }, // batch as groups
      { M: 10, N: 12, K: 9, ba: [3], bb: [3], transB: true, bias: 'col' },
      { M: 10, N: 12, K: 9, ba: [3], bb: [3], transA: true },
      { M: 9, N: 16, K: 6, ba: [], bb: [4], bias: 'row' }, // A shared: batch as images
      { M: 9, N: 16, K: 6, ba: [], bb: [4], transA: true },
      { M: 9, N: 16, K: 8, ba: [3], bb: [] }, // B shared: batch folded into A's rows
      { M: 9, N: 16, K: 8, ba: [3], bb: [], transB: true, bias: 'col' },
    ];
    for (const c of cases) await check(c, seed++);
  });

  it('runs them on the adapters that have fixed-size subgroups, the tiled kernel elsewhere', async () => {
    const a = Tensor.from(randArr([40, 32], 1), [40, 32]);
    const w = Tensor.from(randArr([24, 32], 2), [24, 32]);
    const x = Tensor.from(randArr([32, 20], 3), [32, 20]);
    const profiler = device().enableProfiler({ bySite: true });
    try {
      for (const y of [F.matmul(a, w, { transB: true }), F.matmul(a, x), F.matmul(x, a, { transA: true, transB: true })]) y.release();
      await a.toArray();
      const kernels = (await profiler.report()).map((r) => r.kernel);
      const cpu = fixedSubgroupSize() !== null && device().kernelProfile === 'cpu';
      const ran = (pattern: string, file: string) => kernels.some((k) => k.startsWith(file) && k.includes(pattern));
      expect(ran('[40,32] · [24,32]ᵀ', cpu ? 'pointwise-subgroup.wgsl:weight_grad' : 'matmul.wgsl'), kernels.join('\n')).toBe(true);
      expect(ran('[40,32] · [32,20]', cpu ? 'pointwise-subgroup.wgsl:gemm' : 'matmul.wgsl')).toBe(true);
      expect(ran('[32,20]ᵀ · [40,32]ᵀ', 'matmul.wgsl')).toBe(true); // Aᵀ·Bᵀ: no such form
    } finally {
      device().disableProfiler();
      for (const t of [a, w, x]) t.release();
    }
  });
});
