// What an adapter offers for reduced precision and tensor cores, with and without the Dawn toggles
// that unlock them (REDUCED_PRECISION_TOGGLES): shader-f16, subgroups (sizes), subgroup matrices
// (chromium-experimental-subgroup-matrix, with the component/result types and M×N×K shapes of each
// config). Each probe opens its own Dawn instance, so the toggles of one never leak into the other
// or into the engine's device. `webvig info` prints this; f16 / tensor-core kernels can gate on it.
import { gpuWithToggles, selectAdapter, REDUCED_PRECISION_TOGGLES, type DeviceOptions } from './device.js';

/** The features that decide reduced precision and tensor-core paths, by their WebGPU names. */
export const PRECISION_FEATURES = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as const;
export type PrecisionFeature = (typeof PRECISION_FEATURES)[number];

/** One subgroup-matrix shape: A and B hold `componentType`, the accumulator `resultComponentType`. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface PrecisionSupport {
  /** Dawn toggles this instance was created with. */
  toggles: string[];
  /** The adapter probed ("vendor architecture device"), null when none was found. */
  adapter: string | null;
  /** Whether the adapter offers each feature. */
  features: Record<PrecisionFeature, boolean>;
  subgroupMinSize: number | null;
  subgroupMaxSize: number | null;
  /** Empty unless chromium-experimental-subgroup-matrix is offered. */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
  /** A device requested with the offered precision features: whether it opened, and what it got. */
  device: { ok: boolean; features: string[]; error?: string };
  /** Why the probe found no adapter or failed. */
  error?: string;
}

export interface PrecisionReport {
  default: PrecisionSupport;
  /** The same adapter from an instance created with REDUCED_PRECISION_TOGGLES. */
  toggled: PrecisionSupport;
  /** A subgroup-matrix config with f16 operands, in either instance: f16 tensor cores are reachable. */
  f16TensorCores: boolean;
  /** How to open the engine's device with the toggles (env; DeviceOptions.toggles from code). */
  enable: string;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);

/** The adapter's subgroup-matrix shapes (empty without chromium-experimental-subgroup-matrix). */
export function subgroupMatrixConfigs(info: GPUAdapterInfo): SubgroupMatrixConfig[] {
  const raw = (info as GPUAdapterInfo & { subgroupMatrixConfigs?: unknown }).subgroupMatrixConfigs;
  if (!raw || typeof (raw as Iterable<unknown>)[Symbol.iterator] !== 'function') return [];
  return [...(raw as Iterable<Record<string, unknown>>)].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

const noFeatures = (): Record<PrecisionFeature, boolean> =>
  Object.fromEntries(PRECISION_FEATURES.map((f) => [f, false])) as Record<PrecisionFeature, boolean>;

/** Probe one instance created with `toggles`; never throws (a failure is reported in `error`). */
export async function probePrecision(
  toggles: readonly string[] = [],
  options: Pick<DeviceOptions, 'adapter' | 'backend' | 'powerPreference'> = {},
): Promise<PrecisionSupport> {
  const out: PrecisionSupport = {
    toggles: [...toggles],
    adapter: null,
    features: noFeatures(),
    subgroupMinSize: null,
    subgroupMaxSize: null,
    subgroupMatrixConfigs: [],
    device: { ok: false, features: [] },
  };
  try {
    const src = await gpuWithToggles(toggles, options.backend);
    const adapter = await selectAdapter(src.gpu, options);
    const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    out.adapter = `${info.vendor} ${info.architecture} ${info.device}`.replace(/\s+/g, ' ').trim() || info.description || '?';
    for (const f of PRECISION_FEATURES) out.features[f] = adapter.features.has(f);
    out.subgroupMinSize = num(info.subgroupMinSize);
    out.subgroupMaxSize = num(info.subgroupMaxSize);
    out.subgroupMatrixConfigs = subgroupMatrixConfigs(info);
    const requiredFeatures = PRECISION_FEATURES.filter((f) => out.features[f]) as GPUFeatureName[];
    try {
      const device = await adapter.requestDevice({ requiredFeatures });
      out.device = { ok: true, features: PRECISION_FEATURES.filter((f) => device.features.has(f)) };
      device.destroy();
    } catch (e) {
      out.device = { ok: false, features: [], error: (e as Error).message ?? String(e) };
    }
  } catch (e) {
    out.error = (e as Error).message ?? String(e);
  }
  return out;
}

/** The adapter's reduced-precision support from a default instance and from one with REDUCED_PRECISION_TOGGLES. */
export async function precisionReport(options: Pick<DeviceOptions, 'adapter' | 'backend' | 'powerPreference'> = {}): Promise<PrecisionReport> {
  const plain = await probePrecision([], options);
  const toggled = await probePrecision(REDUCED_PRECISION_TOGGLES, options);
  const f16 = (s: PrecisionSupport) => s.subgroupMatrixConfigs.some((c) => c.componentType === 'f16');
  return {
    default: plain,
    toggled,
    f16TensorCores: f16(plain) || f16(toggled),
    enable: `WEBVIG_DAWN_TOGGLES=${REDUCED_PRECISION_TOGGLES.join(',')}`,
  };
}
