// Where the GPU comes from. This is the only module that knows about Dawn: in a page, `navigator.gpu`
// is used; in Node, the `webgpu` package's Dawn instance. Nothing else imports `webgpu`.
//
// Dawn lifetime: the object returned by `create()` owns the Dawn instance. If it becomes unreachable
// while a device made from it is alive, V8 may collect it and the process dies later inside Dawn
// (SIGSEGV in CallbackTaskManager::Flush). `pinned` keeps every instance alive for the whole process.

export interface GpuSource {
  gpu: GPU;
  /** Human-readable origin, e.g. "dawn (node)" or "navigator.gpu". */
  origin: string;
}

const pinned: unknown[] = [];

function envVar(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}

/** Resolve a GPU: `navigator.gpu` when present (browser), else Dawn through the `webgpu` package. */
export async function resolveGpu(options: { backend?: string; dawnFlags?: string[] } = {}): Promise<GpuSource> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, origin: 'navigator.gpu' };
  const backend = options.backend ?? envVar('WEBVIG_BACKEND');
  // Dawn rounds timestamp queries down to 65.5 µs by default (a browser anti-fingerprinting
  // measure), too coarse to time one kernel (engine/timing.ts).
  const flags = ['disable-dawn-features=timestamp_quantization', ...(options.dawnFlags ?? [])];
  if (backend) flags.push(`backend=${backend}`);
  // The module name is built at run time so that browser bundlers do not try to resolve it.
  const moduleName = 'webgpu';
  const dawn = (await import(/* @vite-ignore */ moduleName)) as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  for (const [k, v] of Object.entries(dawn.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const gpu = dawn.create(flags);
  pinned.push(gpu, dawn);
  return { gpu, origin: `dawn (node)${backend ? ` backend=${backend}` : ''}` };
}

export { envVar };
