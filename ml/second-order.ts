/**
 * Exact second derivatives on the TF.js tape: `withSecondOrder(fn)` runs `fn` with gradient definitions that are
 * themselves differentiable, so that a gradient taken inside `fn` can be differentiated again (Hessian-vector
 * products by double backward, ml/geometry/hessian.ts).
 *
 * Guarantees, inside `fn`:
 *  - every gradient registered here is written with kernels whose gradients are registered here too, and none
 *    reads a value back to the host, so a second backward pass sees the whole first one;
 *  - none uses a saved *output* (`outputsToSave`): TF.js records the copy it saves of an output before the op that
 *    makes it, so a second pass loses the path through it (silently: the saved value acts as a constant). Each
 *    recomputes what it needs from its inputs;
 *  - piecewise-constant factors (ReLU's step, max-pool's argmax, the logsumexp shift) are held fixed, which is
 *    autograd's convention on ReLU networks (PyTorch, PyHessian): the Hessian of the network with its activation
 *    pattern and pooling choices frozen at the point;
 *  - the ops of ml/ops that carry a hand-written first gradient (tf.customGrad, whose saved intermediates are
 *    constants to a second pass) compute with plain differentiable ops instead (`secondOrderActive()`).
 * Outside `fn` the registry is exactly what it was: training keeps its gradients and its bytes.
 *
 * `fn` must be synchronous (the registry is process-wide; an await inside would let other code see it).
 * A kernel met inside `fn` whose gradient is missing fails with TF.js's "gradient function not found for X":
 * add X below, with a test against a float64 reference (test/ml-hessian-exact*.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';

import { gradientConfig, saved, single, unbroadcast } from './gradients.js';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  conv2dPadded,
  conv2dPadding,
  type Conv2DGradAttrs,
  type Padding4,
} from './ops/conv.js';

type Attrs = tf.NamedAttrMap;

let depth = 0;

/** True while `withSecondOrder` runs: ml/ops use their plain, twice-differentiable forms. */
export function secondOrderActive(): boolean {
  return depth > 0;
}

/**
 * `compute(...inputs)` as a constant of the tape: its value, with a zero gradient to every input. Its own ops are
 * not recorded (they run inside one custom kernel), so nothing behind it needs a gradient.
 */
export function frozen(compute: (...inputs: tf.Tensor[]) => tf.Tensor, ...inputs: tf.Tensor[]): tf.Tensor {
  const f = tf.customGrad((...args: unknown[]) => {
    args.pop(); // the save function: nothing to save
    const xs = args as tf.Tensor[];
    return {
      value: compute(...xs),
      gradFunc: () => xs.map((x) => tf.zeros(x.shape, x.dtype)),
    };
  });
  return f(...inputs);
}

/**
 * The filter gradient of a stride-1 Conv2D, F = Σ over batch and pixels of x ⊗ dy, with its own gradient. Left to the
 * tape it is a convolution whose "filter" is dy (the whole feature map): its gradient in x would be a convolution
 * by that map, H·W times the work of the layer (2.5 TFLOP per product for conv-2 on 1,000 images). F is bilinear, so
 * for an upstream G (filter-shaped): dx is the input gradient of a convolution by G, and d(dy) the convolution of x
 * by G: each the size of the layer's own forward pass.
 */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], pad: Padding4): tf.Tensor {
  const f = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xs, dys] = args as [tf.Tensor4D, tf.Tensor4D];
    // Saved: the engine keeps saved tensors for the backward pass (the upstream dy would be freed by then).
    save([xs, dys]);
    return {
      value: conv2dFilterGrad(xs, dys, filterShape, pad),
      gradFunc: (upstream: tf.Tensor | tf.Tensor[], kept: tf.Tensor[]) => {
        const [xk, dyk] = kept as [tf.Tensor4D, tf.Tensor4D];
        const g = single(upstream) as tf.Tensor4D;
        return [conv2dInputGrad(dyk, g, xk.shape, pad, 'conv'), conv2dPadded(xk, g, pad)];
      },
    };
  });
  return f(x, dy);
}

/** Nearest-neighbour upsampling of [n, h, w, c] by whole factors (each value fills an sh × sw block). */
function upsample(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  const [, h, w] = t.shape;
  return tf.image.resizeNearestNeighbor(t, [h * sh, w * sw], false, true);
}

const GRADIENTS: tf.GradConfig[] = [
  // ml/gradients.ts' own, already written with kernels differentiated below.
  ...[
    tf.Add,
    tf.Sub,
    tf.Neg,
    tf.Sum,
    tf.Mean,
    tf.Reshape,
    tf.Erf,
    tf.Slice,
    tf.Transpose,
    tf.Concat,
    tf.Identity,
    tf.Cast,
  ].map(gradientConfig),
  {
    kernelName: tf.Multiply,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s) => ({
      a: () => unbroadcast(tf.mul(single(dy), saved(s, 1)), saved(s, 0).shape),
      b: () => unbroadcast(tf.mul(single(dy), saved(s, 0)), saved(s, 1).shape),
    }),
  },
  {
    kernelName: tf.RealDiv,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s) => {
      const [a, b] = [saved(s, 0), saved(s, 1)];
      return {
        a: () => unbroadcast(tf.div(single(dy), b), a.shape),
        b: () => unbroadcast(tf.neg(tf.div(tf.mul(single(dy), a), tf.square(b))), b.shape),
      };
    },
  },
  {
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    // The step is the activation pattern, held fixed.
    gradFunc: (dy, s) => ({
      x: () =>
        tf.mul(
          single(dy),
          frozen((x) => tf.step(x), saved(s, 0)),
        ),
    }),
  },
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s, attrs: Attrs) => {
      const [g, a, b] = [single(dy), saved(s, 0), saved(s, 1)];
      if (a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join()) {
        throw new Error('BatchMatMul gradient: broadcast batch dimensions are not supported');
      }
      const tA = attrs.transposeA === true;
      const tB = attrs.transposeB === true;
      if (!tA && !tB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!tA && tB) return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
      if (tA && !tB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
  {
    kernelName: tf.Exp,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.mul(single(dy), tf.exp(saved(s, 0))) }),
  },
  {
    kernelName: tf.Log,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.div(single(dy), saved(s, 0)) }),
  },
  {
    kernelName: tf.Square,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.mul(single(dy), tf.mul(saved(s, 0), 2)) }),
  },
  {
    kernelName: tf.Rsqrt,
    inputsToSave: ['x'],
    // y = x^(-1/2): dy/dx = -y³ / 2.
    gradFunc: (dy, s) => ({
      x: () => {
        const y = tf.rsqrt(saved(s, 0));
        return tf.mul(single(dy), tf.mul(tf.mul(y, tf.square(y)), -0.5));
      },
    }),
  },
  {
    kernelName: tf.Softmax,
    inputsToSave: ['logits'],
    gradFunc: (dy, s, attrs: Attrs) => ({
      logits: () => {
        const [y, g] = [tf.softmax(saved(s, 0), attrs.dim as number), single(dy)];
        return tf.mul(y, tf.sub(g, tf.sum(tf.mul(g, y), attrs.dim as number, true)));
      },
    }),
  },
  {
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    // Both gradients as forward convolutions (ml/ops/conv.ts), whose gradients are this one again.
    gradFunc: (dy, s, attrs: Attrs) => {
      const [g, x, filter] = [
        single(dy) as tf.Tensor4D,
        saved(s, 0) as tf.Tensor4D,
        saved(s, 1) as tf.Tensor4D,
      ];
      const pad = conv2dPadding(x.shape, filter.shape, attrs as unknown as Conv2DGradAttrs);
      return {
        x: () => conv2dInputGrad(g, filter, x.shape, pad, 'conv'),
        filter: () => filterGradient(x, g, filter.shape, pad),
      };
    },
  },
  {
    kernelName: tf.MaxPool,
    inputsToSave: ['x'],
    // Non-overlapping windows: dy goes to the window's maxima (split evenly among ties), the argmax held fixed.
    gradFunc: (dy, s, attrs: Attrs) => {
      const x = saved(s, 0) as tf.Tensor4D;
      const info = tf.backend_util.computePool2DInfo(
        x.shape,
        attrs.filterSize as number | [number, number],
        attrs.strides as number | [number, number],
        1,
        attrs.pad as 'valid',
      );
      const { top, bottom, left, right } = info.padInfo;
      const [sh, sw] = [info.strideHeight, info.strideWidth];
      if (info.filterHeight !== sh || info.filterWidth !== sw || top + bottom + left + right !== 0) {
        throw new Error('MaxPool second derivatives: only non-overlapping, unpadded windows are supported');
      }
      const [n, h, w, c] = x.shape;
      const [ch, cw] = [info.outHeight * sh, info.outWidth * sw];
      const [hit, ties] = [0, 1].map((i) =>
        frozen((xs) => {
          const y = tf.maxPool(xs as tf.Tensor4D, [sh, sw], [sh, sw], 'valid');
          const covered = ch === h && cw === w ? xs : tf.slice(xs, [0, 0, 0, 0], [n, ch, cw, c]);
          const at = tf.cast(tf.equal(covered, upsample(y, sh, sw)), 'float32');
          return i === 0
            ? at
            : tf.round(tf.mul(tf.avgPool(at as tf.Tensor4D, [sh, sw], [sh, sw], 'valid'), sh * sw));
        }, x),
      ) as [tf.Tensor4D, tf.Tensor4D];
      return {
        x: () => {
          const g = tf.mul(hit, upsample(tf.div(single(dy), ties) as tf.Tensor4D, sh, sw));
          if (ch === h && cw === w) return g;
          return tf.pad(g, [
            [0, 0],
            [0, h - ch],
            [0, w - cw],
            [0, 0],
          ]);
        },
      };
    },
  },
  {
    kernelName: tf.ResizeNearestNeighbor,
    inputsToSave: ['images'],
    // Only as `upsample` uses it (whole factors, half-pixel centres): each input value fills one block.
    gradFunc: (dy, s) => ({
      images: () => {
        const [, h, w] = saved(s, 0).shape as [number, number, number, number];
        const g = single(dy) as tf.Tensor4D;
        const [sh, sw] = [g.shape[1] / h, g.shape[2] / w];
        if (!Number.isInteger(sh) || !Number.isInteger(sw)) {
          throw new Error('ResizeNearestNeighbor second derivatives: only whole upsampling factors');
        }
        return tf.mul(tf.avgPool(g, [sh, sw], [sh, sw], 'valid'), sh * sw);
      },
    }),
  },
  {
    kernelName: tf.PadV2,
    inputsToSave: ['x'],
    gradFunc: (dy, s, attrs: Attrs) => ({
      x: () => {
        const x = saved(s, 0);
        const begin = (attrs.paddings as [number, number][]).map((p) => p[0]);
        return tf.slice(single(dy), begin, x.shape);
      },
    }),
  },
  {
    kernelName: tf.Reverse,
    gradFunc: (dy, _s, attrs: Attrs) => ({ x: () => tf.reverse(single(dy), attrs.dims as number[]) }),
  },
  {
    kernelName: tf.SplitV,
    // Several outputs: each part's upstream gradient, concatenated back (absent ones are zeros, from the engine).
    gradFunc: (dy, _s, attrs: Attrs) => ({ x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number) }),
  },
];

export const SECOND_ORDER_KERNELS: readonly string[] = GRADIENTS.map((g) => g.kernelName);

/** Runs `fn` with the gradients above in place of the registered ones, and restores those after. */
export function withSecondOrder<T>(fn: () => T): T {
  const before = GRADIENTS.map((g) => tf.getGradient(g.kernelName));
  if (depth === 0) for (const g of GRADIENTS) tf.registerGradient(g);
  depth++;
  try {
    const out = fn();
    if (out instanceof Promise) throw new Error('internal: withSecondOrder takes a synchronous function');
    return out;
  } finally {
    depth--;
    if (depth === 0) {
      GRADIENTS.forEach((g, i) => {
        const prior = before[i];
        if (prior) tf.registerGradient(prior);
        else tf.unregisterGradient(g.kernelName);
      });
    }
  }
}

/**
 * Σ over a batch of softmax cross-entropy against one-hot labels, as logsumexp(z) − Σ y·z with the shift of the
 * logsumexp held fixed: twice differentiable with the gradients above (the fused kernels' gradients are not).
 */
export function crossEntropySum(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  const shift = frozen((z) => tf.max(z, 1, true), logits);
  const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, shift)), 1, true)), shift);
  return tf.sum(tf.sub(tf.reshape(lse, [-1]), tf.sum(tf.mul(oneHot, logits), 1)));
}
