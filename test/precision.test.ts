// Reduced precision and tensor cores: `info --json`'s `precision` section (engine/precision.ts), a
// device opened with Dawn toggles (DeviceOptions.toggles / WEBVIG_DAWN_TOGGLES) that runs an f16
// kernel, toggle-name checking, and a probe that reports a failure instead of throwing.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, device, Device, REDUCED_PRECISION_TOGGLES, probePrecision, type PrecisionSupport } from '../kernels/index.js';
import { togglesOf } from '../engine/device.js';
import { main } from '../train/cli.js';
import { usePrecision, resetPrecision } from '../train/precision.js';
import { activationDtype, operandPrecision } from '../engine/context.js';

beforeAll(async () => {
  await init();
});

/** Mesa lavapipe (this project's CPU machine) offers shader-f16 and subgroups (size 8) natively. */
const lavapipe = () => /llvmpipe|lavapipe/i.test(`${device().adapterInfo.device} ${device().adapterInfo.description}`);

async function infoJson(): Promise<Record<string, any>> {
  const out = { stdout: '', stderr: '' };
  const io = { stdout: (s: string) => void (out.stdout += s), stderr: (s: string) => void (out.stderr += s) };
  expect(await main(['info', '--json'], io)).toBe(0);
  expect(out.stderr).toBe('');
  return JSON.parse(out.stdout);
}

function expectSupportShape(s: PrecisionSupport, toggles: readonly string[]): void {
  expect(s.error).toBeUndefined();
  expect(s.toggles).toEqual([...toggles]);
  expect(typeof s.adapter).toBe('string');
  expect(Object.keys(s.features).sort()).toEqual(['chromium-experimental-subgroup-matrix', 'shader-f16', 'subgroups']);
  for (const v of Object.values(s.features)) expect(typeof v).toBe('boolean');
  for (const v of [s.subgroupMinSize, s.subgroupMaxSize]) expect(v === null || (Number.isInteger(v) && v > 0)).toBe(true);
  expect(Array.isArray(s.subgroupMatrixConfigs)).toBe(true);
  for (const c of s.subgroupMatrixConfigs) {
    expect(typeof c.componentType).toBe('string');
    expect(typeof c.resultComponentType).toBe('string');
    for (const d of [c.M, c.N, c.K]) expect(Number.isInteger(d) && d > 0).toBe(true);
  }
  // Configs are listed only when the feature is offered.
  if (!s.features['chromium-experimental-subgroup-matrix']) expect(s.subgroupMatrixConfigs).toEqual([]);
  expect(s.device.ok).toBe(true);
  // The device got every precision feature the adapter offered.
  expect(s.device.features.sort()).toEqual(Object.entries(s.features).filter(([, v]) => v).map(([k]) => k).sort());
}

describe('info: precision section', () => {
  it('reports shader-f16, subgroups and subgroup matrices without and with the toggles', async () => {
    const r = await infoJson();
    // The fields other scripts read are still there.
    for (const k of ['adapter', 'backend', 'features', 'limits', 'memory', 'runtime']) expect(r).toHaveProperty(k);
    expect(r.toggles).toEqual([]);
    const p = r.precision;
    expectSupportShape(p.default, []);
    expectSupportShape(p.toggled, REDUCED_PRECISION_TOGGLES);
    expect(typeof p.f16TensorCores).toBe('boolean');
    expect(p.enable).toBe('WEBVIG_DAWN_TOGGLES=vulkan_enable_f16_on_nvidia,allow_unsafe_apis');
    // The toggles only add: whatever the default instance offers, the toggled one offers too.
    for (const [f, v] of Object.entries(p.default.features)) if (v) expect(p.toggled.features[f]).toBe(true);
    if (lavapipe()) {
      for (const s of [p.default, p.toggled]) {
        expect(s.features['shader-f16']).toBe(true);
        expect(s.features.subgroups).toBe(true);
        expect(s.subgroupMinSize).toBe(8);
        expect(s.subgroupMaxSize).toBe(8);
      }
      expect(p.f16TensorCores).toBe(false);
    }
  });

  it('text output has the precision rows', async () => {
    let text = '';
    expect(await main(['info'], { stdout: (s) => void (text += s), stderr: () => {} })).toBe(0);
    expect(text).toMatch(/\nprecision \(reduced precision, tensor cores\)\n\s+default instance\s+shader-f16 (yes|no), subgroups (yes|no)/);
    expect(text).toMatch(/\n\s+with toggles\s+shader-f16/);
    expect(text).toMatch(/\n\s+toggles\s+vulkan_enable_f16_on_nvidia,allow_unsafe_apis\n/);
    expect(text).toMatch(/\n\s+f16 tensor cores\s+(yes|no)\n/);
    // lavapipe runs the cpu kernels, whose mixed runs keep f32 activations
    expect(text).toMatch(/\n\s+mixed activations\s+f32 \(cpu kernels; WEBVIG_F16_ACTIVATIONS=1 for f16\)\n/);
  });

  it('on the gpu kernels, mixed runs store f16 activations (info --json)', async () => {
    const dev = device();
    const saved = dev.kernelProfile;
    dev.kernelProfile = 'gpu';
    try {
      let out = '';
      expect(await main(['info', '--json'], { stdout: (s) => void (out += s), stderr: () => {} })).toBe(0);
      expect(JSON.parse(out).mixedActivations).toBe('f16');
    } finally {
      dev.kernelProfile = saved;
    }
  });

  it('WEBVIG_F16_ACTIVATIONS chooses the activations of a mixed run (1: f16 even on the cpu kernels); another value is refused, naming it', async () => {
    const dev = device();
    const saved = process.env.WEBVIG_F16_ACTIVATIONS;
    try {
      process.env.WEBVIG_F16_ACTIVATIONS = '1';
      await usePrecision('mixed', dev, 'webvig test');
      expect(activationDtype()).toBe('f16');
      resetPrecision();
      expect(activationDtype()).toBe('f32');
      process.env.WEBVIG_F16_ACTIVATIONS = 'yes';
      await expect(usePrecision('mixed', dev, 'webvig test')).rejects.toThrow(/^WEBVIG_F16_ACTIVATIONS=yes: expected 0 or 1$/);
      // refused before anything was switched
      expect(operandPrecision()).toBe('f32');
    } finally {
      resetPrecision();
      if (saved === undefined) delete process.env.WEBVIG_F16_ACTIVATIONS;
      else process.env.WEBVIG_F16_ACTIVATIONS = saved;
    }
  });

  it('a probe that cannot get an adapter reports why instead of throwing', async () => {
    const s = await probePrecision(REDUCED_PRECISION_TOGGLES, { adapter: 'no-such-adapter-xyz' });
    expect(s.error).toMatch(/no adapter matches/);
    expect(s.adapter).toBeNull();
    expect(Object.values(s.features).every((v) => v === false)).toBe(true);
    expect(s.device.ok).toBe(false);
  });
});

describe('a device opened with Dawn toggles', () => {
  it('requests shader-f16 (and subgroups) and runs an f16 kernel', async () => {
    const dev = await Device.create({ toggles: REDUCED_PRECISION_TOGGLES });
    try {
      expect(dev.toggles).toEqual(REDUCED_PRECISION_TOGGLES);
      for (const f of ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']) {
        expect(dev.features.has(f)).toBe(dev.adapter.features.has(f));
      }
      if (lavapipe()) expect(dev.features.has('shader-f16')).toBe(true);
      if (!dev.features.has('shader-f16')) return;
      // y = f32(f16(x) * 0.5h + 1h): exact in f16 for these inputs.
      const g = dev.device;
      const x = Float32Array.from([0, 1, -2, 3.5, 1024, -0.25, 7, 100]);
      const code = `enable f16;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(8) fn main(@builtin(global_invocation_id) id: vec3u) {
  let h = f16(x[id.x]) * 0.5h + 1.0h;
  y[id.x] = f32(h);
}`;
      g.pushErrorScope('validation');
      const pipeline = g.createComputePipeline({ layout: 'auto', compute: { module: g.createShaderModule({ code }), entryPoint: 'main' } });
      const xb = g.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      const yb = g.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const rb = g.createBuffer({ size: x.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      g.queue.writeBuffer(xb, 0, x);
      const enc = g.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, g.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: xb } }, { binding: 1, resource: { buffer: yb } }] }));
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(yb, 0, rb, 0, x.byteLength);
      g.queue.submit([enc.finish()]);
      expect(await g.popErrorScope()).toBeNull();
      await rb.mapAsync(GPUMapMode.READ);
      expect([...new Float32Array(rb.getMappedRange())]).toEqual([...x].map((v) => v * 0.5 + 1));
      rb.unmap();
    } finally {
      dev.destroy();
    }
  });

  it('toggles come from options, else env WEBVIG_DAWN_TOGGLES; names are checked', () => {
    const saved = process.env.WEBVIG_DAWN_TOGGLES;
    try {
      delete process.env.WEBVIG_DAWN_TOGGLES;
      expect(togglesOf()).toEqual([]);
      process.env.WEBVIG_DAWN_TOGGLES = ' vulkan_enable_f16_on_nvidia, allow_unsafe_apis,,allow_unsafe_apis ';
      expect(togglesOf()).toEqual(['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis']);
      expect(togglesOf({ toggles: [] })).toEqual([]);
      expect(togglesOf({ toggles: ['dump_shaders'] })).toEqual(['dump_shaders']);
      process.env.WEBVIG_DAWN_TOGGLES = 'allow_unsafe_apis,backend=null';
      expect(() => togglesOf()).toThrow(/Dawn toggle 'backend=null': expected a name like vulkan_enable_f16_on_nvidia/);
    } finally {
      if (saved === undefined) delete process.env.WEBVIG_DAWN_TOGGLES;
      else process.env.WEBVIG_DAWN_TOGGLES = saved;
    }
  });
});
