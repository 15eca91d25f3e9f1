// Engine behaviour: the buffer pool, scopes (tidy / keep), views, memory statistics, a steady-state
// training loop that creates no GPU objects, WGSL compile errors, seeded random tensors, and 1-D
// grids folded past the per-dimension workgroup limit.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, device, Tensor, F, tidy, keep, noGrad, backward, beginScope, endScope, type MemoryStats } from '../kernels/index.js';
import { launch } from '../engine/launch.js';
import { hash, kernelSource } from '../engine/kernel.js';
import { sizeClass } from '../engine/pool.js';
import {
  randArr, mapRef, reduceRef, maxRef, softmaxRef, permuteMap, indexSelectMap, gatherRef, scatterRef, expectClose, numel, forEachKernelProfile,
} from './ref.js';

beforeAll(async () => {
  await init();
});

const stats = (): MemoryStats => device().memoryStats();

describe('buffer pool', () => {
  it('a released buffer is reused for the same size class: no new allocation', () => {
    const a = Tensor.empty([1000]);
    const s0 = stats();
    a.release();
    const s1 = stats();
    expect(s1.liveBytes).toBe(s0.liveBytes - sizeClass(4000));
    expect(s1.pooledBytes).toBe(s0.pooledBytes + sizeClass(4000));
    const b = Tensor.empty([1000]);
    expect(stats().allocations).toBe(s0.allocations);
    b.release();
    // Another size in the same class (≤ 25 % slack) reuses it too; a bigger class allocates.
    expect(sizeClass(3900)).toBe(sizeClass(4000));
    const c = Tensor.empty([975]);
    expect(stats().allocations).toBe(s0.allocations);
    const d = Tensor.empty([5000]);
    expect(stats().allocations).toBe(s0.allocations + 1);
    c.release();
    d.release();
  });

  it('peaks: the pool high-water mark counts pooled buffers too, the live one only what tensors hold', () => {
    const pool = device().pool;
    pool.resetPeak();
    const [live0, pooled0] = [pool.liveBytes, pool.pooledBytes];
    expect([pool.peakLiveBytes, pool.peakBytes]).toEqual([live0, live0 + pooled0]);
    // Two new size classes, one after the other: the second is allocated while the first sits in the pool.
    const big = 1 << 26;
    Tensor.empty([big / 4]).release();
    const b = Tensor.empty([(big * 2) / 4]);
    expect(pool.peakLiveBytes).toBe(live0 + sizeClass(big * 2));
    expect(pool.peakBytes).toBe(live0 + pooled0 + sizeClass(big) + sizeClass(big * 2));
    b.release();
    pool.trim();
  });

  it('memoryStats has every field, as numbers that move with the work done', async () => {
    const s0 = stats();
    for (const k of ['liveBytes', 'pooledBytes', 'allocations', 'submits', 'dispatches', 'pipelinesCreated', 'bindGroupsCreated', 'uniformBuffersCreated'] as const) {
      expect(typeof s0[k], k).toBe('number');
      expect(s0[k], k).toBeGreaterThanOrEqual(0);
    }
    const x = Tensor.from([1, 2, 3], [3]);
    const y = tidy(() => F.exp(F.exp(x)));
    const s1 = stats();
    expect(s1.dispatches).toBe(s0.dispatches + 2);
    expect(s1.submits).toBe(s0.submits); // encoded, not yet submitted
    await y.toArray();
    expect(stats().submits).toBe(s1.submits + 1);
    x.release();
    y.release();
  });
});

describe('read-back', () => {
  it('Tensor.readAll reads several tensors in one wait: f32 and integers, views at an offset, sizes not a multiple of 4 bytes apart', async () => {
    const f = Tensor.from([1.5, -2, 3.25], [3]);
    const i = Tensor.from(Int32Array.of(7, -8, 9, 10, 11), [5]);
    const base = Tensor.from(Float32Array.from({ length: 128 }, (_, k) => k), [128]);
    const view = base.viewAt(256, [5]);
    const empty = Tensor.empty([0]);
    const submits = stats().submits;
    const [a, b, c, d] = await Tensor.readAll([f, i, view, empty]);
    expect(stats().submits).toBe(submits + 1);
    expect(a).toBeInstanceOf(Float32Array);
    expect(Array.from(a)).toEqual([1.5, -2, 3.25]);
    expect(b).toBeInstanceOf(Int32Array);
    expect(Array.from(b)).toEqual([7, -8, 9, 10, 11]);
    expect(Array.from(c)).toEqual([64, 65, 66, 67, 68]);
    expect(d.length).toBe(0);
    for (const t of [f, i, base, view, empty]) t.release();
    await expect(Tensor.readAll([f])).rejects.toThrow(/readAll/);
  });
});

describe('scopes and views', () => {
  it('tidy releases intermediates and keeps returned tensors (also inside arrays, objects, Maps)', async () => {
    const live0 = stats().liveBytes;
    let inner: Tensor[] = [];
    const out = tidy(() => {
      const a = Tensor.from([1, 2], [2]);
      const b = F.exp(a);
      const c = F.add(a, b);
      inner = [a, b];
      return { c, list: [F.neg(c)], map: new Map([['m', F.scale(c, 2)]]) };
    });
    expect(inner.every((t) => t.released)).toBe(true);
    expect(out.c.released).toBe(false);
    expect(out.list[0].released).toBe(false);
    expect(out.map.get('m')!.released).toBe(false);
    expectClose(await out.c.toArray(), [1 + Math.E, 2 + Math.E ** 2], 1e-6, 'tidy result');
    for (const t of [out.c, out.list[0], out.map.get('m')!]) t.release();
    expect(stats().liveBytes).toBe(live0);
  });

  it('tidy releases everything when the function throws; nested scopes hand results outwards', () => {
    const live0 = stats().liveBytes;
    expect(() =>
      tidy(() => {
        F.exp(Tensor.from([1], [1]));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(stats().liveBytes).toBe(live0);
    let fromInner: Tensor | null = null;
    tidy(() => {
      fromInner = tidy(() => F.exp(Tensor.from([1], [1])));
      expect(fromInner.released).toBe(false); // moved to the outer scope
    });
    expect(fromInner!.released).toBe(true); // released when the outer scope closed
    expect(stats().liveBytes).toBe(live0);
  });

  it('keep() survives every open scope; beginScope / endScope with survivors', async () => {
    let kept: Tensor | null = null;
    tidy(() => {
      tidy(() => {
        kept = keep(Tensor.from([3, 4], [2]));
      });
    });
    expect(kept!.released).toBe(false);
    expect(Array.from(await kept!.toArray())).toEqual([3, 4]);
    kept!.release();
    beginScope();
    const a = Tensor.from([1], [1]);
    const b = Tensor.from([2], [1]);
    endScope([b]);
    expect(a.released).toBe(true);
    expect(b.released).toBe(false);
    b.release();
  });

  it('views share storage; releasing one view keeps the others alive until the last goes', async () => {
    const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = x.view([3, 2]);
    const w = F.reshape(x, [6]);
    expect(v.pooled).toBe(x.pooled);
    expect(w.pooled).toBe(x.pooled);
    const pooled0 = stats().pooledBytes;
    x.release();
    expect(x.released).toBe(true);
    expect(v.released).toBe(false);
    expect(stats().pooledBytes).toBe(pooled0); // storage still held by the views
    expect(Array.from(await v.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    // A write through one view is seen by the other.
    v.write([6, 5, 4, 3, 2, 1]);
    expect(Array.from(await w.toArray())).toEqual([6, 5, 4, 3, 2, 1]);
    v.release();
    expect(Array.from(await w.toArray())).toEqual([6, 5, 4, 3, 2, 1]);
    w.release();
    expect(stats().pooledBytes).toBe(pooled0 + sizeClass(24));
  });
});

describe('steady-state training', () => {
  it('a small MLP trained with manual SGD creates no GPU objects after the second step', async () => {
    const [B, I, H, O] = [16, 8, 12, 4];
    const lr = 0.1;
    const params = [
      Tensor.randn([I, H], 1, 0.3),
      Tensor.randn([H], 2, 0.1),
      Tensor.randn([H, O], 3, 0.3),
      Tensor.randn([O], 4, 0.1),
    ].map((t) => t.param());
    const batch = randArr([B, I], 100);
    const x = keep(Tensor.from(batch, [B, I]));
    const target = keep(Tensor.randn([B, O], 6));
    const losses: number[] = [];
    const perStep: { d: Record<string, number>; live: number }[] = [];
    for (let step = 0; step < 6; step++) {
      const s0 = stats();
      // The batch is uploaded every step into the same input tensor (the same data, so the loss falls).
      x.write(batch);
      const { loss } = tidy(() => {
        const [w1, b1, w2, b2] = params;
        const h = F.matmul(x, w1, { bias: b1, activation: 'gelu' });
        const y = F.matmul(h, w2, { bias: b2 });
        const loss = F.mean(F.powScalar(F.sub(y, target), 2));
        backward(loss);
        // SGD in place: the update is computed by ops and copied back into the parameter's storage.
        noGrad(() => {
          for (const p of params) {
            const s = F.contiguousStrides(p.shape);
            F.stridedCopy(F.sub(p, F.mul(p.grad!, lr)), 0, s, p, 0, s, [...p.shape], 'sgd');
          }
        });
        return { loss };
      });
      losses.push(await loss.item());
      loss.release();
      for (const p of params) {
        p.grad!.release();
        p.grad = null;
      }
      const s1 = stats();
      const d: Record<string, number> = {};
      for (const k of ['allocations', 'pipelinesCreated', 'bindGroupsCreated', 'uniformBuffersCreated', 'submits'] as const) d[k] = s1[k] - s0[k];
      perStep.push({ d, live: s1.liveBytes });
    }
    for (let step = 2; step < perStep.length; step++) {
      const { d, live } = perStep[step];
      const what = `step ${step}: ${JSON.stringify(d)}`;
      expect(d.allocations, what).toBe(0);
      expect(d.pipelinesCreated, what).toBe(0);
      expect(d.bindGroupsCreated, what).toBe(0);
      expect(d.uniformBuffersCreated, what).toBe(0);
      expect(live, `${what}: no leak`).toBe(perStep[1].live);
    }
    // One submit for the loss read-back, at most one more to order the input write.
    for (const { d } of perStep) expect(d.submits).toBeLessThanOrEqual(2);
    expect(losses[5]).toBeLessThan(losses[0]);
    for (const t of [...params, x, target]) t.release();
  });
});

describe('errors from the GPU', () => {
  it('a WGSL compile error surfaces as a JS exception naming the kernel', async () => {
    const code = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let v: f32 = 1u;
  out[gid.x] = v;
}`;
    const t = Tensor.empty([64]);
    const p = device().pipeline('broken.wgsl', 'main', {}, code);
    expect(p.label).toContain('broken.wgsl');
    launch({ file: 'broken.wgsl', code, args: [t], workgroups: [1], context: 'broken test' });
    await expect(device().sync()).rejects.toThrow(/broken\.wgsl/);
    // The device is still usable afterwards.
    const y = tidy(() => F.add(Tensor.from([1, 2], [2]), 1));
    expect(Array.from(await y.toArray())).toEqual([2, 3]);
    t.release();
    y.release();
  });

  it('a dispatch with the wrong number of buffers names the op and the kernel', () => {
    const t = Tensor.empty([4]);
    expect(() => launch({ file: 'fill.wgsl', args: [t, t], params: [4, 0], workgroups: [1], context: 'fill test [4]' })).toThrow(
      /^fill test \[4\]: kernel fill\.wgsl:main takes 1 buffers, got 2/,
    );
    t.release();
  });
});

describe('random tensors', () => {
  it('Tensor.randn / rand are deterministic for a seed and differ across seeds', async () => {
    const [a, b, c] = [Tensor.randn([1000], 42), Tensor.randn([1000], 42), Tensor.randn([1000], 43)];
    const [va, vb, vc] = await Promise.all([a, b, c].map((t) => t.toArray()));
    expect(Array.from(vb)).toEqual(Array.from(va));
    expect(Array.from(vc)).not.toEqual(Array.from(va));
    // The generator is integer arithmetic plus Box–Muller: pinned values guard against silent changes.
    expect(Array.from(va.slice(0, 4))).toEqual([0.6362302303314209, 0.651442289352417, 0.8308019042015076, -1.9218767881393433]);
    const u1 = await Tensor.rand([500], 7, -2, 3).toArray();
    const u2 = await Tensor.rand([500], 7, -2, 3).toArray();
    expect(Array.from(u2)).toEqual(Array.from(u1));
    expect(Math.min(...u1)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u1)).toBeLessThan(3);
    for (const t of [a, b, c]) t.release();
  });

  it('randn has mean ≈ 0 and std ≈ the requested std', async () => {
    const v = await tidy(() => Tensor.randn([20000], 9, 2.5)).toArray();
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(std - 2.5)).toBeLessThan(0.05);
  });
});

// fill.wgsl: whole vec4s (main4, several per invocation on the cpu profile) or one value per invocation.
forEachKernelProfile((profile) => `fill, ${profile} kernel profile`, () => {
  it.each([[4100], [4099], [3], [262148], [0]])('%i values, f32 and i32 patterns, and nothing past the end', async (n) => {
    const [f, i] = tidy(() => [F.full([n], -2.5), F.full([n], 7, 'i32')]);
    expect(Array.from(await f.toArray())).toEqual(new Array(n).fill(-2.5));
    expect(Array.from(await i.toInt32Array())).toEqual(new Array(n).fill(7));
    // A view 256 bytes into a buffer of ones: the fill stops at the view's last value.
    const base = Tensor.from(new Float32Array(64 + n + 8).fill(1), [64 + n + 8]);
    const view = base.viewAt(256, [n]);
    F.fillInto(view, 0);
    const all = await base.toArray();
    expect(Array.from(all)).toEqual([...new Array(64).fill(1), ...new Array(n).fill(0), ...new Array(8).fill(1)]);
    for (const t of [f, i, view, base]) t.release();
  });
});

describe('grid folding', () => {
  it('every core kernel covers its work when 1-D grids fold into y (per-dimension limit lowered to 16)', async () => {
    const dev = device() as unknown as { limits: GPUSupportedLimits };
    const real = dev.limits;
    dev.limits = new Proxy(real, {
      get: (t, k) => (k === 'maxComputeWorkgroupsPerDimension' ? 16 : (t as unknown as Record<string | symbol, unknown>)[k]),
    });
    try {
      // Elementwise: 5000 elements = 20 workgroups of 256 → a 10×2 grid; a fill of 65 600 (16 400 vec4s) folds too.
      const sa = [50, 100];
      const sb = [100];
      const a = randArr(sa, 1);
      const b = randArr(sb, 2);
      const ta = Tensor.from(a, sa);
      const tb = Tensor.from(b, sb);
      const [add, wh, full] = tidy(() => [F.add(ta, tb), F.where(F.gt(ta, 0), ta, tb), F.full([65600], 3)]);
      expectClose(await add.toArray(), mapRef([sa, sb], [a, b], (u, v) => u + v).data, 1e-6, 'folded add');
      expectClose(await wh.toArray(), mapRef([sa, sb], [a, b], (u, v) => (u > 0 ? u : v)).data, 0, 'folded where');
      expect((await full.toArray()).every((v) => v === 3)).toBe(true);
      // One workgroup per output / row: 50 outputs → a 13×4 grid with 2 spare workgroups.
      const [s, m, sm] = tidy(() => [F.sum(ta, 1), F.max(ta, 1), F.softmax(ta, 1)]);
      expectClose(await s.toArray(), reduceRef(a, sa, [1], 'sum').data, 1e-5, 'folded sum');
      const mr = maxRef(a, sa, 1);
      expectClose(await m.values.toArray(), mr.values, 0, 'folded max');
      expect(Array.from(await m.indices.toInt32Array())).toEqual(Array.from(mr.indices));
      expectClose(await sm.toArray(), softmaxRef(a, sa, 1, false).data, 1e-5, 'folded softmax');
      // Copies and index ops, forward and backward (max backward, slice backward, scatter-add).
      const pm = permuteMap(sa, [1, 0]);
      const index = Int32Array.from({ length: 70 }, (_, i) => (i * 37) % 50);
      const im = indexSelectMap(sa, 0, index);
      const x = Tensor.from(a, sa).param();
      const w = randArr([numel(sa)], 3);
      const [p, g] = tidy(() => {
        const p = F.permute(x, [1, 0]);
        const g = F.indexSelect(x, 0, index);
        backward(F.add(F.add(F.sum(F.mul(F.reshape(p, [-1]), Tensor.from(gatherRef(w, pm.src), [numel(sa)]))), F.sum(g)), F.sum(F.max(x, 1).values)));
        return [p, g];
      });
      expectClose(await p.toArray(), gatherRef(a, pm.src), 0, 'folded permute');
      expectClose(await g.toArray(), gatherRef(a, im.src), 0, 'folded index_select');
      const ones = new Float64Array(im.src.length).fill(1);
      const want = scatterRef(ones, im.src, numel(sa)).map((v, i) => v + w[i] + (mr.indices[Math.floor(i / 100)] === i % 100 ? 1 : 0));
      expectClose(await x.grad!.toArray(), want, 1e-5, 'folded backward');
      for (const t of [ta, tb, add, wh, full, s, m.values, m.indices, sm, p, g, x.grad!, x]) t.release();
    } finally {
      dev.limits = real;
    }
  });
});

describe('source hashes (pipeline cache keys)', () => {
  it('FNV-1a of the text, the same for equal strings however built, and remembered', () => {
    // Reference values of 32-bit FNV-1a.
    expect(hash('')).toBe('811c9dc5');
    expect(hash('a')).toBe('e40c292c');
    expect(hash('foobar')).toBe('bf9cf968');
    const code = kernelSource('tile.wgsl');
    const copy = [...code].join('');
    expect(hash(copy)).toBe(hash(code));
    expect(hash(code + ' ')).not.toBe(hash(code));
  });
});
