// `webvig info`: what the engine runs on — adapter, backend, features, the limits that shape the
// kernels, the buffer pool's counters, and what the adapter offers for reduced precision and tensor
// cores with and without the Dawn toggles that unlock them (engine/precision.ts). Also the device flags and the device description that
// other GPU commands share (bench prints deviceReport() at the top of its JSON).
// `--model NAME --size N --labels S` also builds that model and reports its parameter counts.
import { activationDtype, init } from '../../engine/context.js';
import type { Device, DeviceLimits, MemoryStats } from '../../engine/device.js';
import { precisionReport, type PrecisionReport, type PrecisionSupport } from '../../engine/precision.js';
import { defineCommand, UsageError, type FlagSpec } from '../args.js';
import { fixedSubgroupSize } from '../../kernels/subgroups.js';
import { buildModel, parameterCounts, MODEL_NAMES, modelNamesSummary } from '../../models/factory.js';
import { usePrecision, resetPrecision, mixedPrecisionProblem } from '../precision.js';

/** --adapter (alias --device) / --backend, for every command that opens the device; read --adapter with adapterOf. */
export const DEVICE_FLAGS = {
  adapter: { type: 'string', help: 'adapter name substring: vendor, architecture or device (env WEBVIG_ADAPTER)' },
  device: { type: 'string', help: 'alias of --adapter' },
  backend: { type: 'string', help: 'Dawn backend: vulkan, metal, d3d12, opengles (env WEBVIG_BACKEND)' },
} as const satisfies Record<string, FlagSpec>;

/** The adapter asked for by --adapter or its alias --device (both given: they must agree). */
export function adapterOf(flags: { adapter?: string; device?: string }, prog = 'webvig'): string | undefined {
  if (flags.adapter !== undefined && flags.device !== undefined && flags.adapter !== flags.device) {
    throw new UsageError(`${prog}: --adapter ${flags.adapter} and --device ${flags.device} disagree (--device is an alias of --adapter): give one`);
  }
  return flags.adapter ?? flags.device;
}

/** The limits that decide tile sizes, grid folding and the largest tensor. */
const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
] as const;

export interface DeviceReport {
  adapter: { vendor: string; architecture: string; device: string; description: string; subgroupMinSize?: number; subgroupMaxSize?: number };
  /** Where the GPU comes from, e.g. "dawn (node)". */
  backend: string;
  /** Dawn toggles the device was opened with (env WEBVIG_DAWN_TOGGLES); usually empty. */
  toggles: string[];
  features: string[];
  limits: Record<(typeof KEY_LIMITS)[number], number>;
  /** 'adapter': the device took the adapter's limits; 'default': only WebGPU's default limits (env WEBVIG_LIMITS). */
  limitsRequested: DeviceLimits;
  /** The kernel profile ('cpu': kernels shaped for software adapters) and, on it, the subgroup size the shuffle kernels use (null: they load per lane instead). */
  kernels: { profile: 'cpu' | 'gpu'; shuffleLanes: number | null };
}

export interface InfoReport extends DeviceReport {
  memory: MemoryStats;
  /** shader-f16, subgroups and subgroup matrices (tensor cores), without and with REDUCED_PRECISION_TOGGLES. */
  precision: PrecisionReport;
  /** What --precision mixed's convolution GEMMs run on here: subgroup-matrix tiles (checked against register tiles) or register tiles, and why. */
  mixedTiles: string;
  /** What --precision mixed stores activations as here: 'f16' (gpu kernels) or 'f32' (cpu kernels, or WEBVIG_F16_ACTIVATIONS=0). */
  mixedActivations: string;
  runtime: { node: string; platform: string; arch: string };
  model?: Record<string, unknown>;
}

export function deviceReport(dev: Device): DeviceReport {
  const i = dev.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const limits = {} as DeviceReport['limits'];
  for (const k of KEY_LIMITS) limits[k] = (dev.limits as unknown as Record<string, number>)[k];
  return {
    adapter: {
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      ...(i.subgroupMinSize ? { subgroupMinSize: i.subgroupMinSize, subgroupMaxSize: i.subgroupMaxSize } : {}),
    },
    backend: dev.origin,
    toggles: [...dev.toggles],
    features: [...dev.features].sort(),
    limits,
    limitsRequested: dev.limitsRequested,
    kernels: { profile: dev.kernelProfile, shuffleLanes: dev.kernelProfile === 'cpu' ? fixedSubgroupSize(dev) : null },
  };
}

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${Number(n.toFixed(2))} ${units[i]}`;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** One instance's precision support on one line, e.g. "shader-f16 yes, subgroups yes (8–8), subgroup-matrix no". */
function precisionLine(s: PrecisionSupport): string {
  if (s.error) return `not probed: ${s.error}`;
  const sizes = s.subgroupMinSize ? ` (${s.subgroupMinSize}–${s.subgroupMaxSize})` : '';
  const dev = s.device.ok ? '' : `; a device with them failed to open: ${s.device.error ?? '?'}`;
  return `shader-f16 ${yesNo(s.features['shader-f16'])}, subgroups ${yesNo(s.features.subgroups)}${sizes}, subgroup-matrix ${yesNo(s.features['chromium-experimental-subgroup-matrix'])}${dev}`;
}

function configsLine(s: PrecisionSupport): string {
  return s.subgroupMatrixConfigs.map((c) => `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`).join(', ') || 'none';
}

function formatText(r: InfoReport): string {
  const a = r.adapter;
  const section = (title: string, rows: [string, string | number][]) => {
    const w = Math.max(...rows.map(([k]) => k.length));
    return `${title}\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`;
  };
  const software = /software|cpu|llvmpipe|swiftshader/i.test(`${a.architecture} ${a.device}`);
  const out = [
    section('adapter', [
      ['vendor', a.vendor || '?'],
      ['architecture', a.architecture || '?'],
      ['device', `${a.device || '?'}${software ? ' (a CPU implementation: expect 2–25 GFLOP/s)' : ''}`],
      ['description', a.description || '?'],
      ...(a.subgroupMinSize ? [['subgroup size', `${a.subgroupMinSize}–${a.subgroupMaxSize}`] as [string, string]] : []),
      ['kernels', r.kernels.profile === 'cpu' ? `cpu-shaped${r.kernels.shuffleLanes ? `, values shared by subgroup shuffles of ${r.kernels.shuffleLanes} lanes` : ', no fixed subgroup size: values loaded per lane'}` : 'gpu-shaped'],
      ['backend', r.backend],
      ['runtime', `node ${r.runtime.node} ${r.runtime.platform}-${r.runtime.arch}`],
    ]),
    `features\n  ${r.features.join(', ') || 'none'}\n`,
    section(
      r.limitsRequested === 'default' ? "limits (WebGPU's defaults, not the adapter's)" : 'limits',
      Object.entries(r.limits).map(([k, v]) => [k, /(Size|Alignment)$/.test(k) ? fmtBytes(v) : v]),
    ),
    section('precision (reduced precision, tensor cores)', [
      ['default instance', precisionLine(r.precision.default)],
      ['  matrix configs', configsLine(r.precision.default)],
      ['with toggles', precisionLine(r.precision.toggled)],
      ['  matrix configs', configsLine(r.precision.toggled)],
      ['toggles', r.precision.toggled.toggles.join(',')],
      ['f16 tensor cores', yesNo(r.precision.f16TensorCores)],
      ['mixed conv GEMMs', r.mixedTiles],
      ['mixed activations', r.mixedActivations],
      ['enable with', r.precision.enable],
      ...(r.toggles.length ? [['this device opened with', r.toggles.join(',')] as [string, string]] : []),
    ]),
    section('memory (buffer pool)', [
      ['live', fmtBytes(r.memory.liveBytes)],
      ['pooled', fmtBytes(r.memory.pooledBytes)],
      ['allocations', r.memory.allocations],
      ['submits', r.memory.submits],
      ['dispatches', r.memory.dispatches],
      ['pipelines', r.memory.pipelinesCreated],
      ['bind groups', r.memory.bindGroupsCreated],
      ['uniform buffers', r.memory.uniformBuffersCreated],
    ]),
  ];
  if (r.model) out.push(section('model', Object.entries(r.model).map(([k, v]) => [k, String(v)])));
  return out.join('\n');
}

/**
 * What --precision mixed would run the convolutions' GEMMs on (a small convolution is checked where
 * subgroup matrices are offered) and store activations as.
 */
async function mixedSetup(dev: Device): Promise<{ mixedTiles: string; mixedActivations: string }> {
  if (mixedPrecisionProblem(dev.features, dev.describe())) return { mixedTiles: 'none: no shader-f16', mixedActivations: 'none: no shader-f16' };
  try {
    const mixedTiles = await usePrecision('mixed', dev, 'webvig info');
    const f32Why = dev.kernelProfile === 'cpu' ? 'cpu kernels; WEBVIG_F16_ACTIVATIONS=1 for f16' : 'WEBVIG_F16_ACTIVATIONS=0';
    return { mixedTiles, mixedActivations: activationDtype() === 'f16' ? 'f16' : `f32 (${f32Why})` };
  } finally {
    resetPrecision();
  }
}

export const command = defineCommand({
  name: 'info',
  summary: 'Print the WebGPU adapter, backend, features, key limits, reduced-precision / tensor-core support and buffer-pool statistics.',
  flags: {
    json: { type: 'boolean', help: 'print one JSON object instead of text' },
    model: { type: 'string', choices: MODEL_NAMES, choicesSummary: { placeholder: 'name', text: modelNamesSummary() }, help: 'also build this model and report its parameter counts' },
    size: { type: 'number', integer: true, min: 32, default: 224, help: 'input side for --model' },
    labels: { type: 'number', integer: true, min: 1, default: 80, help: 'labels (classes) for --model; ViG ImageNet head: 1000' },
    ...DEVICE_FLAGS,
  },
  async run({ flags }, io) {
    const adapter = adapterOf(flags, 'webvig info');
    const dev = await init({ adapter, backend: flags.backend });
    const report: InfoReport = {
      ...deviceReport(dev),
      memory: dev.memoryStats(),
      precision: await precisionReport({ adapter, backend: flags.backend }),
      ...(await mixedSetup(dev)),
      runtime: { node: process.version, platform: process.platform, arch: process.arch },
    };
    if (flags.model) {
      const m = buildModel(flags.model, { size: flags.size, numLabels: flags.labels });
      const c = parameterCounts(m);
      report.model = { name: flags.model, size: flags.size, labels: flags.labels, trainable_params: c.trainable, frozen_relative_pos: c.frozen };
      m.release();
    }
    io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatText(report));
  },
});
