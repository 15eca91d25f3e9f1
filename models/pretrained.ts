// Pretrained initialisation (spec §4.7): an ImageNet Pyramid ViG state dict loaded into a model's
// ViG trunk non-strictly, after the constructor's own init, as mmcv's `Pretrained` init_cfg does:
// stem, block, downsample weights and BN buffers load; the ViG `prediction.*` head is ignored;
// tensors whose shape differs (pos_embed and relative_pos at another input size) are skipped with a
// warning and keep their own init (pos_embed zeros, the rebuilt tables). Label stream and heads
// stay as built.
import type { Module, StateEntry } from './module.js';
import { VigTrunk } from './pyramid-vig.js';

export interface PretrainedResult {
  /** Model keys that were loaded. */
  loaded: string[];
  /** `key: checkpoint [shape] vs model [shape]` for every shape mismatch (left at its own init). */
  skipped: string[];
  /** Checkpoint keys not used: the ImageNet head and keys with no counterpart in the trunk. */
  ignored: string[];
}

/** The ViG trunk of a model (GKGNet's `backbone`, or the model itself for Pyramid ViG / ML-ViG). */
function trunkOf(model: Module): VigTrunk {
  if (model instanceof VigTrunk) return model;
  for (const [, child] of model.namedChildren()) if (child instanceof VigTrunk) return child;
  throw new Error(`loadPretrainedBackbone: ${model.constructor.name} has no Pyramid ViG trunk`);
}

/**
 * Load a Pyramid ViG state dict (keys `stem.*`, `pos_embed`, `backbone.<i>.*`, `prediction.*`; all
 * optionally under `module.`, or in mmcls layout under `backbone.` with `head.*`) into the trunk.
 */
export function loadPretrainedBackbone(model: Module, state: Map<string, StateEntry>): PretrainedResult {
  const trunk = trunkOf(model);
  const strip = (k: string) => (k.startsWith('module.') ? k.slice('module.'.length) : k);
  // mmcls layout: the trunk's own `stem` / `pos_embed` sit under `backbone.` (a raw ViG dict's
  // `backbone.<i>` blocks also start with `backbone.`, so decide on the stem and pos_embed).
  const mmcls = [...state.keys()].some((k) => /^backbone\.(stem\.|pos_embed$)/.test(strip(k)));
  const mapped = new Map<string, StateEntry>();
  const source = new Map<string, string>();
  const ignored: string[] = [];
  for (const [key, entry] of state) {
    let k = strip(key);
    if (mmcls) {
      if (!k.startsWith('backbone.')) {
        ignored.push(key);
        continue;
      }
      k = k.slice('backbone.'.length);
    }
    if (k.startsWith('prediction.')) ignored.push(key);
    else {
      mapped.set(k, entry);
      source.set(k, key);
    }
  }
  const res = trunk.loadStateDict(mapped, { strict: false });
  const unexpected = new Set(res.unexpected);
  ignored.push(...res.unexpected.map((k) => source.get(k)!));
  const mismatched = new Set(res.mismatched.map((m) => m.slice(0, m.indexOf(':'))));
  const prefix = trunk.path ? `${trunk.path}.` : '';
  const loaded = [...mapped.keys()].filter((k) => !unexpected.has(k) && !mismatched.has(k)).map((k) => prefix + k);
  if (loaded.length === 0) {
    throw new Error(`loadPretrainedBackbone: no tensor of the checkpoint matches the ${trunk.constructor.name} trunk (keys like ${[...state.keys()].slice(0, 3).join(', ')})`);
  }
  return { loaded, skipped: res.mismatched.map((m) => prefix + m), ignored };
}
