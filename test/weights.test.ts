// Checkpoint round trip on the real GKGNet layout: the gkg_net fixture's parameters and buffers go
// through loadStateDict → saveCheckpoint → the file → loadCheckpoint / a fresh model, and every
// byte, dtype, shape and key name is compared with the fixture read by a small independent
// safetensors header parser (not engine/safetensors.ts); the optimizer's moments come back under
// the documented `optimizer.` prefix. Also: pretrained Pyramid ViG weights into GKGNet's trunk.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Tensor, Rng } from '../kernels/index.js';
import { readSafetensors, writeSafetensors } from '../train/safetensors-file.js';
import { Gkgnet } from '../models/gkgnet.js';
import { PyramidVig } from '../models/pyramid-vig.js';
import { loadPretrainedBackbone } from '../models/pretrained.js';
import { loadPretrainedFile } from '../train/pretrained-file.js';
import { BatchNorm2d, seedInit } from '../models/layers.js';
import type { StateEntry } from '../models/module.js';
import { saveCheckpoint, loadCheckpoint, OPTIMIZER_PREFIX } from '../train/checkpoint.js';
import { AdamW } from '../train/optim.js';

const FIXTURE = new URL('./fixtures/gkg_net.safetensors', import.meta.url).pathname;

interface RawTensor {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** Header and raw bytes of every tensor: 8-byte LE header length, JSON header, data section. */
function rawSafetensors(path: string): { meta: Record<string, string>; tensors: Map<string, RawTensor> } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const tensors = new Map<string, RawTensor>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    tensors.set(k, { dtype: v.dtype, shape: v.shape, bytes: b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) });
  }
  return { meta: (header.__metadata__ ?? {}) as unknown as Record<string, string>, tensors };
}

/** The model as the parity harness builds it from the fixture's own config. */
function buildFromFixture(cfg: Record<string, unknown>, seed: number): Gkgnet {
  seedInit(seed);
  return new Gkgnet({
    channels: cfg.channels as number[],
    blocks: cfg.blocks as number[],
    size: cfg.size as number,
    k: cfg.k as number,
    kLabel: cfg.k_label_gcn as number,
    groups: cfg.num_group as number,
    reduceRatios: cfg.reduce_ratios as number[],
    dropPath: 0,
    relativePos: true,
    numLabels: cfg.S as number,
  });
}

const bytesOf = (d: Float32Array | Int32Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
/** An I64 little-endian encoding of int32 values (sign-extended). */
const i64 = (d: Int32Array) => Buffer.from(BigInt64Array.from(d, (v) => BigInt(v)).buffer);

let fixture: ReturnType<typeof rawSafetensors>;
let cfg: Record<string, unknown>;
/** Official name → raw fixture tensor, for every `param.*` / `buffer.*`. */
const official = new Map<string, RawTensor>();

beforeAll(async () => {
  await init();
  fixture = rawSafetensors(FIXTURE);
  cfg = JSON.parse(fixture.meta.config);
  for (const [k, t] of fixture.tensors) {
    const m = /^(param|buffer)\.(.+)$/.exec(k);
    if (m) official.set(m[2], t);
  }
});

describe('checkpoint round trip of the gkg_net fixture', () => {
  it('keeps every parameter, buffer and optimizer moment byte for byte under the official names', async () => {
    const file = await readSafetensors(FIXTURE, { filter: (k) => /^(param|buffer)\./.test(k) });
    const state = new Map<string, StateEntry>();
    for (const [k, r] of file.tensors) state.set(k.replace(/^(param|buffer)\./, ''), { shape: r.shape, data: r.data as Float32Array | Int32Array });
    const model = buildFromFixture(cfg, 1);
    // Strict: only the tables the file stores once per stage may be absent (rebuilt).
    const res = model.loadStateDict(state);
    expect(res.mismatched).toEqual([]);
    expect(res.unexpected).toEqual([]);
    // num_batches_tracked is 0 in the fixture: give each BN a distinct count to see it travel as I64.
    let bn = 0;
    for (const m of model.modules()) if (m instanceof BatchNorm2d) m.numBatchesTracked = 1000 * ++bn + 7;
    expect(bn).toBeGreaterThan(50);

    // Optimizer moments after one step with fixed gradients.
    const trainable = model.trainableParameters();
    const opt = new AdamW(trainable.map(([, t]) => t), { lr: 1e-3, weightDecay: 0.05 });
    trainable.forEach(([, p], i) => (p.grad = Tensor.randn(p.shape, 100 + i, 0.1)));
    opt.step();
    for (const [, p] of trainable) {
      p.grad!.release();
      p.grad = null;
    }
    const optState = await opt.stateDict();
    const modelAfterStep = await model.stateDict();

    const path = join(mkdtempSync(join(tmpdir(), 'webvig-weights-')), 'ck.safetensors');
    await saveCheckpoint(path, model, optState, { epoch: 3, step: 42 });
    const saved = rawSafetensors(path);

    // Keys: exactly the official names (parameters incl. every relative_pos table, buffers, BN
    // counters) and the optimizer's `<param>.exp_avg|exp_avg_sq|step` under `optimizer.`.
    const ownNames = [...model.namedParameters(), ...model.namedBuffers()].map(([n]) => n);
    const counters = [...model.namedModules()].filter(([, m]) => m instanceof BatchNorm2d).map(([p]) => `${p}num_batches_tracked`);
    const modelKeys = [...saved.tensors.keys()].filter((k) => !k.startsWith(OPTIMIZER_PREFIX));
    expect(modelKeys.sort()).toEqual([...ownNames, ...counters].sort());
    const storedOnce = cfg.relative_pos_stored_once_per_stage as string[];
    const rebuilt = modelKeys.filter((k) => !official.has(k));
    expect(rebuilt.length).toBeGreaterThan(0);
    for (const k of rebuilt) expect(k, k).toMatch(/^backbone\.backbone\.\d+\.0\.relative_pos$/);
    expect([...official.keys()].filter((k) => !saved.tensors.has(k))).toEqual([]);
    const optKeys = [...saved.tensors.keys()].filter((k) => k.startsWith(OPTIMIZER_PREFIX)).sort();
    expect(optKeys).toEqual(trainable.flatMap(([n]) => ['exp_avg', 'exp_avg_sq', 'step'].map((s) => `${OPTIMIZER_PREFIX}${n}.${s}`)).sort());

    // Values: every fixture tensor byte for byte, with its dtype and shape. Parameters changed by
    // the optimizer step are compared with the model's own state after the step instead.
    let compared = 0;
    for (const [name, ref] of official) {
      const got = saved.tensors.get(name)!;
      expect(got.shape, name).toEqual(ref.shape);
      expect(got.dtype, name).toBe(ref.dtype);
      if (name.endsWith('num_batches_tracked')) {
        const v = modelAfterStep.get(name)!.data as Int32Array;
        expect(v[0]).toBeGreaterThan(1000);
        expect(got.bytes.equals(i64(v)), name).toBe(true);
        expect(ref.bytes.equals(i64(Int32Array.of(0))), name).toBe(true);
      } else if (trainable.some(([n]) => n === name)) {
        expect(got.bytes.equals(bytesOf(modelAfterStep.get(name)!.data)), name).toBe(true);
      } else {
        // Buffers and frozen tables: untouched by the step, so exactly the fixture's bytes.
        expect(got.bytes.equals(ref.bytes), name).toBe(true);
      }
      compared++;
    }
    expect(compared).toBe(official.size);
    // A rebuilt table is the same tensor as its stage's stored one (all Graphers of a stage share it).
    for (const k of rebuilt) {
      const stage = storedOnce.find((s) => saved.tensors.get(s)!.shape.join() === saved.tensors.get(k)!.shape.join())!;
      expect(saved.tensors.get(k)!.bytes.equals(official.get(stage)!.bytes), k).toBe(true);
    }
    for (const [k, e] of optState) {
      const got = saved.tensors.get(OPTIMIZER_PREFIX + k)!;
      expect(got.dtype, k).toBe(k.endsWith('.step') ? 'I32' : 'F32');
      expect(got.shape, k).toEqual(e.shape);
      expect(got.bytes.equals(bytesOf(e.data)), k).toBe(true);
    }

    // loadCheckpoint splits the file back into model and optimizer entries with the same values.
    const ck = await loadCheckpoint(path);
    expect(ck.meta).toMatchObject({ epoch: 3, step: 42 });
    expect([...ck.model.keys()].sort()).toEqual(modelKeys);
    for (const [k, e] of ck.model) expect(bytesOf(e.data).equals(bytesOf(modelAfterStep.get(k)!.data)), k).toBe(true);
    expect([...ck.optimizer.keys()].sort()).toEqual([...optState.keys()].sort());
    for (const [k, e] of ck.optimizer) expect(bytesOf(e.data).equals(bytesOf(optState.get(k)!.data)), k).toBe(true);

    // …and a differently initialised model and optimizer take them over exactly.
    const fresh = buildFromFixture(cfg, 2);
    fresh.loadStateDict(ck.model);
    const back = await fresh.stateDict();
    expect([...back.keys()].sort()).toEqual(modelKeys);
    for (const [k, e] of back) expect(bytesOf(e.data).equals(bytesOf(modelAfterStep.get(k)!.data)), k).toBe(true);
    const opt2 = new AdamW(fresh.trainableParameters().map(([, t]) => t), { lr: 1e-3, weightDecay: 0.05 });
    opt2.loadStateDict(ck.optimizer);
    const optBack = await opt2.stateDict();
    for (const [k, e] of optBack) expect(bytesOf(e.data).equals(bytesOf(optState.get(k)!.data)), k).toBe(true);
  });

  it('without an optimizer step, the checkpoint holds exactly the fixture values', async () => {
    const file = await readSafetensors(FIXTURE, { filter: (k) => /^(param|buffer)\./.test(k) });
    const state = new Map<string, StateEntry>();
    for (const [k, r] of file.tensors) state.set(k.replace(/^(param|buffer)\./, ''), { shape: r.shape, data: r.data as Float32Array | Int32Array });
    const model = buildFromFixture(cfg, 3);
    model.loadStateDict(state);
    const path = join(mkdtempSync(join(tmpdir(), 'webvig-weights-')), 'plain.safetensors');
    await saveCheckpoint(path, model, new Map(), { epoch: 0, step: 0 });
    const saved = rawSafetensors(path);
    for (const [name, ref] of official) {
      const got = saved.tensors.get(name)!;
      expect([got.dtype, got.shape], name).toEqual([ref.dtype, ref.shape]);
      expect(got.bytes.equals(ref.bytes), name).toBe(true);
    }
    expect([...saved.tensors.keys()].some((k) => k.startsWith(OPTIMIZER_PREFIX))).toBe(false);
  });
});

describe('pretrained Pyramid ViG → GKGNet trunk (spec §4.7)', () => {
  /** A Pyramid ViG state dict with the fixture net's widths at 64 px, every value random and distinct. */
  async function vigState(): Promise<Map<string, StateEntry>> {
    seedInit(5);
    const vig = new PyramidVig({
      channels: cfg.channels as number[], blocks: cfg.blocks as number[], size: 64, k: 9, groups: 1, reduceRatios: [4, 2, 1, 1],
      dropPath: 0, relativePos: true, numClasses: 10, headHidden: 32,
    });
    const state = await vig.stateDict();
    vig.release();
    const rng = new Rng(17);
    for (const e of state.values()) {
      if (e.data instanceof Int32Array) e.data = Int32Array.from(e.data, () => 1 + rng.int(100000));
      else e.data = Float32Array.from(e.data, () => rng.normal());
    }
    return state;
  }

  function gkgnetAt(size: number): Gkgnet {
    seedInit(9);
    return new Gkgnet({
      channels: cfg.channels as number[], blocks: cfg.blocks as number[], size, k: 9, kLabel: 9, groups: 2,
      reduceRatios: [4, 2, 1, 1], dropPath: 0, relativePos: true, numLabels: 5,
    });
  }

  it('loads every trunk tensor, skips pos_embed and relative_pos at another size, ignores the ImageNet head', async () => {
    const src = await vigState();
    const prediction = [...src.keys()].filter((k) => k.startsWith('prediction.'));
    const sized = [...src.keys()].filter((k) => k === 'pos_embed' || k.endsWith('.relative_pos'));
    expect(prediction.length).toBeGreaterThan(0);
    expect(sized).toHaveLength(1 + 12);
    const layouts: [string, Map<string, StateEntry>, (k: string) => string][] = [
      ['raw', src, (k) => k],
      ['module.', new Map([...src].map(([k, v]) => [`module.${k}`, v])), (k) => `module.${k}`],
      // mmcls layout: the trunk under `backbone.`, a classifier head beside it.
      ['mmcls', new Map([...[...src].map(([k, v]) => [k.startsWith('prediction.') ? `head.${k}` : `backbone.${k}`, v] as const)]), (k) => (k.startsWith('prediction.') ? `head.${k}` : `backbone.${k}`)],
    ];
    for (const [layout, state, nameIn] of layouts) {
      const gk = gkgnetAt(96);
      const before = await gk.stateDict();
      const r = loadPretrainedBackbone(gk, state);
      const expectedLoaded = [...src.keys()].filter((k) => !prediction.includes(k) && !sized.includes(k)).map((k) => `backbone.${k}`);
      expect(r.loaded.sort(), layout).toEqual(expectedLoaded.sort());
      expect(r.ignored.sort(), layout).toEqual(prediction.map(nameIn).sort());
      expect(r.skipped.map((s) => s.slice(0, s.indexOf(':'))).sort(), layout).toEqual(sized.map((k) => `backbone.${k}`).sort());
      expect(r.skipped.find((s) => s.startsWith('backbone.pos_embed:'))).toBe('backbone.pos_embed: checkpoint [1,16,16,16] vs model [1,16,24,24]');
      const after = await gk.stateDict();
      for (const [k, e] of after) {
        const own = k.startsWith('backbone.') ? k.slice('backbone.'.length) : null;
        const loaded = own !== null && r.loaded.includes(k);
        const want = loaded ? src.get(own!)!.data : before.get(k)!.data;
        expect(bytesOf(e.data).equals(bytesOf(want)), `${layout}: ${k} ${loaded ? 'loaded' : 'kept'}`).toBe(true);
      }
      // Every trunk tensor but the size-dependent ones came from the checkpoint; the label stream,
      // the head, pos_embed (zeros) and the rebuilt tables kept their own values.
      const trunk = [...after.keys()].filter((k) => /^backbone\.(stem|backbone|pos_embed)/.test(k));
      expect(trunk.filter((k) => !r.loaded.includes(k)).sort()).toEqual(sized.map((k) => `backbone.${k}`).sort());
      expect(Math.max(...Array.from(after.get('backbone.pos_embed')!.data, Math.abs))).toBe(0);
      gk.release();
    }
  });

  it('loads from a safetensors file and reports what it skipped; rejects a file with nothing to load', async () => {
    const src = await vigState();
    const dir = mkdtempSync(join(tmpdir(), 'webvig-pretrained-'));
    const path = join(dir, 'pvig.safetensors');
    await writeSafetensors(path, [...src].map(([name, e]) => ({ name, shape: e.shape, data: e.data, dtype: e.data instanceof Int32Array ? ('I64' as const) : ('F32' as const) })));
    const gk = gkgnetAt(96);
    const lines = await loadPretrainedFile(gk, path);
    const loaded = [...src.keys()].length - 13 - [...src.keys()].filter((k) => k.startsWith('prediction.')).length;
    expect(lines[0]).toBe(`pretrained: ${path}: loaded ${loaded} tensors, skipped 13 (shape mismatch), ignored ${[...src.keys()].filter((k) => k.startsWith('prediction.')).length}`);
    expect(lines.slice(1)).toHaveLength(13);
    for (const l of lines.slice(1)) expect(l).toMatch(/^warning: pretrained: skipped backbone\.(pos_embed|backbone\.\d+\.0\.relative_pos): checkpoint \[[\d,]+\] vs model \[[\d,]+\]$/);
    await expect(loadPretrainedFile(gk, FIXTURE.replace('gkg_net', 'losses'))).rejects.toThrow(/^--pretrained .*losses\.safetensors: loadPretrainedBackbone: no tensor of the checkpoint matches the GkgnetBackbone trunk/);
    gk.release();
  });
});
