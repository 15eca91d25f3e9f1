// Reverse-mode autograd as a tape: each op that sees an input requiring grad records a node with
// its inputs and a backward rule (written beside the op's forward kernel). backward() walks a
// topological order of the nodes and accumulates gradients; that is all there is to it. The
// kernels the walk itself needs (an add to accumulate, ones to seed, the split sums below) are given
// to it, so the engine depends on no kernel file: kernels/backward.ts binds them and exports the
// `backward` users call.
import { isGradEnabled, noGrad, keep } from './context.js';
import type { DType, Tensor, Shape } from './tensor.js';

/** A gradient home's value as the sum of a split reduction's chunks: dst = Σ_c src[c·stride …], c in order. */
export interface ChunkSum {
  src: Tensor;
  chunks: number;
  /** Values from one chunk's start to the next's. */
  stride: number;
  dst: Tensor;
}

/**
 * The arithmetic the tape walk needs: accumulate two gradients, the seed gradient of a scalar, and
 * the deferred chunk sums, `sumBatch` at a time (what one dispatch makes: the partials wait for
 * no more than that, so they add little to the peak memory).
 */
export interface GradArithmetic {
  add(a: Tensor, b: Tensor): Tensor;
  /** A gradient in its tensor's dtype (an f16 activation's gradient is f16, a parameter's f32). */
  cast(g: Tensor, dtype: DType): Tensor;
  ones(shape: Shape): Tensor;
  sumChunks(sums: readonly ChunkSum[]): void;
  sumBatch: number;
}

/**
 * Where a rule's input gradients may go without an extra dispatch. What the other uses of an input
 * have contributed so far: a rule whose kernel can add a tensor into its result takes input i's sum
 * and returns its gradient with the sum included (no separate add). And a leaf's gradient home (a
 * parameter's slot in its optimizer's flat gradient buffer): a rule writes the gradient there
 * directly (no gather into the flat buffer later).
 */
export interface PendingGrads {
  /** Input i's gradient so far (shaped as the input), now the rule's to include; null when none. */
  take(i: number): Tensor | null;
  /**
   * A tensor shaped as input i to write its whole gradient into, when the input is a leaf with a
   * gradient home and nothing else has contributed to its gradient; the rule must then return it
   * as input i's gradient. Null otherwise.
   */
  home(i: number): Tensor | null;
  /**
   * Fill `s.dst` (a home this rule took, which it returns as the gradient) with the sum of `s.src`'s
   * chunks before backward() returns, batched with the walk's other such sums. The walk owns
   * `s.src` from here (it releases it); nothing reads the home before the sum.
   */
  sumLater(s: ChunkSum): void;
}

export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Given d(loss)/d(out), return d(loss)/d(input) for each input (null where none is needed). */
  backward: (grad: Tensor, pending: PendingGrads) => (Tensor | null)[];
}

/** Attach a backward rule to `out` when grad mode is on and some input requires grad. */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/** Stop gradients: a view of `t` that is a leaf without grad. */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape);
}

/** Tensors whose node a backward() consumed: reaching one again means its graph is gone. */
const freed = new WeakSet<Tensor>();

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: nets are deep enough to overflow a recursive one.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order.reverse();
}

/**
 * Accumulate d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad. `grad` defaults to
 * ones for a scalar root. Intermediate gradients are released as soon as they are consumed, and the
 * graph is freed (nodes dropped) so that a second backward through it is an error, as in PyTorch.
 */
export function backwardWith(arith: GradArithmetic, root: Tensor, grad?: Tensor): void {
  const { add } = arith;
  if (!root.requiresGrad) throw new Error(`backward: ${root.describe()} does not require grad`);
  if (!grad && root.size !== 1) {
    throw new Error(`backward: ${root.describe()} is not a scalar; pass the output gradient`);
  }
  if (grad && grad.size !== root.size) {
    throw new Error(`backward: gradient ${grad.describe()} does not match ${root.describe()}`);
  }
  const order = topoSort(root);
  // Without this check a freed op output would pass for a leaf: gradients would silently stop there.
  const stale = order.find((t) => !t.node && freed.has(t));
  if (stale) {
    throw new Error(`backward: ${stale.describe()} comes from a graph that an earlier backward() already freed; recompute it`);
  }
  noGrad(() => {
    // Every gradient in `grads` is owned here (the caller's `grad` enters as a view of it).
    // A gradient in `x`'s dtype (a rule always gets its output's, an input its own): cast, the
    // original released.
    const inDtype = (g: Tensor, x: Tensor): Tensor => {
      if (g.dtype === x.dtype) return g;
      const c = arith.cast(g, x.dtype);
      g.release();
      return c;
    };
    const grads = new Map<Tensor, Tensor>([[root, inDtype(grad ? grad.view(root.shape) : arith.ones(root.shape), root)]]);
    const later: ChunkSum[] = [];
    const settle = () => {
      if (!later.length) return;
      arith.sumChunks(later);
      for (const s of later) s.src.release();
      later.length = 0;
    };
    // Before anything reads a gradient whose sum is still due (a parameter used twice), make the sums.
    const ready = (t: Tensor) => {
      if (later.some((s) => s.dst === t)) settle();
      return t;
    };
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.node;
      if (!node) {
        if (t.grad) {
          const acc = add(t.grad, g);
          t.grad.release();
          g.release();
          t.grad = keep(acc);
        } else {
          t.grad = keep(g);
        }
        continue;
      }
      const taken = new Map<number, Tensor>();
      const homes = new Map<number, Tensor>();
      const inGrads = node.backward(g, {
        take: (i) => {
          const x = node.inputs[i];
          const prev = grads.get(x);
          if (!prev || !x.requiresGrad || [...taken.values()].includes(prev)) return null;
          taken.set(i, prev);
          return ready(prev);
        },
        home: (i) => {
          const x = node.inputs[i];
          const claimed = [...homes.keys()].some((j) => node.inputs[j] === x);
          if (x.node || !x.requiresGrad || !x.gradHome || x.grad || grads.has(x) || claimed) return null;
          const h = x.gradHome();
          homes.set(i, h);
          return h;
        },
        sumLater: (s) => {
          if (![...homes.values()].includes(s.dst)) throw new Error(`backward of ${node.op}: sumLater into ${s.dst.describe()}, which is not a gradient home the rule took`);
          later.push(s);
          if (later.length >= arith.sumBatch) settle();
        },
      });
      for (const [i, h] of homes) {
        if (inGrads[i] !== h) throw new Error(`backward of ${node.op}: took input ${i}'s gradient home but returned ${inGrads[i]?.describe() ?? 'none'}`);
      }
      // A rule may pass `g` itself (or one tensor for two inputs) through: own each use as a view.
      const owned = new Set<Tensor>([g]);
      node.inputs.forEach((x, i) => {
        let gi = inGrads[i];
        const sum = taken.get(i);
        if (sum) {
          if (!gi || gi.size !== x.size || gi.dtype !== x.dtype) throw new Error(`backward of ${node.op}: took input ${i}'s pending gradient but returned ${gi?.describe() ?? 'none'}`);
          owned.add(gi);
          grads.set(x, gi.shape.join() === x.shape.join() ? gi : reshapeOwned(gi, x.shape));
          sum.release();
          return;
        }
        if (!gi) return;
        if (owned.has(gi)) gi = gi.view(gi.shape);
        owned.add(gi);
        if (!x.requiresGrad) {
          gi.release();
          return;
        }
        if (gi.size !== x.size) {
          throw new Error(`backward of ${node.op}: gradient ${gi.describe()} does not match input ${x.describe()}`);
        }
        gi = inDtype(gi, x);
        const prev = grads.get(x);
        if (prev) {
          grads.set(x, add(ready(prev), ready(gi)));
          prev.release();
          gi.release();
        } else {
          grads.set(x, gi.shape.join() === x.shape.join() ? gi : reshapeOwned(gi, x.shape));
        }
      });
      g.release();
      t.node = null;
      freed.add(t);
    }
    settle();
  });
}

function reshapeOwned(g: Tensor, shape: readonly number[]): Tensor {
  const v = g.view(shape);
  g.release();
  return v;
}
