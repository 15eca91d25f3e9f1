// Bad input becomes an Error that names the op, the shapes and the argument at fault: never a wrong
// result, a GPU validation error later, or a message without context.
import { describe, it, expect, beforeAll } from 'vitest';
import { init, Tensor, F, tidy, backward } from '../kernels/index.js';

beforeAll(async () => {
  await init();
});

/** Run `f` in a scope (so that anything it allocated is released) and return its error message. */
function errorOf(f: () => unknown): string {
  let msg = '';
  try {
    tidy(f);
  } catch (e) {
    msg = (e as Error).message;
  }
  expect(msg, 'expected an Error').not.toBe('');
  return msg;
}

const t = (shape: number[], dtype: 'f32' | 'i32' = 'f32') =>
  Tensor.from(dtype === 'i32' ? new Int32Array(shape.reduce((a, b) => a * b, 1)) : new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);

describe('wrong shapes', () => {
  it('non-broadcastable elementwise operands', () => {
    tidy(() => {
      const a = t([2, 3]);
      const b = t([4]);
      expect(errorOf(() => F.add(a, b))).toMatch(/^add: shapes \[2,3\] and \[4\] do not broadcast \(axis 1\)/);
      expect(errorOf(() => F.mul(t([2, 3]), t([3, 3])))).toMatch(/^mul: .*\[2,3\].*\[3,3\].*axis 0/);
      expect(errorOf(() => F.maximum(t([5]), t([2, 1, 4])))).toMatch(/^maximum: .*\[5\].*\[2,1,4\]/);
      expect(errorOf(() => F.where(t([3]), t([2]), t([3])))).toMatch(/^where: .*\[2\].*\[3\]/);
      expect(errorOf(() => F.expand(t([3, 2]), [3, 4]))).toMatch(/^expand: .*\[3,2\].*\[3,4\]/);
      expect(errorOf(() => F.expand(t([3]), [1]))).toMatch(/^expand: \[3\] cannot expand to \[1\]/);
    });
  });

  it('matmul: inner dimensions, batches, rank and bias', () => {
    tidy(() => {
      expect(errorOf(() => F.matmul(t([2, 3]), t([4, 5])))).toMatch(/^matmul: inner dimensions differ: \[2,3\] · \[4,5\] \(3 vs 4\)/);
      expect(errorOf(() => F.matmul(t([3, 2]), t([3, 5]), { transA: false, transB: true }))).toMatch(/^matmul: .*\[3,2\].*\[3,5\]ᵀ/);
      expect(errorOf(() => F.matmul(t([2, 3, 4]), t([3, 4, 5])))).toMatch(/^matmul: batch dimensions \[2\] and \[3\]/);
      expect(errorOf(() => F.matmul(t([4]), t([4, 5])))).toMatch(/^matmul: .*rank.*\[4\].*\[4,5\]/);
      expect(errorOf(() => F.matmul(t([2, 3]), t([3, 5]), { bias: t([4]) }))).toMatch(/^matmul: bias .*\[4\].*5/);
      expect(errorOf(() => F.matmul(t([2, 3]), t([3, 5]), { bias: t([5]), biasMode: 'row' }))).toMatch(/^matmul: bias .*\[5\].*2.*row/);
    });
  });

  it('reshape / view to a different number of elements', () => {
    tidy(() => {
      expect(errorOf(() => F.reshape(t([2, 3]), [4]))).toMatch(/^reshape: cannot view \[2,3\] \(6 elements\) as \[4\]/);
      expect(errorOf(() => F.reshape(t([2, 3]), [-1, 4]))).toMatch(/^reshape: .*\[2,3\].*\[-1,4\]/);
      expect(errorOf(() => t([2, 3]).view([7]))).toMatch(/reshape: .*\[2,3\].*\[7\]/);
    });
  });

  it('permute / transpose with a bad axis list', () => {
    tidy(() => {
      expect(errorOf(() => F.permute(t([2, 3]), [0, 0]))).toMatch(/^permute: \[0,0\] is not a permutation of the axes of \[2,3\]/);
      expect(errorOf(() => F.permute(t([2, 3]), [1, 0, 2]))).toMatch(/^permute: \[1,0,2\].*\[2,3\]/);
      expect(errorOf(() => F.permute(t([2, 3]), [1, 2]))).toMatch(/^permute: \[1,2\].*\[2,3\]/);
      expect(errorOf(() => F.transpose(t([2, 3]), 0, 2))).toMatch(/^transpose: axes 0,2 out of range for \[2,3\]/);
    });
  });

  it('concat with mismatched shapes, ranks or an axis out of range', () => {
    tidy(() => {
      expect(errorOf(() => F.concat([t([2, 3]), t([3, 4])], 0))).toMatch(/^concat: shapes \[2,3\], \[3,4\] differ outside axis 0/);
      expect(errorOf(() => F.concat([t([2, 3]), t([2, 3, 1])], 1))).toMatch(/^concat: .*\[2,3\], \[2,3,1\]/);
      expect(errorOf(() => F.concat([t([2, 3]), t([2, 3])], 2))).toMatch(/^concat: axis 2 out of range for \[2,3\], \[2,3\]/);
      expect(errorOf(() => F.concat([], 0))).toMatch(/^concat: no tensors/);
    });
  });

  it('slice out of range', () => {
    tidy(() => {
      const x = t([4, 6]);
      expect(errorOf(() => F.slice(x, 1, 5, 2))).toMatch(/^slice: \[5:2\] out of range for axis 1 of \[4,6\]/);
      expect(errorOf(() => F.slice(x, 0, -9, 2))).toMatch(/^slice: \[-9:2\] .*axis 0 of \[4,6\]/);
      expect(errorOf(() => F.slice(x, 0, 7, 9))).toMatch(/^slice: \[7:9\] .*\[4,6\]/);
      expect(errorOf(() => F.slice(x, 2, 0, 1))).toMatch(/^slice: axis 2 out of range for \[4,6\]/);
    });
  });

  it('reduction / softmax / index axis out of range, repeated axes', () => {
    tidy(() => {
      const x = t([2, 3]);
      expect(errorOf(() => F.sum(x, 2))).toMatch(/^sum: axis 2 is out of range for shape \[2,3\]/);
      expect(errorOf(() => F.mean(x, [-3]))).toMatch(/^mean: axis -3 .*\[2,3\]/);
      expect(errorOf(() => F.variance(x, [0, 5]))).toMatch(/^var: axis 5 .*\[2,3\]/);
      expect(errorOf(() => F.max(x, 2))).toMatch(/^max: axis 2 .*\[2,3\]/);
      expect(errorOf(() => F.sum(x, [1, -1]))).toMatch(/^sum: repeated axis in \[1,-1\]/);
      expect(errorOf(() => F.softmax(x, 2))).toMatch(/^softmax: axis 2 out of range for \[2,3\]/);
      expect(errorOf(() => F.logSoftmax(x, -3))).toMatch(/^log_softmax: axis -3 .*\[2,3\]/);
      expect(errorOf(() => F.indexSelect(x, 2, [0]))).toMatch(/^index_select: axis 2 out of range for \[2,3\]/);
      expect(errorOf(() => F.indexAdd(x, -3, [0, 1], 4))).toMatch(/^index_add: axis -3 .*\[2,3\]/);
    });
  });

  it('Tensor.from with the wrong number of values, invalid shapes', () => {
    expect(errorOf(() => Tensor.from([1, 2, 3], [2, 2]))).toMatch(/^Tensor\.from: 3 values do not fill shape \[2,2\]/);
    expect(errorOf(() => Tensor.empty([2, -1]))).toMatch(/invalid shape \[2,-1\]/);
    expect(errorOf(() => Tensor.empty([1.5]))).toMatch(/invalid shape \[1\.5\]/);
  });
});

describe('dtype mismatch', () => {
  it('f32 ops on i32 tensors name the op, the shape and the dtype', () => {
    tidy(() => {
      const i = t([2, 3], 'i32');
      const f = t([2, 3]);
      for (const [name, op] of [
        ['add', () => F.add(i, f)],
        ['exp', () => F.exp(i)],
        ['where', () => F.where(i, f, f)],
        ['matmul', () => F.matmul(f, t([3, 2], 'i32'))],
        ['sum', () => F.sum(i)],
        ['mean', () => F.mean(i, 0)],
        ['max', () => F.max(i, 1)],
        ['softmax', () => F.softmax(i)],
        ['log_softmax', () => F.logSoftmax(i, 0)],
        ['index_select', () => F.indexSelect(i, 0, [1])],
        ['index_add', () => F.indexAdd(i, 0, [1, 0], 2)],
      ] as const) {
        expect(errorOf(op), name).toMatch(new RegExp(`^${name}: .*\\[(2,3|3,2)\\] i32`));
      }
    });
  });

  it('an f32 index tensor, toInt32Array of an f32 tensor', async () => {
    tidy(() => {
      const x = t([4, 2]);
      expect(errorOf(() => F.indexSelect(x, 0, t([2])))).toMatch(/^index_select: index must be an i32 tensor, got .*\[2\] f32/);
      expect(errorOf(() => F.indexAdd(x, 0, t([4]), 3))).toMatch(/^index_add: index must be an i32 tensor, got .*\[4\] f32/);
      expect(errorOf(() => F.inverseIndex(t([4]), 3))).toMatch(/^inverseIndex: indices must be i32, got .*\[4\] f32/);
    });
    const x = t([3]);
    await expect(x.toInt32Array()).rejects.toThrow(/^toInt32Array: .*\[3\] f32 is not an integer tensor/);
    x.release();
  });
});

describe('indices given as arrays are checked', () => {
  it('out-of-range entries name the op, the position, the value, the range and the shape', () => {
    tidy(() => {
      const x = t([5, 3]);
      expect(errorOf(() => F.indexSelect(x, 0, [0, 4, 5]))).toMatch(/^index_select: index\[2\] = 5 is out of range \[0, 5\) for axis 0 of .*\[5,3\]/);
      expect(errorOf(() => F.indexSelect(x, 1, [-1]))).toMatch(/^index_select: index\[0\] = -1 .*\[0, 3\).*axis 1 of .*\[5,3\]/);
      expect(errorOf(() => F.indexSelect(x, 0, [1.5]))).toMatch(/^index_select: index\[0\] = 1\.5/);
      expect(errorOf(() => F.indexAdd(x, 0, [0, 1, 2, 9, 0], 4))).toMatch(/^index_add: index\[3\] = 9 is out of range \[0, 4\) for 4 rows on axis 0 \(source .*\[5,3\]/);
      expect(errorOf(() => F.indexAdd(x, 0, [0, 1], 4))).toMatch(/^index_add: source \[5,3\] has 5 rows on axis 0, index has 2/);
    });
  });
});

describe('use after release', () => {
  it('a released tensor passed to an op names the op and the tensor', () => {
    const x = t([2, 3]);
    const y = t([2, 3]);
    x.release();
    tidy(() => {
      expect(errorOf(() => F.add(x, y))).toMatch(/^add: .*\[2,3\] f32 .*used after release/);
      expect(errorOf(() => F.exp(x))).toMatch(/^exp: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.matmul(x, t([3, 2])))).toMatch(/^matmul: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.sum(x))).toMatch(/^sum: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.max(x, 0))).toMatch(/^max: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.softmax(x, 0))).toMatch(/^softmax: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.reshape(x, [6]))).toMatch(/^reshape: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.permute(x, [1, 0]))).toMatch(/^permute \[2,3\] -> \[3,2\]: .*\[2,3\].*used after release/);
      expect(errorOf(() => F.slice(x, 0, 0, 1))).toMatch(/^slice .*\[2,3\].*used after release/);
      expect(errorOf(() => F.concat([y, x], 0))).toMatch(/^concat .*\[2,3\].*used after release/);
      expect(errorOf(() => F.indexSelect(x, 0, [1]))).toMatch(/^index_select: .*\[2,3\].*used after release/);
    });
    y.release();
  });

  it('toArray / item / write after release name the call and the tensor', async () => {
    const x = t([2, 3]);
    x.release();
    x.release(); // idempotent
    await expect(x.toArray()).rejects.toThrow(/^toArray: .*\[2,3\] f32.*used after release/);
    await expect(x.item()).rejects.toThrow(/\[2,3\]/);
    expect(() => x.write([1, 2, 3, 4, 5, 6])).toThrow(/^write: .*\[2,3\].*used after release/);
  });

  it('a tensor released by its scope cannot be used afterwards', async () => {
    let inner: Tensor | null = null;
    tidy(() => {
      inner = F.exp(t([4]));
      return null;
    });
    expect(inner!.released).toBe(true);
    await expect(inner!.toArray()).rejects.toThrow(/^toArray: .*\[4\].*used after release/);
  });
});

describe('backward misuse', () => {
  it('backward on a non-scalar without a gradient, a mismatched gradient, or a tensor without grad', () => {
    const x = t([2, 3]).param('x');
    tidy(() => {
      const y = F.exp(x);
      expect(errorOf(() => backward(y))).toMatch(/^backward: .*\[2,3\] f32 is not a scalar; pass the output gradient/);
      expect(errorOf(() => backward(y, t([5])))).toMatch(/^backward: gradient .*\[5\].*does not match .*\[2,3\]/);
      expect(errorOf(() => backward(t([1])))).toMatch(/^backward: .*\[1\] f32 does not require grad/);
    });
    x.release();
  });
});
