// Reader and writer for the safetensors format: 8-byte little-endian header length, a UTF-8 JSON
// header, then the raw little-endian tensor bytes. Typed-array views are used directly on the data,
// which assumes a little-endian host (every platform WebGPU runs on).
//
// Parsing and serialising only: bytes come from, and go to, a `SafetensorsSource` / `SafetensorsSink`
// (positioned reads, sequential writes) or memory. Files live in train/safetensors-file.ts (Node);
// a page parses fetched bytes. No file system here, so the engine bundles for a browser.

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** Loaded tensor: floats as Float32Array, signed integers as Int32Array, U8/BOOL as Uint8Array. */
export interface TensorRecord {
  name: string;
  /** dtype on disk (before conversion) */
  dtype: SafetensorsDType;
  shape: number[];
  /** always backed by a plain ArrayBuffer, so it can go straight to GPUQueue.writeBuffer */
  data: Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;
}

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** byte offsets relative to the start of the data section */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  /** sorted by offset, i.e. in on-disk order */
  entries: SafetensorsEntry[];
  /** absolute file offset of the data section (8 + header length) */
  dataOffset: number;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, TensorRecord>;
}

export interface TensorToWrite {
  name: string;
  /** defaults to the dtype matching `data`; 'I64' may also be written from an Int32Array */
  dtype?: 'F32' | 'I32' | 'I64' | 'U8';
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array | BigInt64Array;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};
// Same limit as the reference Rust implementation; guards against allocating garbage lengths.
const MAX_HEADER_BYTES = 100_000_000;
// Positioned reads/writes are done in pieces of this size (fs calls cap at 2 GiB anyway).
const IO_CHUNK = 16 << 20;

function fail(file: string, msg: string, tensor?: string): never {
  throw new SafetensorsError(`${file}: ${tensor === undefined ? '' : `tensor "${tensor}": `}${msg}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const numel = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

// ---------------------------------------------------------------------------------------------
// Header

function headerLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8) fail(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) fail(file, `header length ${n} exceeds the ${fileSize - 8} bytes that follow it`);
  if (n > MAX_HEADER_BYTES) fail(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  return Number(n);
}

function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const dataOffset = 8 + json.length;
  const dataBytes = fileSize - dataOffset;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    fail(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(parsed)) fail(file, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isRecord(info)) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') fail(file, `__metadata__ value "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isRecord(info)) fail(file, 'header entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      fail(file, `unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, name);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(file, `shape ${JSON.stringify(shape)} must be a list of non-negative integers`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(file, `data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`, name);
    }
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafetensorsDType;
    if (end < begin) fail(file, `data_offsets [${begin}, ${end}] are out of order`, name);
    const need = numel(shape) * DTYPE_BYTES[dt];
    if (need !== end - begin) {
      fail(file, `shape [${shape.join(',')}] of ${dt} needs ${need} bytes but data_offsets span ${end - begin}`, name);
    }
    if (end > dataBytes) {
      fail(file, `data_offsets [${begin}, ${end}] extend beyond the ${dataBytes}-byte data section (truncated file?)`, name);
    }
    entries.push({ name, dtype: dt, shape: shape.slice(), begin, end });
  }

  // Like the reference implementation: tensors must tile the data section exactly, with no
  // overlaps, holes or trailing bytes. JSON key order is irrelevant (sort by offset first).
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = '';
  for (const e of entries) {
    if (e.begin < pos) fail(file, `data_offsets [${e.begin}, ${e.end}] overlap tensor "${prev}" (ends at ${pos})`, e.name);
    if (e.begin > pos) fail(file, `${e.begin - pos} unindexed bytes before data_offsets [${e.begin}, ${e.end}]`, e.name);
    pos = e.end;
    prev = e.name;
  }
  if (pos !== dataBytes) fail(file, `${dataBytes - pos} unindexed bytes after the last tensor`);
  return { metadata, entries, dataOffset };
}

// ---------------------------------------------------------------------------------------------
// Decoding

type OutArray = TensorRecord['data'];

function allocate(dtype: SafetensorsDType, n: number): OutArray {
  switch (dtype) {
    case 'F64': case 'F32': case 'F16': case 'BF16': return new Float32Array(n);
    case 'I64': case 'I32': case 'I16': case 'I8': return new Int32Array(n);
    case 'U8': case 'BOOL': return new Uint8Array(n);
  }
}

/** dtypes whose on-disk bytes are exactly the bytes of the output array */
const isDirect = (dtype: SafetensorsDType) => dtype === 'F32' || dtype === 'I32' || dtype === 'U8' || dtype === 'BOOL';
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero / subnormal
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
let f16Table: Float32Array | undefined; // all 65 536 halves, built on first use

/**
 * Converts `src` (a whole number of `dtype` elements, aligned to the element size) into
 * `out[at ...]`.
 */
function decodeInto(dtype: SafetensorsDType, src: Uint8Array, out: OutArray, at: number, file: string, name: string) {
  const n = src.byteLength / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32': case 'I32': case 'U8': case 'BOOL':
      bytesOf(out).set(src, at * DTYPE_BYTES[dtype]);
      return;
    case 'F64':
      out.set(new Float64Array(src.buffer, src.byteOffset, n), at); // rounds to nearest float32
      return;
    case 'F16': {
      f16Table ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      for (let i = 0; i < n; i++) out[at + i] = f16Table[h[i]];
      return;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place (exact, NaNs included).
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < n; i++) bits[at + i] = h[i] << 16;
      return;
    }
    case 'I64': {
      const w = new Int32Array(src.buffer, src.byteOffset, 2 * n);
      for (let i = 0; i < n; i++) {
        const lo = w[2 * i];
        // In int32 range iff the high word is the sign extension of the low word.
        if (w[2 * i + 1] !== lo >> 31) {
          const v = new BigInt64Array(src.buffer, src.byteOffset + 8 * i, 1)[0];
          fail(file, `I64 value ${v} at element ${at + i} does not fit in int32`, name);
        }
        out[at + i] = lo;
      }
      return;
    }
    case 'I16':
      out.set(new Int16Array(src.buffer, src.byteOffset, n), at);
      return;
    case 'I8':
      out.set(new Int8Array(src.buffer, src.byteOffset, n), at);
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Parses a whole safetensors file held in memory (e.g. a fetched ArrayBuffer in a browser). */
export function parseSafetensors(bytes: Uint8Array, label = '<memory>'): SafetensorsFile {
  const len = headerLength(bytes.subarray(0, 8), bytes.length, label);
  const header = parseHeader(bytes.subarray(8, 8 + len), bytes.length, label);
  const tensors = new Map<string, TensorRecord>();
  for (const e of header.entries) {
    let src = bytes.subarray(header.dataOffset + e.begin, header.dataOffset + e.end);
    // Converting dtypes read through typed views, which need aligned offsets; byte copies do not.
    if (!isDirect(e.dtype) && src.byteOffset % DTYPE_BYTES[e.dtype] !== 0) src = src.slice();
    const data = allocate(e.dtype, numel(e.shape));
    decodeInto(e.dtype, src, data, 0, label, e.name);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, data });
  }
  return { metadata: header.metadata, tensors };
}

/**
 * Where a safetensors file's bytes come from: its size and positioned reads (a Node FileHandle
 * fits, through train/safetensors-file.ts; so does a Blob in a page).
 */
export interface SafetensorsSource {
  size(): Promise<number>;
  /** Reads up to `length` bytes at `position` into `target[offset…]`; returns how many were read (0 at the end). */
  read(target: Uint8Array, offset: number, length: number, position: number): Promise<number>;
}

/** Where a serialised file goes: sequential writes of whole chunks. */
export interface SafetensorsSink {
  write(bytes: Uint8Array): Promise<void>;
}

/** Fills `target` from offset `position`, looping over short reads. */
async function readAt(src: SafetensorsSource, target: Uint8Array, position: number, file: string) {
  for (let done = 0; done < target.length;) {
    const len = Math.min(IO_CHUNK, target.length - done);
    const bytesRead = await src.read(target, done, len, position + done);
    if (bytesRead === 0) fail(file, `unexpected end of file at byte ${position + done} (file changed while reading?)`);
    done += bytesRead;
  }
}

/** Reads and validates only the header (small positioned reads). `file` names the source in errors. */
export async function readSafetensorsHeaderFrom(src: SafetensorsSource, file: string): Promise<SafetensorsHeader> {
  const size = await src.size();
  const first8 = new Uint8Array(8);
  if (size >= 8) await readAt(src, first8, 0, file);
  const json = new Uint8Array(headerLength(first8, size, file));
  await readAt(src, json, 8, file);
  return parseHeader(json, size, file);
}

async function readTensor(src: SafetensorsSource, e: SafetensorsEntry, dataOffset: number, file: string): Promise<TensorRecord> {
  const data = allocate(e.dtype, numel(e.shape));
  const start = dataOffset + e.begin;
  if (isDirect(e.dtype)) {
    await readAt(src, bytesOf(data), start, file);
  } else {
    // Convert chunk by chunk so a large tensor never needs a second full-size buffer.
    const width = DTYPE_BYTES[e.dtype];
    const total = e.end - e.begin;
    const scratch = new Uint8Array(Math.min(total, IO_CHUNK)); // IO_CHUNK is a multiple of every width
    for (let off = 0; off < total; off += scratch.length) {
      const piece = scratch.subarray(0, Math.min(scratch.length, total - off));
      await readAt(src, piece, start + off, file);
      decodeInto(e.dtype, piece, data, off / width, file, e.name);
    }
  }
  return { name: e.name, dtype: e.dtype, shape: e.shape, data };
}

/**
 * Reads a safetensors source tensor by tensor with positioned reads, so sources larger than the
 * limit of a single buffer work. `filter` selects which tensors to load (all by default).
 */
export async function readSafetensorsFrom(
  src: SafetensorsSource,
  file: string,
  opts: { filter?: (name: string) => boolean } = {},
): Promise<SafetensorsFile> {
  const header = await readSafetensorsHeaderFrom(src, file);
  const tensors = new Map<string, TensorRecord>();
  for (const e of header.entries) {
    if (opts.filter && !opts.filter(e.name)) continue;
    tensors.set(e.name, await readTensor(src, e, header.dataOffset, file));
  }
  return { metadata: header.metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Writing

interface PlannedTensor {
  dtype: 'F32' | 'I32' | 'I64' | 'U8';
  data: TensorToWrite['data'];
}

function defaultDtype(data: TensorToWrite['data']): PlannedTensor['dtype'] {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  return 'U8';
}

function accepts(dtype: PlannedTensor['dtype'], data: TensorToWrite['data']): boolean {
  switch (dtype) {
    case 'F32': return data instanceof Float32Array;
    case 'I32': return data instanceof Int32Array;
    case 'I64': return data instanceof BigInt64Array || data instanceof Int32Array;
    case 'U8': return data instanceof Uint8Array;
  }
}

/** Validates every tensor and builds the padded header before any file is touched. */
function planWrite(file: string, tensors: Iterable<TensorToWrite>, metadata: Record<string, string> | undefined) {
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(file, `metadata value "${k}" is not a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const planned: PlannedTensor[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__') {
      fail(file, `invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (seen.has(t.name)) fail(file, 'duplicate tensor name', t.name);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
      fail(file, `shape ${JSON.stringify(t.shape)} must be a list of non-negative integers`, t.name);
    }
    const dtype = t.dtype ?? defaultDtype(t.data);
    if (!accepts(dtype, t.data)) fail(file, `cannot write ${t.data.constructor.name} as ${dtype}`, t.name);
    if (t.data.length !== numel(t.shape)) {
      fail(file, `data has ${t.data.length} elements but shape [${t.shape.join(',')}] needs ${numel(t.shape)}`, t.name);
    }
    const end = offset + t.data.length * DTYPE_BYTES[dtype];
    // Built by hand rather than as one object so integer-like names keep their position.
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, end] })}`);
    planned.push({ dtype, data: t.data });
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces so the data section starts 8-byte aligned. Tensors follow back to back:
  // the format forbids holes between them, so individual tensors are not padded.
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, planned };
}

async function writeAll(sink: SafetensorsSink, bytes: Uint8Array) {
  for (let done = 0; done < bytes.length; done += IO_CHUNK) await sink.write(bytes.subarray(done, Math.min(bytes.length, done + IO_CHUNK)));
}

async function writeTensor(sink: SafetensorsSink, t: PlannedTensor) {
  if (t.dtype !== 'I64' || t.data instanceof BigInt64Array) {
    await writeAll(sink, bytesOf(t.data));
    return;
  }
  // Int32Array → I64: sign-extend chunk by chunk into a reusable scratch buffer.
  const src = t.data as Int32Array;
  const words = new Int32Array(2 * Math.min(src.length, IO_CHUNK / 8));
  for (let off = 0; off < src.length; off += words.length / 2) {
    const n = Math.min(words.length / 2, src.length - off);
    for (let i = 0; i < n; i++) {
      const v = src[off + i];
      words[2 * i] = v;
      words[2 * i + 1] = v >> 31;
    }
    await writeAll(sink, bytesOf(words.subarray(0, 2 * n)));
  }
}

/**
 * Every tensor validated and the header built before anything is written: call it before opening
 * a destination, then `write(sink)` streams the file (tensors in the given order, large ones in chunks).
 */
export function planSafetensors(
  tensors: Iterable<TensorToWrite>,
  metadata?: Record<string, string>,
  label = '<memory>',
): { bytes: number; write(sink: SafetensorsSink): Promise<void> } {
  const { header, planned } = planWrite(label, tensors, metadata);
  const bytes = header.length + planned.reduce((a, t) => a + t.data.length * DTYPE_BYTES[t.dtype], 0);
  return {
    bytes,
    async write(sink) {
      await writeAll(sink, header);
      for (const t of planned) await writeTensor(sink, t);
    },
  };
}

/** Streams a safetensors file into a sink (validated and planned before the first byte). */
export async function writeSafetensorsTo(sink: SafetensorsSink, tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>, label = '<sink>'): Promise<void> {
  await planSafetensors(tensors, metadata, label).write(sink);
}

/** The whole file in memory (e.g. for a download in a page). */
export async function serializeSafetensors(tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>): Promise<Uint8Array> {
  const plan = planSafetensors(tensors, metadata);
  const out = new Uint8Array(plan.bytes);
  let at = 0;
  await plan.write({ write: async (b) => { out.set(b, at); at += b.length; } });
  return out;
}
