// Names of the region-based models (IA-GCN, GM-MLIC; models/regions.ts): <family>[-<trunk>][-grid|-boxes].
// A file without imports, so the model factory can list them without an import cycle.
export const REGION_FAMILIES = ['ia-gcn', 'gm-mlic'] as const;
export type RegionFamily = (typeof REGION_FAMILIES)[number];
/** Trunks by name: '' is the tiny ViG trunk (gkgnet-tiny's widths, no label stream) for CPU runs. */
export const REGION_TRUNKS = ['', 'gkgnet-tiny', 'vig-ti', 'vig-s', 'vig-m', 'vig-b', 'gkgnet-t', 'gkgnet-s', 'gkgnet-b'] as const;
export type RegionTrunkName = (typeof REGION_TRUNKS)[number];
export const INSTANCE_SOURCES = ['cells', 'grid', 'boxes'] as const;
export type InstanceSourceKind = (typeof INSTANCE_SOURCES)[number];

/** Every region model name: <family>[-<trunk>][-grid|-boxes]. */
export const REGION_MODEL_NAMES: string[] = REGION_FAMILIES.flatMap((f) =>
  REGION_TRUNKS.flatMap((t) => ['', '-grid', '-boxes'].map((s) => `${f}${t ? `-${t}` : ''}${s}`)),
);

export interface RegionModelSpec {
  family: RegionFamily;
  trunk: RegionTrunkName;
  source: InstanceSourceKind;
}

export function parseRegionModel(name: string): RegionModelSpec | undefined {
  const m = /^(ia-gcn|gm-mlic)(?:-((?:gkgnet|vig)-[a-z]+))?(?:-(grid|boxes))?$/.exec(name);
  if (!m || !(REGION_TRUNKS as readonly string[]).includes(m[2] ?? '')) return undefined;
  return { family: m[1] as RegionFamily, trunk: (m[2] ?? '') as RegionTrunkName, source: (m[3] ?? 'cells') as InstanceSourceKind };
}

/** The base model whose trunk a region model uses (for input-size checks): '' → gkgnet-tiny. */
export function regionTrunkBase(name: string): string | undefined {
  const s = parseRegionModel(name);
  return s ? s.trunk || 'gkgnet-tiny' : undefined;
}

export function isTinyTrunk(t: RegionTrunkName): boolean {
  return t === '' || t.endsWith('-tiny');
}

