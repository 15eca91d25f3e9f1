import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensors, serializeSafetensors, SafetensorsError } from '../engine/safetensors.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../train/safetensors-file.js';

const fixtureDir = fileURLToPath(new URL('./fixtures/', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.safetensors`, import.meta.url));
const numel = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'webvig-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds a safetensors file by hand from a header object and raw data bytes. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function expectError(run: () => Promise<unknown>, ...fragments: string[]) {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SafetensorsError);
  for (const f of fragments) expect((err as Error).message).toContain(f);
}

describe('fixtures', () => {
  it('loads every fixture file', async () => {
    const files = (await readdir(fixtureDir)).filter((f) => f.endsWith('.safetensors'));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const path = join(fixtureDir, f);
      const header = await readSafetensorsHeader(path);
      const { metadata, tensors } = await readSafetensors(path);
      // The file is named after its fixture kind (generated variants add a suffix: gkg_net_unseen).
      expect(f.replace('.safetensors', '').startsWith(metadata.fixture!)).toBe(true);
      expect(() => JSON.parse(metadata.config!)).not.toThrow();
      expect(tensors.size).toBe(header.entries.length);
      expect(header.dataOffset % 8).toBe(0);
      for (const t of tensors.values()) expect(t.data.length).toBe(numel(t.shape));
    }
  });

  it('has the documented shapes and dtypes', async () => {
    const { tensors } = await readSafetensors(fixture('gkg_block_xy'));
    const x = tensors.get('input.x')!;
    expect([x.dtype, x.shape]).toEqual(['F32', [2, 32, 16, 16]]);
    expect(x.data).toBeInstanceOf(Float32Array);
    const knn = tensors.get('eval.knn.block.0.graph_conv.dilated_knn_graph')!;
    expect([knn.dtype, knn.shape]).toEqual(['I64', [4, 256, 9]]);
    expect(knn.data).toBeInstanceOf(Int32Array);
    expect(Math.min(...knn.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...knn.data)).toBeLessThan(64);
    expect(tensors.get('param.block.0.relative_pos')!.shape).toEqual([1, 256, 64]);

    const net = await readSafetensors(fixture('gkg_net'), { filter: (n) => n.startsWith('input.') });
    expect([...net.tensors.keys()].sort()).toEqual(['input.img', 'input.target_gt_label']);
    const gt = net.tensors.get('input.target_gt_label')!;
    expect([gt.dtype, gt.shape]).toEqual(['I64', [2, 20]]);
    expect(gt.data.every((v) => v === 0 || v === 1)).toBe(true);
    expect(JSON.parse(net.metadata.config!).channels).toEqual([16, 32, 48, 64]);
  });

  it('parses an in-memory copy identically', async () => {
    const path = fixture('metrics');
    const fromFile = await readSafetensors(path);
    const fromMemory = parseSafetensors(new Uint8Array(await readFile(path)));
    expect(fromMemory).toEqual(fromFile);
  });

  it('serialises in memory exactly as the file writer writes (the engine holds no file I/O)', async () => {
    const tensors = [
      { name: 'w', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      { name: 'i', dtype: 'I64' as const, shape: [3], data: new Int32Array([-1, 0, 7]) },
    ];
    const path = join(dir, 'memory.safetensors');
    await writeSafetensors(path, tensors, { note: 'x' });
    const bytes = await serializeSafetensors(tensors, { note: 'x' });
    expect(Buffer.from(bytes).equals(await readFile(path))).toBe(true);
    expect(parseSafetensors(bytes).metadata).toEqual({ note: 'x' });
  });
});

describe('write → read round trip', () => {
  it('keeps values, dtypes, order and metadata', async () => {
    const f32 = new Float32Array([0, -0, 1.5, -3.25e-7, 3.4e38, NaN, Infinity, -Infinity]);
    const i32 = new Int32Array([0, -1, 2147483647, -2147483648, 12345]);
    const asI64 = new Int32Array([-2147483648, -1, 0, 1, 2147483647, 63]);
    const big = new BigInt64Array([-5n, 0n, 2147483647n]);
    const u8 = new Uint8Array([0, 1, 128, 255]);
    const scalar = new Float32Array([42]);
    const metadata = { format: 'pt', note: 'ünïcode ✓', json: JSON.stringify({ a: [1, 2] }) };
    const path = join(dir, 'roundtrip.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'z.f32', shape: [2, 4], data: f32 },
        { name: '0', shape: [5], data: i32 },
        { name: 'idx', dtype: 'I64', shape: [2, 3], data: asI64 },
        { name: 'big', shape: [3], data: big },
        { name: 'bytes', shape: [4], data: u8 },
        { name: 'scalar', shape: [], data: scalar },
        { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
      ],
      metadata,
    );

    const header = await readSafetensorsHeader(path);
    expect(header.entries.map((e) => e.name)).toEqual(['z.f32', '0', 'idx', 'big', 'bytes', 'scalar', 'empty']);
    expect(header.dataOffset % 8).toBe(0);
    const raw = new Uint8Array(await readFile(path));
    const headerText = new TextDecoder().decode(raw.subarray(8, header.dataOffset));
    expect(headerText.trimEnd().endsWith('}')).toBe(true); // space padding only

    const { metadata: meta, tensors } = await readSafetensors(path);
    expect(meta).toEqual(metadata);
    const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    expect(bytes(tensors.get('z.f32')!.data)).toEqual(bytes(f32));
    expect(tensors.get('0')!).toMatchObject({ dtype: 'I32', shape: [5], data: i32 });
    expect(tensors.get('idx')!).toMatchObject({ dtype: 'I64', shape: [2, 3], data: asI64 });
    expect(tensors.get('big')!).toMatchObject({ dtype: 'I64', data: new Int32Array([-5, 0, 2147483647]) });
    expect(tensors.get('bytes')!).toMatchObject({ dtype: 'U8', data: u8 });
    expect(tensors.get('scalar')!).toMatchObject({ shape: [], data: scalar });
    expect(tensors.get('empty')!).toMatchObject({ shape: [0, 3], data: new Float32Array(0) });

    // I64 on disk is the sign-extended 64-bit value.
    const idx = header.entries.find((e) => e.name === 'idx')!;
    const onDisk = new BigInt64Array(raw.slice(header.dataOffset + idx.begin, header.dataOffset + idx.end).buffer);
    expect([...onDisk]).toEqual([-2147483648n, -1n, 0n, 1n, 2147483647n, 63n]);
  });

  it('streams tensors larger than one I/O chunk', async () => {
    const n = 2_500_000; // 20 MB as I64: crosses the 16 MiB chunk boundary when writing and reading
    const data = new Int32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i * 2654435761) | 0;
    const path = join(dir, 'large.safetensors');
    await writeSafetensors(path, [{ name: 'big', dtype: 'I64', shape: [n], data }]);
    const t = (await readSafetensors(path)).tensors.get('big')!;
    // compare as bytes: deep equality over millions of elements is slow
    expect(Buffer.from(t.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
  });

  it('rejects inconsistent tensors before touching the disk', async () => {
    const path = join(dir, 'invalid-write.safetensors');
    await expectError(() => writeSafetensors(path, [{ name: 'a', shape: [3], data: new Float32Array(2) }]), 'a', '3');
    await expectError(() => writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: new Int32Array(2) }]), 'F32');
    await expectError(
      () => writeSafetensors(path, [{ name: 'a', shape: [1], data: new Uint8Array(1) }, { name: 'a', shape: [1], data: new Uint8Array(1) }]),
      'duplicate',
    );
    expect(await readdir(dir)).not.toContain('invalid-write.safetensors');
  });
});

describe('dtype conversion', () => {
  const f16 = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00];
  const f16Values = [1, -2, 0.333251953125, 65504, 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, NaN];
  const bf16 = [0x3f80, 0xc040, 0x3eab, 0x7f7f, 0x0001, 0xff80];
  const bf16Values = [1, -3, 0.333984375, 3.3895313892515355e38, 2 ** -133, -Infinity];

  function handWritten(): Uint8Array {
    const data = new Uint8Array(20 + 12 + 16 + 4 + 3 + 2);
    const view = new DataView(data.buffer);
    f16.forEach((h, i) => view.setUint16(2 * i, h, true));
    bf16.forEach((h, i) => view.setUint16(20 + 2 * i, h, true));
    view.setFloat64(32, 0.1, true);
    view.setFloat64(40, -1e300, true);
    view.setInt16(48, -32768, true);
    view.setInt16(50, 7, true);
    data.set([0xff, 0x80, 0x05], 52); // I8: -1, -128, 5
    data.set([1, 0], 55); // BOOL
    return rawFile(
      {
        h: { dtype: 'F16', shape: [10], data_offsets: [0, 20] },
        b: { dtype: 'BF16', shape: [2, 3], data_offsets: [20, 32] },
        d: { dtype: 'F64', shape: [2], data_offsets: [32, 48] },
        s: { dtype: 'I16', shape: [2], data_offsets: [48, 52] },
        c: { dtype: 'I8', shape: [3], data_offsets: [52, 55] },
        m: { dtype: 'BOOL', shape: [2], data_offsets: [55, 57] },
      },
      data,
    );
  }

  it('converts F16, BF16, F64, I16, I8 and BOOL exactly (file and memory)', async () => {
    const bytes = handWritten();
    const path = join(dir, 'dtypes.safetensors');
    await writeFile(path, bytes);
    for (const { tensors } of [await readSafetensors(path), parseSafetensors(bytes)]) {
      expect([...tensors.get('h')!.data]).toEqual(f16Values);
      expect(Object.is(tensors.get('h')!.data[6], -0)).toBe(true);
      expect(tensors.get('h')!.data).toBeInstanceOf(Float32Array);
      expect([...tensors.get('b')!.data]).toEqual(bf16Values);
      expect([...tensors.get('d')!.data]).toEqual([Math.fround(0.1), -Infinity]);
      expect(tensors.get('s')!.data).toEqual(new Int32Array([-32768, 7]));
      expect(tensors.get('c')!.data).toEqual(new Int32Array([-1, -128, 5]));
      expect(tensors.get('m')!).toMatchObject({ dtype: 'BOOL', data: new Uint8Array([1, 0]) });
    }
  });
});

describe('validation', () => {
  const good = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  async function file(name: string, bytes: Uint8Array): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, bytes);
    return path;
  }

  it('rejects a file shorter than 8 bytes', async () => {
    const p = await file('short.safetensors', new Uint8Array(5));
    await expectError(() => readSafetensors(p), 'short.safetensors', '8-byte');
    expect(() => parseSafetensors(new Uint8Array(3), 'buf.bin')).toThrow(/buf\.bin/);
  });

  it('rejects a header length beyond the file', async () => {
    const bytes = rawFile(good, new Uint8Array(8));
    new DataView(bytes.buffer).setBigUint64(0, 1n << 40n, true);
    const p = await file('hugeheader.safetensors', bytes);
    await expectError(() => readSafetensorsHeader(p), 'hugeheader.safetensors', 'header length');
  });

  it('rejects invalid JSON', async () => {
    const bytes = rawFile(good, new Uint8Array(8));
    bytes[8] = 0x5b; // '[' instead of '{'
    const p = await file('badjson.safetensors', bytes);
    await expectError(() => readSafetensors(p), 'badjson.safetensors', 'JSON');
  });

  it('rejects unknown and unsupported dtypes', async () => {
    const p = await file('dtype.safetensors', rawFile({ w: { dtype: 'X9', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)));
    await expectError(() => readSafetensors(p), 'dtype.safetensors', '"w"', 'X9');
    const q = await file('u16.safetensors', rawFile({ v: { dtype: 'U16', shape: [4], data_offsets: [0, 8] } }, new Uint8Array(8)));
    await expectError(() => readSafetensorsHeader(q), 'u16.safetensors', '"v"', 'U16');
  });

  it('rejects a shape that does not match the byte span', async () => {
    const p = await file('span.safetensors', rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)));
    await expectError(() => readSafetensors(p), 'span.safetensors', '"w"', '12 bytes');
  });

  it('rejects a truncated file', async () => {
    const p = join(dir, 'truncated.safetensors');
    await writeSafetensors(p, [{ name: 'a', shape: [4], data: new Float32Array(4) }, { name: 'tail', shape: [8], data: new Float32Array(8) }]);
    await truncate(p, (await readFile(p)).length - 4);
    await expectError(() => readSafetensors(p), 'truncated.safetensors', '"tail"', 'truncated');
  });

  it('rejects overlapping, out-of-order and non-tiling offsets', async () => {
    const overlap = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    const p = await file('overlap.safetensors', rawFile(overlap, new Uint8Array(12)));
    await expectError(() => readSafetensors(p), 'overlap.safetensors', '"b"', 'overlap', '"a"');

    const reversed = { a: { dtype: 'U8', shape: [0], data_offsets: [8, 0] } };
    const q = await file('reversed.safetensors', rawFile(reversed, new Uint8Array(8)));
    await expectError(() => readSafetensors(q), 'reversed.safetensors', '"a"', 'out of order');

    const hole = { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } };
    const r = await file('hole.safetensors', rawFile(hole, new Uint8Array(8)));
    await expectError(() => readSafetensors(r), 'hole.safetensors', '"a"', 'unindexed');

    const trailing = await file('trailing.safetensors', rawFile(good, new Uint8Array(12)));
    await expectError(() => readSafetensors(trailing), 'trailing.safetensors', '4 unindexed bytes');
  });

  it('accepts tensors listed out of offset order in the JSON', async () => {
    const swapped = {
      b: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
      a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
    };
    const { tensors } = parseSafetensors(rawFile(swapped, new Uint8Array([1, 2, 3, 4])));
    expect([...tensors.keys()]).toEqual(['a', 'b']);
    expect(tensors.get('b')!.data).toEqual(new Uint8Array([3, 4]));
  });

  it('rejects non-integer and negative shape entries', async () => {
    const frac = await file('frac.safetensors', rawFile({ w: { dtype: 'U8', shape: [2.5], data_offsets: [0, 2] } }, new Uint8Array(2)));
    await expectError(() => readSafetensors(frac), 'frac.safetensors', '"w"', 'shape');
    const neg = await file('neg.safetensors', rawFile({ w: { dtype: 'U8', shape: [-2], data_offsets: [0, 2] } }, new Uint8Array(2)));
    await expectError(() => readSafetensors(neg), 'neg.safetensors', '"w"', 'shape');
  });

  it('rejects I64 values outside the int32 range', async () => {
    const data = new BigInt64Array([1n, 1n << 31n]);
    const p = await file('wide.safetensors', rawFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(data.buffer)));
    await expectError(() => readSafetensors(p), 'wide.safetensors', '"ids"', '2147483648');
  });
});

describe('atomic write', () => {
  const tempLeftovers = async (where: string) => (await readdir(where)).filter((f) => f.includes('.tmp-'));

  it('leaves the old file intact when the tensor iterator throws', async () => {
    const path = join(dir, 'atomic.safetensors');
    await writeSafetensors(path, [{ name: 'old', shape: [3], data: new Float32Array([1, 2, 3]) }], { v: '1' });
    const before = await readFile(path);
    function* failing() {
      yield { name: 'new', shape: [2], data: new Float32Array([4, 5]) };
      throw new Error('source failed');
    }
    await expect(writeSafetensors(path, failing(), { v: '2' })).rejects.toThrow('source failed');
    expect(await readFile(path)).toEqual(before);
    expect(await tempLeftovers(dir)).toEqual([]);
  });

  it('removes the temporary file when the final rename fails', async () => {
    const sub = join(dir, 'rename-fails');
    const target = join(sub, 'occupied');
    await mkdir(join(target, 'child'), { recursive: true }); // a non-empty directory cannot be replaced
    await expect(writeSafetensors(target, [{ name: 'a', shape: [1], data: new Uint8Array([7]) }])).rejects.toThrow();
    expect(await readdir(target)).toEqual(['child']);
    expect(await tempLeftovers(sub)).toEqual([]);
  });
});
