// The subgroup size the CPU-adapter kernels that share values by shuffles may rely on.
import { device } from '../engine/context.js';
import type { Device } from '../engine/device.js';

/**
 * The adapter's subgroup size when it is fixed (min = max) and small enough for that many rows of
 * accumulators per lane (4 to 16); null when the adapter has no subgroups or a range of sizes.
 * Kernels that use it run workgroups of whole subgroups with every lane active.
 */
export function fixedSubgroupSize(dev: Device = device()): number | null {
  if (!dev.features.has('subgroups')) return null;
  const i = dev.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const sg = i.subgroupMinSize;
  return sg && sg === i.subgroupMaxSize && sg >= 4 && sg <= 16 ? sg : null;
}
