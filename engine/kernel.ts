// A kernel is a WGSL file plus an entry point. Its bind-group layout is read from the WGSL itself
// (wgsl_reflect), so launchers only list their tensors in binding order and a params struct.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

// Kernel sources are bundled at build time, never read from files: kernels/sources.ts (generated
// by scripts/kernel-sources.mjs from kernels/*.wgsl, includes resolved) registers them here when
// the kernel layer is imported. The engine itself knows no kernel and touches no file system.
const registered = new Map<string, string>();
let sourceProvider: ((file: string) => string) | null = null;

/** Register kernel sources by file name (kernels/sources.ts does it for the shipped kernels). */
export function registerKernelSources(files: Readonly<Record<string, string>>): void {
  for (const [name, code] of Object.entries(files)) registered.set(name, code);
}

/** A fallback for files not registered, e.g. a map filled by fetch in a page. */
export function setKernelSourceProvider(provider: (file: string) => string): void {
  sourceProvider = provider;
}

const sources = new Map<string, string>();

function readSource(file: string): string {
  const code = registered.get(file);
  if (code !== undefined) return code;
  if (sourceProvider) return sourceProvider(file);
  throw new Error(`no source for kernel file ${file}: import the kernel layer ('webvig' / kernels/index.js), which registers kernels/sources.ts, or call registerKernelSources()`);
}

/**
 * A kernel file's WGSL, with `//!include other.wgsl` lines replaced by that file (WGSL has no
 * includes) and `{{NAME}}` placeholders filled from `template` (small templates, e.g. tile sizes).
 * One cache holds every variant, keyed by file and template values.
 */
export function kernelSource(file: string, template?: Record<string, number>): string {
  const key = template ? `${file}?${Object.entries(template).map(([k, v]) => `${k}=${v}`).join('&')}` : file;
  let src = sources.get(key);
  if (src !== undefined) return src;
  if (template) {
    src = kernelSource(file).replace(/\{\{(\w+)\}\}/g, (m, name: string) => {
      if (!(name in template)) throw new Error(`kernel ${file}: template value {{${name}}} not given`);
      return String(template[name]);
    });
  } else {
    src = readSource(file).replace(/^\/\/!include (\S+)$/gm, (_, name: string) => kernelSource(name));
  }
  sources.set(key, src);
  return src;
}

const composed = new Map<string, string>();

/**
 * A kernel source a launcher composes (preludes, `enable` directives, templated files), built once
 * per `key`, so that a launch builds no string. The key must name everything `build` depends on.
 */
export function composedSource(key: string, build: () => string): string {
  let src = composed.get(key);
  if (src === undefined) {
    src = build();
    composed.set(key, src);
  }
  return src;
}

/**
 * `code` with `alias NAME_t = f32;` (or f16) for each entry of `types`: the element type of a
 * kernel's float array `NAME`, declared `array<NAME_t>` (or `array<vec4<NAME_t>>`) and read through
 * f32(…). A storage array's `*_t` that `types` does not name (a binding this launch leaves to a
 * placeholder) is f32; with f32 everywhere the kernel is the plain f32 one. The device checks each
 * bound tensor against the resolved types. The aliases go after the last `enable` directive
 * (directives precede every declaration), and `enable f16;` is added when needed.
 */
export function withStorageTypes(code: string, types: Readonly<Record<string, string>>): string {
  let key = '';
  for (const name in types) key += `${name}=${types[name]},`;
  return composedSource(`storage:${hash(code)}:${key}`, () => {
    const named = new Map(Object.entries(types).map(([name, t]) => [`${name}_t`, t]));
    const declared = aliasesIn(code);
    for (const { element } of storageArrays(code)) {
      for (const [alias] of element.matchAll(/\b\w+_t\b/g)) {
        if (!named.has(alias) && !declared.has(alias)) named.set(alias, 'f32');
      }
    }
    let aliases = '';
    for (const [alias, t] of named) aliases += `alias ${alias} = ${t};\n`;
    let at = 0;
    for (const m of code.matchAll(/^enable [^;]*;[^\n]*\n/gm)) at = m.index + m[0].length;
    const enable = key.includes('=f16,') && !/^enable f16;/m.test(code) ? 'enable f16;\n' : '';
    return enable + code.slice(0, at) + aliases + code.slice(at);
  });
}

export type BindingKind = 'uniform' | 'storage' | 'read-only-storage';

export interface BindingInfo {
  binding: number;
  name: string;
  kind: BindingKind;
  /** What a storage binding's array holds, aliases resolved: f16 or f32 values (scalars or vectors), or other (integers, atomics, structs; uniforms). */
  element: 'f32' | 'f16' | 'other';
}

export interface KernelInfo {
  file: string;
  entry: string;
  code: string;
  bindings: BindingInfo[];
}

const reflected = new Map<string, KernelInfo>();

/** Reflect a kernel's group-0 bindings (cached per file + entry point + template parameters). */
export function reflectKernel(file: string, entry: string, code = kernelSource(file)): KernelInfo {
  const key = `${file}#${entry}#${code.length}#${hash(code)}`;
  let info = reflected.get(key);
  if (info) return info;
  let r: WgslReflect;
  try {
    r = new WgslReflect(code);
  } catch (e) {
    throw new Error(`WGSL parse error in kernel ${file}: ${(e as Error).message}`);
  }
  const fn = r.entry.compute.find((f) => f.name === entry);
  if (!fn) throw new Error(`kernel ${file} has no @compute entry point '${entry}'`);
  const elements = arrayElements(code);
  const bindings: BindingInfo[] = fn.resources
    .filter((v) => v.group === 0)
    .map((v) => ({
      binding: v.binding,
      name: v.name,
      kind: v.resourceType === 0 ? 'uniform' : v.access === 'read' ? 'read-only-storage' : 'storage',
      element: elements.get(v.name) ?? 'other',
    }));
  bindings.sort((a, b) => a.binding - b.binding);
  info = { file, entry, code, bindings };
  reflected.set(key, info);
  return info;
}

/**
 * The element kind of every storage array `code` declares (`var<storage…> NAME: array<T>;`), with
 * `alias` declarations resolved: what the device checks each bound tensor's dtype against, so that
 * no kernel reads f16 halves as f32 words or the reverse.
 */
function arrayElements(code: string): Map<string, 'f32' | 'f16' | 'other'> {
  const aliases = aliasesIn(code);
  const out = new Map<string, 'f32' | 'f16' | 'other'>();
  for (const { name, element } of storageArrays(code)) {
    let type = element;
    for (let pass = 0; pass < 4 && /\w/.test(type); pass++) type = type.replace(/\w+/g, (w) => aliases.get(w) ?? w);
    out.set(name, /\bf16\b|\bvec[234]h\b/.test(type) ? 'f16' : /\bf32\b|\bvec[234]f\b/.test(type) ? 'f32' : 'other');
  }
  return out;
}

/** `alias NAME = TYPE;` declarations of `code`, by name. */
function aliasesIn(code: string): Map<string, string> {
  return new Map([...code.matchAll(/\balias\s+(\w+)\s*=\s*([^;]+);/g)].map((m) => [m[1], m[2].trim()]));
}

/** The storage arrays `code` declares (`var<storage…> NAME: array<ELEMENT>;`). */
function storageArrays(code: string): { name: string; element: string }[] {
  return [...code.matchAll(/var<storage[^>]*>\s*(\w+)\s*:\s*array<(.+?)>\s*;/g)].map((m) => ({ name: m[1], element: m[2] }));
}

/** FNV-1a, for cache keys of generated sources. */
export function hash(s: string): string {
  let h = hashes.get(s);
  if (h === undefined) {
    h = fnv1a(s);
    // Launchers pass the same (cached) source string each time; a map hit costs what comparing
    // the string to itself does, while FNV walks all of its characters.
    if (hashes.size >= MAX_HASHES) hashes.clear();
    hashes.set(s, h);
  }
  return h;
}

const hashes = new Map<string, string>();
/** A bound on the memo: sources are a few hundred kinds; more means generated one-offs. */
const MAX_HASHES = 4096;

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}
