// The device: adapter choice, error reporting, pipeline / bind-group / uniform caches, the buffer
// pool and command batching. Dispatches accumulate in one open compute pass; they are submitted on
// read-back, on an explicit flush(), or before a CPU write into a buffer they still reference.
// After warm-up a training step reuses pooled buffers, cached pipelines, cached bind groups (keyed
// by the pooled buffers' ids, which repeat step after step) and cached uniform buffers (keyed by
// content), so it creates no GPU objects at all.
import { resolveGpu, envVar } from './gpu.js';
import { BufferPool, type PooledBuffer } from './pool.js';
import { reflectKernel, hash, type KernelInfo } from './kernel.js';
import { Profiler } from './profiler.js';
import { quietly } from './quiet-wait.js';

export interface DeviceOptions {
  /** Adapter name substring (vendor, architecture, device or description); env WEBVIG_ADAPTER. */
  adapter?: string;
  /** Dawn backend (vulkan, opengles, …); env WEBVIG_BACKEND. */
  backend?: string;
  powerPreference?: GPUPowerPreference;
  /**
   * Dawn toggles to enable on the instance, the adapter and the device (Node only; a page's
   * navigator.gpu takes none); env WEBVIG_DAWN_TOGGLES, comma-separated. REDUCED_PRECISION_TOGGLES
   * lets NVIDIA's Vulkan driver offer shader-f16 and exposes subgroup matrices (tensor cores).
   */
  toggles?: readonly string[];
  /**
   * 'adapter' (the default): the adapter's own limits wherever a kernel can use more than WebGPU's
   * defaults. 'default': WebGPU's default limits, which every WebGPU device offers (8 storage
   * buffers per shader stage, 128 MiB per binding, 256 MiB per buffer, …), e.g. to check a model
   * before porting it; the optional features are still taken where offered. Env WEBVIG_LIMITS.
   */
  limits?: DeviceLimits;
}

export type DeviceLimits = 'adapter' | 'default';

/** options.limits, else env WEBVIG_LIMITS, else 'adapter'; anything else is refused by name. */
export function limitsOf(options: Pick<DeviceOptions, 'limits'> = {}): DeviceLimits {
  const v = options.limits ?? (envVar('WEBVIG_LIMITS') || 'adapter');
  if (v !== 'adapter' && v !== 'default') {
    throw new Error(`${options.limits ? 'limits' : 'WEBVIG_LIMITS'}=${v}: expected 'adapter' (the adapter's limits) or 'default' (WebGPU's default limits)`);
  }
  return v;
}

/**
 * Toggles that unlock reduced precision and tensor cores where the driver has them:
 * `vulkan_enable_f16_on_nvidia` (Dawn withholds shader-f16 on NVIDIA's Vulkan driver without it) and
 * `allow_unsafe_apis` (guards chromium-experimental-subgroup-matrix). Adapters that offer these
 * natively (lavapipe: shader-f16, subgroups) or not at all are unaffected.
 */
export const REDUCED_PRECISION_TOGGLES: readonly string[] = ['vulkan_enable_f16_on_nvidia', 'allow_unsafe_apis'];

/** Features requested whenever the adapter offers them (subgroup matrices only appear with allow_unsafe_apis). */
const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16', 'chromium-experimental-subgroup-matrix'];

/** The toggles a device opens with: options.toggles, else env WEBVIG_DAWN_TOGGLES ("a,b"); names checked. */
export function togglesOf(options: Pick<DeviceOptions, 'toggles'> = {}): string[] {
  const list = options.toggles ?? (envVar('WEBVIG_DAWN_TOGGLES') ?? '').split(',');
  const names = [...new Set(list.map((t) => t.trim()).filter((t) => t !== ''))];
  for (const t of names) {
    if (!/^[a-z0-9_]+$/.test(t)) {
      throw new Error(`Dawn toggle '${t}': expected a name like ${REDUCED_PRECISION_TOGGLES[0]} (lower case, digits, underscores; comma-separated in WEBVIG_DAWN_TOGGLES)`);
    }
  }
  return names;
}

/** A Dawn instance (Node) or navigator.gpu, opened with `toggles` enabled. */
export function gpuWithToggles(toggles: readonly string[], backend?: string) {
  return resolveGpu({ backend, dawnFlags: toggles.length ? [`enable-dawn-features=${toggles.join(',')}`] : [] });
}

/**
 * The adapter Device.create uses: the high-performance one, else the low-power one; with an adapter
 * name (options.adapter or env WEBVIG_ADAPTER) the first whose description contains it.
 */
export async function selectAdapter(gpu: GPU, options: Pick<DeviceOptions, 'adapter' | 'powerPreference'> = {}): Promise<GPUAdapter> {
  const wanted = (options.adapter ?? envVar('WEBVIG_ADAPTER'))?.toLowerCase();
  const candidates: GPUAdapter[] = [];
  for (const powerPreference of [options.powerPreference ?? 'high-performance', 'low-power'] as const) {
    const a = await gpu.requestAdapter({ powerPreference });
    if (a) candidates.push(a);
  }
  const describe = (a: GPUAdapter) =>
    `${a.info.vendor} ${a.info.architecture} ${a.info.device} ${a.info.description}`.toLowerCase();
  let adapter = candidates[0];
  if (wanted) {
    adapter = candidates.find((a) => describe(a).includes(wanted)) as GPUAdapter;
    if (!adapter) {
      throw new Error(
        `WEBVIG_ADAPTER=${wanted}: no adapter matches; available: ${candidates.map(describe).join('; ') || 'none'}`,
      );
    }
  }
  if (!adapter) {
    throw new Error(
      'no WebGPU adapter found: install a Vulkan driver (on Debian: mesa-vulkan-drivers from bookworm-backports; `node scripts/setup.mjs` does it as root)',
    );
  }
  return adapter;
}

/** The optional features this adapter offers, in request order. */
export function optionalFeaturesOf(adapter: GPUAdapter): GPUFeatureName[] {
  return OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
}

export interface MemoryStats {
  liveBytes: number;
  pooledBytes: number;
  allocations: number;
  submits: number;
  dispatches: number;
  pipelinesCreated: number;
  bindGroupsCreated: number;
  uniformBuffersCreated: number;
  /** Bytes bound by dispatches (each storage binding's size, once per dispatch) plus 2× copied bytes. */
  boundBytes: number;
  /** Steps encoded by replaying a recording (engine/replay.ts). */
  replays: number;
}

/** Makes a CPU write's data again for a replayed step (engine/replay.ts); same byte length every time. */
export type WriteProducer = () => ArrayBufferView;

/**
 * Receives every command the device encodes while a step is being recorded (engine/replay.ts).
 * `abort` is called for what a recording cannot reproduce (a read-back, timed or profiled passes).
 */
export interface CommandSink {
  dispatch(pipeline: Pipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number, buffers: PooledBuffer[], bytes: number): void;
  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void;
  write(dst: PooledBuffer, dstOffset: number, data: Uint8Array, producer: WriteProducer | undefined): void;
  /** Host-side state the step updates (engine/replay.ts, perStep): run again at each replay. */
  effect(fn: () => void): void;
  abort(reason: string): void;
}

/** One command of a recorded step: a dispatch (pipeline set) or a buffer copy (pipeline null). */
export interface RecordedOp {
  pipeline: GPUComputePipeline | null;
  bindGroup: GPUBindGroup | null;
  x: number;
  y: number;
  z: number;
  src: GPUBuffer | null;
  srcOffset: number;
  dst: GPUBuffer | null;
  dstOffset: number;
  bytes: number;
}

export interface Pipeline {
  id: number;
  label: string;
  info: KernelInfo;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  storageCount: number;
}

/** A buffer range bound to a kernel: a tensor's storage, or a raw pooled buffer. */
export interface BufferArg {
  pooled: PooledBuffer;
  bytes: number;
  /** Where the argument starts in the buffer (a multiple of minStorageBufferOffsetAlignment); 0 when absent. */
  byteOffset?: number;
  /** For error messages: what the argument is ("x [2,3] f32"). */
  describe(): string;
  assertAlive(op: string): void;
  /** The bytes the kernel touches, where that is less than the binding (a span of slots it fills). */
  touched?: number;
  /** A tensor's dtype: checked against the kernel's array element type (raw ranges have none). */
  dtype?: string;
}

export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
const MAP_READ_USAGE = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */
const UNIFORM_USAGE = 0x40 /* UNIFORM */ | 0x08; /* COPY_DST */
const MAX_BIND_GROUPS = 65536;

export class Device {
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  readonly features: Set<string>;
  readonly adapterInfo: GPUAdapterInfo;
  readonly origin: string;
  /** Dawn toggles the instance, adapter and device were opened with (DeviceOptions.toggles). */
  readonly toggles: readonly string[];
  /**
   * Which kernel shapes suit this adapter: 'cpu' for CPU implementations of WebGPU (lavapipe,
   * SwiftShader: a workgroup runs on one CPU thread with invocations as SIMD lanes, workgroup memory
   * is reached by per-lane gathers and barriers are coroutine switches, so kernels with few
   * barriers, register tiles and several elements per invocation win), 'gpu' otherwise.
   * Env WEBVIG_KERNELS=cpu|gpu forces one (tests run both paths on any adapter).
   */
  kernelProfile: KernelProfile;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Buffers referenced by encoded but unsubmitted commands. */
  private pending = new Set<GPUBuffer>();
  private pendingLabels: string[] = [];
  private pipelines = new Map<string, Pipeline>();
  private bindGroups = new Map<string, GPUBindGroup>();
  private uniforms = new Map<string, { buffer: GPUBuffer; id: number }>();
  private errors: Promise<string | null>[] = [];
  private lostInfo: GPUDeviceLostInfo | null = null;
  private nextPipelineId = 1;
  /** Per-kernel GPU times, when enabled (enableProfiler(), or env WEBVIG_PROFILE=1 per kernel, =sites per kernel and call site). */
  profiler: Profiler | null = null;

  readonly stats = { submits: 0, dispatches: 0, pipelinesCreated: 0, bindGroupsCreated: 0, uniformBuffersCreated: 0, boundBytes: 0, replays: 0 };
  /** Set while a step is being recorded (engine/replay.ts). */
  recorder: CommandSink | null = null;

  private constructor(
    readonly gpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    origin: string,
    toggles: readonly string[] = [],
    readonly limitsRequested: DeviceLimits = 'adapter',
  ) {
    this.origin = origin;
    this.toggles = toggles;
    this.limits = device.limits;
    this.features = new Set([...device.features]);
    this.adapterInfo = adapter.info;
    this.kernelProfile = kernelProfileOf(adapter.info);
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    // Bind groups that name a destroyed buffer must never be reused.
    this.pool.onDestroy = (pb) => {
      for (const key of this.bindGroups.keys()) if (key.includes(`|${pb.id}:`)) this.bindGroups.delete(key);
    };
    device.lost.then((info) => {
      this.lostInfo = info;
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.errors.push(Promise.resolve(`uncaptured ${ev.error.constructor.name}: ${ev.error.message}`));
    };
  }

  static async create(options: DeviceOptions = {}): Promise<Device> {
    const toggles = togglesOf(options);
    const limits = limitsOf(options);
    const src = await gpuWithToggles(toggles, options.backend);
    const adapter = await selectAdapter(src.gpu, options);
    const l = adapter.limits;
    const descriptor = (requiredFeatures: GPUFeatureName[]): GPUDeviceDescriptor => ({
      requiredFeatures,
      requiredLimits: limits === 'default' ? {} : {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      },
    });
    const requiredFeatures = optionalFeaturesOf(adapter);
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice(descriptor(requiredFeatures));
    } catch (e) {
      // The experimental subgroup-matrix feature is offered only under allow_unsafe_apis and has
      // not been exercised on every driver: a device without it beats no device.
      const safe = requiredFeatures.filter((f) => !f.startsWith('chromium-experimental-'));
      if (safe.length === requiredFeatures.length) throw e;
      device = await adapter.requestDevice(descriptor(safe));
    }
    // A page's navigator.gpu takes no toggles: record only what was applied.
    const dev = new Device(src.gpu, adapter, device, src.origin, src.origin === 'navigator.gpu' ? [] : toggles, limits);
    const profile = envVar('WEBVIG_PROFILE');
    if (profile === '1' || profile === 'sites') dev.enableProfiler({ bySite: profile === 'sites' });
    return dev;
  }

  /**
   * Time every dispatch with timestamp queries (one pass each); see profiler.report(). Times are
   * summed per kernel, or with `bySite` per kernel and call site (the launch's context: layer, shape).
   */
  enableProfiler(options: { bySite?: boolean } = {}): Profiler {
    if (!this.features.has('timestamp-query')) throw new Error(`profiling needs the timestamp-query feature, which ${this.describe()} lacks`);
    const bySite = options.bySite ?? false;
    if (this.profiler?.bySite !== bySite) this.profiler = new Profiler(this.device, bySite, (p) => this.quietly(p));
    return this.profiler;
  }

  /** Stop timing dispatches (enableProfiler starts afresh). */
  disableProfiler(): void {
    this.flush();
    this.profiler = null;
  }

  describe(): string {
    const i = this.adapterInfo;
    const limits = this.limitsRequested === 'default' ? ", WebGPU's default limits" : '';
    return `${i.vendor || '?'} ${i.architecture || ''} ${i.device || i.description || ''} via ${this.origin}${limits}`.replace(/\s+/g, ' ');
  }

  private assertUsable(): void {
    if (this.lostInfo) throw new Error(`GPU device lost (${this.lostInfo.reason}): ${this.lostInfo.message}`);
  }

  // ---------------------------------------------------------------- pipelines

  /**
   * Get (or create once) the pipeline for a kernel with the given override constants. `bindingsFrom`:
   * WGSL with the same bindings as `code` to reflect them from, where wgsl_reflect cannot parse `code`.
   */
  pipeline(file: string, entry = 'main', constants: Record<string, number> = {}, code?: string, bindingsFrom?: string): Pipeline {
    const ckeys = Object.keys(constants).sort();
    const key = `${file}#${entry}#${code ? hash(code) : ''}#${ckeys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    this.assertUsable();
    const info = bindingsFrom && code ? { ...reflectKernel(file, entry, bindingsFrom), code } : reflectKernel(file, entry, code);
    const label = `${file}:${entry}${ckeys.length ? `{${ckeys.map((k) => `${k}=${constants[k]}`).join(',')}}` : ''}`;
    const storageCount = info.bindings.filter((b) => b.kind !== 'uniform').length;
    // Said here, by kernel: the device would only report an invalid layout later, at a dispatch.
    if (storageCount > this.limits.maxStorageBuffersPerShaderStage) {
      throw new Error(
        `kernel ${label} binds ${storageCount} storage buffers; this device allows ${this.limits.maxStorageBuffersPerShaderStage} per shader stage (maxStorageBuffersPerShaderStage)`,
      );
    }
    const layout = this.device.createBindGroupLayout({
      label,
      entries: info.bindings.map((b) => ({ binding: b.binding, visibility: 4 /* COMPUTE */, buffer: { type: b.kind } })),
    });
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: info.code, label });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants },
    });
    const scope = this.device.popErrorScope();
    this.errors.push(
      scope.then(async (err) => {
        if (!err) return null;
        const ci = await module.getCompilationInfo();
        const msgs = ci.messages.map((m) => `  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
        return `kernel ${label} failed to compile: ${err.message}${msgs ? `\n${msgs}` : ''}`;
      }),
    );
    const p: Pipeline = { id: this.nextPipelineId++, label, info, pipeline, layout, storageCount };
    this.pipelines.set(key, p);
    this.stats.pipelinesCreated++;
    return p;
  }

  // ---------------------------------------------------------------- dispatch

  /** A uniform buffer holding `data`, created once per distinct content. */
  private uniform(data: Uint32Array): { buffer: GPUBuffer; id: number } {
    const key = data.join(',');
    let u = this.uniforms.get(key);
    if (u) return u;
    const buffer = this.device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: UNIFORM_USAGE });
    this.device.queue.writeBuffer(buffer, 0, data as Uint32Array<ArrayBuffer>);
    u = { buffer, id: this.uniforms.size + 1 };
    this.uniforms.set(key, u);
    this.stats.uniformBuffersCreated++;
    return u;
  }

  /**
   * Encode one dispatch. `args` are the storage bindings in binding order; `params` fills the single
   * uniform binding, if the kernel has one. `context` names the op and shapes for error messages.
   */
  dispatch(p: Pipeline, args: BufferArg[], params: Uint32Array | null, workgroups: [number, number?, number?], context: string): void {
    this.assertUsable();
    const hasUniform = p.storageCount !== p.info.bindings.length;
    if (p.storageCount !== args.length) {
      throw new Error(`${context}: kernel ${p.label} takes ${p.storageCount} buffers, got ${args.length}`);
    }
    if (hasUniform && !params) throw new Error(`${context}: kernel ${p.label} needs params`);
    checkElements(p, args, context);
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    for (const a of args) {
      a.assertAlive(context);
      if (a.bytes > maxBinding) {
        throw new Error(`${context}: ${a.describe()} is ${a.bytes} bytes, over maxStorageBufferBindingSize ${maxBinding}`);
      }
    }
    const [x, y = 1, z = 1] = workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new Error(`${context}: kernel ${p.label} dispatch [${x},${y},${z}] exceeds ${maxWg} workgroups per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const ubuf = hasUniform ? this.uniform(params!) : null;
    let key = `${p.id}`;
    for (const a of args) key += a.byteOffset ? `|${a.pooled.id}:${bindSize(a.bytes)}@${a.byteOffset}` : `|${a.pooled.id}:${bindSize(a.bytes)}`;
    if (ubuf) key += `|u${ubuf.id}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      let ai = 0;
      bg = this.device.createBindGroup({
        layout: p.layout,
        entries: p.info.bindings.map((b) =>
          b.kind === 'uniform'
            ? { binding: b.binding, resource: { buffer: ubuf!.buffer } }
            : { binding: b.binding, resource: { buffer: args[ai].pooled.buffer, offset: args[ai].byteOffset ?? 0, size: bindSize(args[ai++].bytes) } },
        ),
      });
      // A bound on the cache: steady-state training reuses a fixed set, so hitting it means churn.
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, bg);
      this.stats.bindGroupsCreated++;
    }
    const pass = this.profiler ? this.profiledPass(this.profiler.bySite ? `${p.label} ← ${context}` : p.label) : this.computePass();
    pass.setPipeline(p.pipeline);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(x, y, z);
    let bytes = 0;
    for (const a of args) {
      this.pending.add(a.pooled.buffer);
      bytes += a.touched ?? bindSize(a.bytes);
    }
    if (this.recorder) this.recorder.dispatch(p, bg, x, y, z, args.map((a) => a.pooled), bytes);
    this.pendingLabels.push(context);
    this.stats.dispatches++;
    this.stats.boundBytes += bytes;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private profiledPass(label: string): GPUComputePassEncoder {
    this.recorder?.abort('the profiler is on');
    const timestampWrites = this.profiler!.next(label);
    this.pass = this.commandEncoder().beginComputePass(timestampWrites ? { timestampWrites } : {});
    return this.pass;
  }

  private commandEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Encode a buffer-to-buffer copy in queue order. */
  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void {
    this.assertUsable();
    this.commandEncoder().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
    this.pending.add(src.buffer);
    this.pending.add(dst.buffer);
    this.recorder?.copy(src, srcOffset, dst, dstOffset, bytes);
    this.stats.boundBytes += 2 * bytes;
  }

  /**
   * Encode a recorded step (engine/replay.ts) after everything encoded so far and submit it: one
   * compute pass per run of dispatches, a copy between runs. No cache is consulted and no GPU object
   * is created; `dispatches` and `boundBytes` are the recording's totals, for the statistics.
   */
  replay(ops: readonly RecordedOp[], dispatches: number, boundBytes: number): void {
    this.assertUsable();
    if (this.recorder) throw new Error('replay() while a step is being recorded');
    const enc = this.commandEncoder();
    let pass: GPUComputePassEncoder | null = null;
    let pipeline: GPUComputePipeline | null = null;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      if (op.pipeline !== null) {
        if (pass === null) {
          pass = enc.beginComputePass();
          pipeline = null;
        }
        if (op.pipeline !== pipeline) {
          pass.setPipeline(op.pipeline);
          pipeline = op.pipeline;
        }
        pass.setBindGroup(0, op.bindGroup!);
        pass.dispatchWorkgroups(op.x, op.y, op.z);
      } else {
        if (pass !== null) {
          pass.end();
          pass = null;
        }
        enc.copyBufferToBuffer(op.src!, op.srcOffset, op.dst!, op.dstOffset, op.bytes);
      }
    }
    if (pass !== null) pass.end();
    this.pendingLabels.push(`replayed step (${dispatches} dispatches)`);
    this.stats.dispatches += dispatches;
    this.stats.boundBytes += boundBytes;
    this.stats.replays++;
    this.flush();
  }

  /** Submit everything encoded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.assertUsable();
    const enc = this.commandEncoder();
    this.encoder = null;
    const labels = this.pendingLabels;
    this.pendingLabels = [];
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const afterSubmit = this.profiler?.resolve(enc);
    this.device.queue.submit([enc.finish()]);
    afterSubmit?.();
    const oom = this.device.popErrorScope();
    const val = this.device.popErrorScope();
    this.errors.push(
      Promise.all([oom, val]).then(([a, b]) => {
        const err = a ?? b;
        if (!err) return null;
        return `GPU error in a batch of ${labels.length} dispatches (${summarize(labels)}): ${err.message}`;
      }),
    );
    this.pending.clear();
    this.stats.submits++;
  }

  /** CPU → GPU write, ordered after every command that still reads or writes the buffer. */
  write(dst: PooledBuffer, data: ArrayBufferView, dstOffset = 0, producer?: WriteProducer): void {
    this.assertUsable();
    if (this.pending.has(dst.buffer)) this.flush();
    const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    // A write recorded without a producer replays the same bytes every step (a constant).
    this.recorder?.write(dst, dstOffset, bytes, producer);
    // writeBuffer wants a multiple of 4 bytes.
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(dst.buffer, dstOffset, padded);
    } else {
      this.device.queue.writeBuffer(dst.buffer, dstOffset, bytes);
    }
  }

  /** GPU → CPU read of `bytes` bytes; submits pending work and waits for it. */
  async read(src: PooledBuffer, bytes: number, srcOffset = 0): Promise<ArrayBuffer> {
    return (await this.readMany([{ src, bytes, srcOffset }]))[0];
  }

  /** Several GPU → CPU reads through one staging buffer: one submit and one wait for them all. */
  async readMany(parts: readonly { src: PooledBuffer; bytes: number; srcOffset: number }[]): Promise<ArrayBuffer[]> {
    this.recorder?.abort('a read-back inside the step');
    // Each part at a multiple of 4 bytes (copies move whole words); a mapping needs at least one.
    const at: number[] = [];
    let size = 0;
    for (const p of parts) {
      at.push(size);
      size += Math.ceil(p.bytes / 4) * 4;
    }
    size = Math.max(4, size);
    const staging = this.pool.acquire(size, MAP_READ_USAGE, 'readback');
    try {
      parts.forEach((p, i) => {
        if (p.bytes > 0) this.copy(p.src, p.srcOffset, staging, at[i], Math.ceil(p.bytes / 4) * 4);
      });
      this.flush();
      await this.quietly(staging.buffer.mapAsync(1 /* READ */, 0, size));
      const mapped = staging.buffer.getMappedRange(0, size);
      const out = parts.map((p, i) => mapped.slice(at[i], at[i] + p.bytes));
      staging.buffer.unmap();
      await this.checkErrors();
      return out;
    } catch (e) {
      await this.checkErrors();
      this.assertUsable();
      throw e;
    } finally {
      this.pool.release(staging);
    }
  }

  /** Wait for all submitted work; throw the first GPU error seen since the last check. */
  async sync(): Promise<void> {
    this.flush();
    await this.quietly(this.device.queue.onSubmittedWorkDone());
    await this.checkErrors();
  }

  /** A wait for the GPU that leaves the CPU to it (engine/quiet-wait.ts): Dawn's Node binding polls while awaited. */
  quietly<T>(p: Promise<T>): Promise<T> {
    return quietly(p, this.origin.startsWith('dawn'));
  }

  async checkErrors(): Promise<void> {
    const pending = this.errors;
    this.errors = [];
    const messages = (await Promise.all(pending)).filter((m): m is string => m !== null);
    this.assertUsable();
    if (messages.length) throw new Error(messages.join('\n'));
  }

  memoryStats(): MemoryStats {
    return {
      liveBytes: this.pool.liveBytes,
      pooledBytes: this.pool.pooledBytes,
      allocations: this.pool.allocations,
      ...this.stats,
    };
  }

  /**
   * GPU timing (engine/timing.ts): end the open pass and open one carrying `timestampWrites`, so that
   * the dispatches encoded next land in it. The returned function ends that pass; it returns false
   * when a copy or a flush ended it early, i.e. when the timestamps do not bracket all that work.
   */
  timedPass(timestampWrites: GPUComputePassTimestampWrites): () => boolean {
    this.recorder?.abort('a timed pass');
    const pass = this.commandEncoder().beginComputePass({ timestampWrites });
    this.pass = pass;
    return () => {
      if (this.pass !== pass) return false;
      this.commandEncoder();
      return true;
    };
  }

  destroy(): void {
    this.pool.trim();
    this.device.destroy();
  }
}

export type KernelProfile = 'cpu' | 'gpu';

/** 'cpu' for software adapters (architecture "software", llvmpipe, SwiftShader), unless WEBVIG_KERNELS says otherwise. */
export function kernelProfileOf(info: GPUAdapterInfo): KernelProfile {
  const forced = envVar('WEBVIG_KERNELS');
  if (forced === 'cpu' || forced === 'gpu') return forced;
  if (forced) throw new Error(`WEBVIG_KERNELS=${forced}: expected cpu or gpu`);
  return /software|cpu|llvmpipe|lavapipe|swiftshader/i.test(`${info.architecture} ${info.device} ${info.description}`) ? 'cpu' : 'gpu';
}

/** Each tensor bound where the kernel's array holds its dtype: f16 halves never read as f32 words, nor the reverse. */
function checkElements(p: Pipeline, args: BufferArg[], context: string): void {
  let ai = 0;
  for (const b of p.info.bindings) {
    if (b.kind === 'uniform') continue;
    const a = args[ai++];
    if (a.dtype === 'f16' ? b.element !== 'f16' : a.dtype === 'f32' && b.element === 'f16') {
      throw new Error(`${context}: kernel ${p.label} reads ${b.name} as ${b.element === 'other' ? 'non-float' : b.element} values, got ${a.describe()}`);
    }
  }
}

/** Bindings must be a multiple of 4 bytes and non-empty. */
function bindSize(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

function summarize(labels: string[]): string {
  const shown = labels.slice(-5).join('; ');
  return labels.length > 5 ? `…; ${shown}` : shown;
}
