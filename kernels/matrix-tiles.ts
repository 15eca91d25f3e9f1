// Subgroup-matrix tiles for the GEMM kernels (conv2d.wgsl and matmul.wgsl with tile-matrix.wgsl):
// where the adapter offers chromium-experimental-subgroup-matrix (Dawn: with allow_unsafe_apis)
// for the operand precision's type with f32 results — f16 under --precision mixed, i.e. tensor
// cores — the BM×BN tile of a GEMM is a set of SM×SN matrix products instead of per-thread
// register blocks.
//
// A matrix op's layout conventions are the driver's, so the tiles are used only after
// verifyMatrixTiles() has compared a convolution's forward, input and weight gradients computed
// with them against the register tiles on this device; a failed comparison keeps the register
// tiles (and says why). The same tiling also runs with plain-WGSL stand-ins for the four matrix
// operations ('emulate'): that is how adapters without subgroup matrices test it.
import type { Device } from '../engine/device.js';
import { device, operandPrecision, beginScope, endScope, activationDtype, setActivationDtype, type OperandPrecision } from '../engine/context.js';
import { envVar } from '../engine/gpu.js';
import { kernelSource, composedSource, withStorageTypes } from '../engine/kernel.js';
import { subgroupMatrixConfigs } from '../engine/precision.js';
import { Tensor } from '../engine/tensor.js';
import { Rng } from '../engine/rng.js';
import { operandSource, F32_STORAGE, storageName, type GemmStorage } from './operand.js';
import { TILES, tiledSource, type TileConfig } from './matmul.js';

/** One matrix multiply's shape (rows M, columns N, depth K) and the subgroup that computes it. */
export interface MatrixTiles {
  M: number;
  N: number;
  K: number;
  /** Invocations per subgroup (fixed on the adapters that use real subgroup matrices). */
  subgroupSize: number;
  /** Plain-WGSL stand-ins for the builtins. */
  emulated: boolean;
}

/**
 * The workgroup tiles GEMMs take with matrix tiles, the default first (autotuning times the
 * others): 256 invocations each, 64×64 and (f16 operands) 128×128 tiles of C. Each fits 16 KiB of
 * workgroup memory, what every adapter has: As and Bs (BK deep: 32 and 16 with f16 operands, 16
 * with f32) and C_ROWS rows of C at a time (8 KiB of f32, tile-matrix.wgsl).
 */
export function matrixTileVariants(precision: OperandPrecision = operandPrecision()): readonly TileConfig[] {
  return VARIANTS[precision];
}

const VARIANTS: Record<OperandPrecision, readonly TileConfig[]> = {
  f16: [{ BM: 64, BN: 64, BK: 32, TM: 4, TN: 4 }, { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 }],
  f32: [{ BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 }],
};

/** The default of matrixTileVariants(). */
export function matrixTile(precision: OperandPrecision = operandPrecision()): TileConfig {
  return VARIANTS[precision][0];
}

/** Rows of C's tile that pass through workgroup memory at once: 8 KiB of f32. */
function cRows(tile: TileConfig): number {
  return 2048 / tile.BN;
}

/** 'auto': real subgroup matrices where offered and verified; 'off': never; 'emulate': always, emulated. */
export type MatrixTilesMode = 'auto' | 'off' | 'emulate';
const MODES: readonly MatrixTilesMode[] = ['auto', 'off', 'emulate'];

/** The emulated shape: square by default; tests also take non-square ones (a swapped M and N shows there). */
let emulated: MatrixTiles = { M: 16, N: 16, K: 16, subgroupSize: 32, emulated: true };

let mode: MatrixTilesMode = modeOf(envVar('WEBVIG_MATRIX_TILES') ?? 'auto', 'WEBVIG_MATRIX_TILES');
/** Set while verifyMatrixTiles() runs its comparison: the tiles to use ('none': register tiles). */
let forced: MatrixTiles | 'none' | null = null;
/** Per device, operand precision and activation dtype (verdictKey): the verification's verdict (null: passed). */
const verdicts = new WeakMap<Device, Map<string, string | null>>();
const verdictKey = () => `${operandPrecision()} ${activationDtype()}`;
/** Per device and operand precision: offeredMatrixTiles(), asked at every convolution's plan. */
const offers = new WeakMap<Device, Map<OperandPrecision, MatrixTiles | null>>();

function modeOf(v: string, what: string): MatrixTilesMode {
  if (!MODES.includes(v as MatrixTilesMode)) throw new Error(`${what}=${v}: expected one of ${MODES.join(', ')}`);
  return v as MatrixTilesMode;
}

/** `shape`: with 'emulate', the matrix shape and subgroup size to emulate (default 16×16×16, 32 lanes). */
export function setMatrixTilesMode(m: MatrixTilesMode, shape?: Omit<MatrixTiles, 'emulated'>): void {
  mode = modeOf(m, 'matrix tiles mode');
  emulated = { ...(shape ?? { M: 16, N: 16, K: 16, subgroupSize: 32 }), emulated: true };
}

/** The matrix tiles GEMMs use now (current device and operand precision), or null for register tiles. */
export function matrixTiles(): MatrixTiles | null {
  if (forced) return forced === 'none' ? null : forced;
  if (mode === 'off') return null;
  if (mode === 'emulate') return emulated;
  const dev = device();
  const offer = offeredMatrixTiles(dev, operandPrecision());
  return offer && verdicts.get(dev)?.get(verdictKey()) === null ? offer : null;
}

/** Fewest rows (output channels per group, input channels for dx) a GEMM needs to take matrix tiles. */
const MIN_ROWS = 48;

/**
 * The matrix tiles a GEMM of M rows and N columns takes now: where matrixTiles() offers them and the
 * GEMM fills most of their default 64×64 tile; with a `tile` the caller forces, where they fit it.
 * Null: register tiles.
 */
export function matrixFor(M: number, N: number, tile?: TileConfig): MatrixTiles | null {
  const m = matrixTiles();
  if (!m) return null;
  if (tile) return fitsTile(m, tile) ? m : null;
  const t = matrixTile();
  return M >= MIN_ROWS && N >= t.BN && fitsTile(m, t) ? m : null;
}

/** Per device (its workgroup memory decides what fits): matrix shape and precision → its tiles. */
const choices = new WeakMap<Device, Map<string, readonly TileConfig[]>>();

/**
 * The workgroup tiles matrix tiles `m` can run on this device at the current precision, the default
 * first: what autotuning chooses among. One list object per content (autotune keys by it).
 */
export function matrixTileChoices(m: MatrixTiles): readonly TileConfig[] {
  const dev = device();
  let lists = choices.get(dev);
  if (!lists) choices.set(dev, (lists = new Map()));
  const key = `${matrixName(m)}/${m.subgroupSize} ${operandPrecision()}`;
  let list = lists.get(key);
  if (!list) lists.set(key, (list = matrixTileVariants().filter((t) => fitsTile(m, t, dev))));
  return list;
}

/** How launch contexts (errors, profiles) name the tiles: "16×16×16 matrix tiles". */
export function matrixName(m: MatrixTiles): string {
  return `${m.M}×${m.N}×${m.K} ${m.emulated ? 'emulated ' : ''}matrix tiles`;
}

/**
 * Whether `m` can compute `tile`: whole subgroups and matrices, each subgroup's tiles in one row of
 * tiles, and C's rows passing through workgroup memory in whole matrices and thread blocks, all
 * within the adapter's workgroup memory.
 */
export function fitsTile(m: MatrixTiles, tile: TileConfig, dev: Device = device(), precision: OperandPrecision = operandPrecision()): boolean {
  const threads = (tile.BM / tile.TM) * (tile.BN / tile.TN);
  const subgroups = threads / m.subgroupSize;
  const tilesN = tile.BN / m.N;
  const perSubgroup = ((tile.BM / m.M) * tilesN) / subgroups;
  const rows = cRows(tile);
  const opndBytes = precision === 'f16' ? 2 : 4;
  const workgroupBytes = (tile.BM + tile.BN) * tile.BK * opndBytes + rows * tile.BN * 4;
  return (
    Number.isInteger(subgroups) && subgroups >= 1 && tile.BM % m.M === 0 && tile.BN % m.N === 0 && tile.BK % m.K === 0 &&
    Number.isInteger(perSubgroup) && perSubgroup >= 1 && tilesN % perSubgroup === 0 &&
    Number.isInteger(rows) && tile.BM % rows === 0 && rows % m.M === 0 && rows % tile.TM === 0 &&
    workgroupBytes <= dev.limits.maxComputeWorkgroupStorageSize
  );
}

/**
 * The adapter's matrix shape for operands of `precision` with f32 results, if it offers one that
 * fits the default matrixTile() and has a fixed subgroup size (the tiling counts subgroups at compile time).
 */
export function offeredMatrixTiles(dev: Device, precision: OperandPrecision): MatrixTiles | null {
  let byPrecision = offers.get(dev);
  if (!byPrecision) offers.set(dev, (byPrecision = new Map()));
  let offer = byPrecision.get(precision);
  if (offer === undefined) byPrecision.set(precision, (offer = findOffer(dev, precision)));
  return offer;
}

function findOffer(dev: Device, precision: OperandPrecision): MatrixTiles | null {
  if (!dev.features.has('chromium-experimental-subgroup-matrix')) return null;
  const info = dev.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const size = info.subgroupMaxSize;
  if (!size || info.subgroupMinSize !== size) return null;
  for (const c of subgroupMatrixConfigs(dev.adapterInfo)) {
    if (c.componentType !== precision || c.resultComponentType !== 'f32') continue;
    const m: MatrixTiles = { M: c.M, N: c.N, K: c.K, subgroupSize: size, emulated: false };
    if (fitsTile(m, matrixTile(precision), dev, precision)) return m;
  }
  return null;
}

// The four operations tile-matrix.wgsl calls, and its Subgroup. Real: the builtins, on the tiles'
// layouts (A column-major with stride BM, B and C row-major with strides BN); the subgroup is
// @builtin(subgroup_id), which the uniformity analysis knows to be uniform in its subgroup.
const REAL_OPS = `
alias MatrixResult = subgroup_matrix_result<f32, SN, SM>;

struct Subgroup { @builtin(subgroup_id) id: u32 }

fn subgroup_of(sub: Subgroup) -> u32 { return sub.id; }

fn load_left(offset: u32) -> subgroup_matrix_left<opnd_t, SK, SM> {
  return subgroupMatrixLoad<subgroup_matrix_left<opnd_t, SK, SM>, col_major>(&As, offset, BM);
}

fn load_right(offset: u32) -> subgroup_matrix_right<opnd_t, SN, SK> {
  return subgroupMatrixLoad<subgroup_matrix_right<opnd_t, SN, SK>, row_major>(&Bs, offset, BN);
}

fn multiply_add(l: subgroup_matrix_left<opnd_t, SK, SM>, r: subgroup_matrix_right<opnd_t, SN, SK>, acc: MatrixResult) -> MatrixResult {
  return subgroupMatrixMultiplyAccumulate(l, r, acc);
}

fn store_result(offset: u32, acc: MatrixResult) {
  subgroupMatrixStore<row_major>(&Cs, offset, acc, BN);
}
`;

// Emulated: a subgroup is SGS consecutive invocations; an operand stays in workgroup memory (it is
// read between the same two barriers as the real load), and lane l holds elements l, l + SGS, … of
// each SM×SN result in row-major order. The loops take their trip counts from a value a compiler
// cannot fold (C, the kernel's output, is never empty when it runs): lavapipe unrolls loops of
// constant count, and unrolled, the 128×128 tile's emulation took minutes to compile.
const EMULATED_OPS = `
const PER_LANE: u32 = SM * SN / SGS;
alias MatrixResult = array<f32, PER_LANE>;
struct MatrixAt { offset: u32 }

struct Subgroup { @builtin(local_invocation_id) lid: vec3u }

var<private> lane: u32;
var<private> per_lane: u32;
var<private> depth: u32;

// The workgroup is one-dimensional: lid.x is the invocation's index.
fn subgroup_of(sub: Subgroup) -> u32 {
  lane = sub.lid.x % SGS;
  let one = min(arrayLength(&C), 1u);
  per_lane = PER_LANE * one;
  depth = SK * one;
  return sub.lid.x / SGS;
}

fn load_left(offset: u32) -> MatrixAt { return MatrixAt(offset); }
fn load_right(offset: u32) -> MatrixAt { return MatrixAt(offset); }

fn multiply_add(l: MatrixAt, r: MatrixAt, acc: MatrixResult) -> MatrixResult {
  var out = acc;
  for (var q = 0u; q < per_lane; q++) {
    let e = lane + q * SGS;
    for (var k = 0u; k < depth; k++) {
      out[q] += f32(As[l.offset + k * BM + e / SN]) * f32(Bs[r.offset + k * BN + e % SN]);
    }
  }
  return out;
}

fn store_result(offset: u32, acc: MatrixResult) {
  for (var q = 0u; q < per_lane; q++) {
    let e = lane + q * SGS;
    Cs[offset + (e / SN) * BN + e % SN] = acc[q];
  }
}
`;

/**
 * `file` (a GEMM kernel written against tile.wgsl's interface) on matrix tiles `m` with workgroup
 * tile `tile`, its arrays of the types `storage` names (the tiles hold opnd_t whatever they are).
 */
export function matrixSource(file: string, tile: TileConfig, m: MatrixTiles, storage: GemmStorage = F32_STORAGE): string {
  const key = `${file} matrix ${m.emulated ? 'emulated' : 'real'} ${m.M}x${m.N}x${m.K}/${m.subgroupSize} ${JSON.stringify(tile)} ${operandPrecision()}${storageName(storage)}`;
  return composedSource(key, () => {
    const shape = `const SM: u32 = ${m.M}u;\nconst SN: u32 = ${m.N}u;\nconst SK: u32 = ${m.K}u;\nconst SGS: u32 = ${m.subgroupSize}u;\n`;
    const body = shape + (m.emulated ? EMULATED_OPS : REAL_OPS) + kernelSource('tile-matrix.wgsl') + kernelSource(file, { ...tile });
    return withStorageTypes((m.emulated ? '' : 'enable chromium_experimental_subgroup_matrix;\n') + operandSource(body), storage);
  });
}

/**
 * A GEMM kernel's `code` and, where wgsl_reflect cannot parse that (the real subgroup-matrix
 * types), the register kernel to reflect its bindings from (the same): launch()'s two fields for
 * `file` on `tile`, with matrix tiles `m` or (null) register tiles, its arrays of `storage`'s types.
 */
export function gemmKernel(file: string, tile: TileConfig, m: MatrixTiles | null, storage: GemmStorage): { code: string; bindingsFrom?: string } {
  if (!m) return { code: tiledSource(file, tile, storage) };
  return { code: matrixSource(file, tile, m, storage), bindingsFrom: m.emulated ? undefined : tiledSource(file, tile, storage) };
}

/**
 * Compare, on the current device at the current operand precision, a convolution's three GEMMs
 * computed on every tile the offered matrix tiles fit against the register tiles; from then on
 * matrixTiles() returns them if they all agreed. Returns null when they agreed, else why they are
 * not used (off, not offered, a kernel the driver refused, or a comparison that failed). Once per
 * device, precision and activation dtype; later calls return the verdict. Nothing to check under
 * 'emulate'.
 */
export async function verifyMatrixTiles(): Promise<string | null> {
  if (mode === 'off') return 'WEBVIG_MATRIX_TILES=off';
  if (mode === 'emulate') return null;
  const dev = device();
  const precision = operandPrecision();
  let known = verdicts.get(dev);
  if (!known) verdicts.set(dev, (known = new Map()));
  const key = verdictKey();
  if (known.has(key)) return known.get(key)!;
  const offer = offeredMatrixTiles(dev, precision);
  const verdict = offer
    ? await compareMatrixTiles(offer)
    : `the adapter offers no ${precision} subgroup-matrix shape with f32 results that fits a 64×64 tile (with a fixed subgroup size)`;
  known.set(key, verdict);
  return verdict;
}

/**
 * verifyMatrixTiles()'s comparison of matrix tiles `m` (real or emulated) with the register tiles,
 * on every tile size they fit: null when all agree, else what differed or failed. With f16
 * activations it runs twice, since the kernels then differ: once with f32 arrays, where both sides
 * agree to about 1e-6 of the largest value, and once with the f16 arrays a run will use, whose
 * outputs may round a few last places (2⁻¹⁰ each) apart.
 */
export async function compareMatrixTiles(m: MatrixTiles): Promise<string | null> {
  const dev = device();
  const precision = operandPrecision();
  const storages: ('f32' | 'f16')[] = activationDtype() === 'f16' ? ['f32', 'f16'] : ['f32'];
  for (const storage of storages) {
    const register = await gemmResults(null, TILES.medium, storage);
    for (const tile of matrixTileVariants(precision).filter((t) => fitsTile(m, t, dev, precision))) {
      const what = `${matrixName(m)} (${precision}, ${tile.BM}×${tile.BN} tile, ${storage} activations)`;
      try {
        const verdict = compareGradients(register, await gemmResults(m, tile, storage), what, storage === 'f16' ? 4e-3 : 1e-3);
        if (verdict) return verdict;
      } catch (e) {
        return `${what} failed on ${dev.describe()}: ${(e as Error).message.split('\n')[0]}`;
      }
    }
  }
  return null;
}

const RESULTS = [
  'convolution output', 'convolution input gradient', 'convolution weight gradient',
  'matmul output', 'matmul input gradient', 'matmul weight gradient',
];

/**
 * On `tile`, with matrix tiles `m` or (null) register tiles, and activations in `storage`: a 3×3
 * convolution with a residual whose input has a second use (so its input gradient adds that
 * use's), and a batched matmul with a shared weight: their outputs and gradients (RESULTS). These
 * are the GEMM kernels a run uses. A forced tile also keeps the shapes from waiting for autotuning.
 */
async function gemmResults(m: MatrixTiles | null, tile: TileConfig, storage: 'f32' | 'f16'): Promise<Float32Array[]> {
  // Imported here: matmul.ts and conv2d.ts import this module, so a static import would be a cycle.
  const [{ conv2d }, { matmul }, { backward }, { mul, sum }] = await Promise.all([
    import('./conv2d.js'), import('./matmul.js'), import('./backward.js'), import('./ops.js'),
  ]);
  forced = m ?? 'none';
  const activations = activationDtype();
  setActivationDtype(storage);
  const normal = (shape: number[], seed: number, dtype: 'f32' | 'f16' = 'f32') => {
    const rng = new Rng(seed);
    return Tensor.from(Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => rng.normal()), shape, dtype);
  };
  const x = normal([2, 96, 9, 9], 1, storage).param('x');
  const w = normal([80, 96, 3, 3], 2).param('w');
  const a = normal([2, 96, 80], 3, storage).param('a');
  const b = normal([80, 64], 4).param('b');
  const params = [x, w, a, b];
  beginScope();
  try {
    const y = conv2d(x, w, null, { padding: 1, impl: 'gemm', tile, residual: normal([2, 80, 9, 9], 5, storage) });
    // x's second use comes after the convolution (it scales x by a sum of y), so its gradient is
    // pending when the convolution's input gradient is made, which adds it in its store.
    backward(sum(mul(x, sum(mul(y, normal(y.shape as number[], 6))))));
    const c = matmul(a, b, { tile });
    backward(c, normal(c.shape as number[], 7));
    return (await Tensor.readAll([y, x.grad!, w.grad!, c, a.grad!, b.grad!])) as Float32Array[];
  } finally {
    endScope();
    for (const t of params) {
      t.grad?.release();
      t.release();
    }
    forced = null;
    setActivationDtype(activations);
  }
}

function compareGradients(ref: Float32Array[], got: Float32Array[], what: string, tolerance: number): string | null {
  for (let t = 0; t < ref.length; t++) {
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < ref[t].length; i++) {
      scale = Math.max(scale, Math.abs(ref[t][i]));
      const d = Math.abs(ref[t][i] - got[t][i]);
      worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
    }
    if (worst > tolerance * Math.max(1, scale)) {
      return `${what} gave a ${RESULTS[t]} that differs from the register tiles' by ${worst.toPrecision(3)} (values up to ${scale.toPrecision(3)}): not used`;
    }
  }
  return null;
}

