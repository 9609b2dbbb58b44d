/**
 * Gradient definitions for the kernels our models differentiate through.
 *
 * Why this file exists: tfjs-core's Node bundle (dist/tf-core.node.js) registers no gradients at all; the full
 * set lives in dist/register_all_gradients.js, an ES module with extension-less imports that plain Node cannot
 * load (only the monolithic `@tensorflow/tfjs` package bundles it for Node). Rather than pull in that package or
 * depend on a loader transpiling tfjs-core's ESM build, we register the few gradients we need, written from the
 * standard derivative rules. A gradient that is already registered (e.g. because `@tensorflow/tfjs` or
 * tfjs-node was loaded) is left alone. test/ml-gradients.test.ts checks each one against finite differences.
 *
 * A model that needs another kernel's gradient fails loudly in tape.ts ("gradient function not found for X"):
 * add it here with a test.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  conv2dPadding,
  maxPoolInputGrad,
  type Conv2DGradAttrs,
  type MaxPoolGradAttrs,
} from './ops/conv.js';

type Attrs = tf.NamedAttrMap;

/** Sums dy over the axes along which `inShape` was broadcast to dy's shape, and restores inShape. */
export function unbroadcast(dy: tf.Tensor, inShape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(inShape, dy.shape);
  const reduced = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(reduced, inShape);
}

/** dy of a reduction, broadcast back over the reduced axes of x. */
export function expandReduced(dy: tf.Tensor, xShape: number[], attrs: Attrs): tf.Tensor {
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], xShape);
  const kept = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(xShape, 'float32'));
}

function swapLastTwo(t: tf.Tensor): tf.Tensor {
  const r = t.rank;
  const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
  return tf.transpose(t, perm);
}

export function single(dy: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(dy)) throw new Error('internal: expected a single upstream gradient');
  return dy;
}

export function saved(s: tf.Tensor[], i: number): tf.Tensor {
  const t = s[i];
  if (!t) throw new Error(`internal: saved tensor ${i} missing`);
  return t;
}

const CONFIGS: tf.GradConfig[] = [
  {
    kernelName: tf.Add,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s) => ({
      a: () => unbroadcast(single(dy), saved(s, 0).shape),
      b: () => unbroadcast(single(dy), saved(s, 1).shape),
    }),
  },
  {
    kernelName: tf.Sub,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s) => ({
      a: () => unbroadcast(single(dy), saved(s, 0).shape),
      b: () => tf.neg(unbroadcast(single(dy), saved(s, 1).shape)),
    }),
  },
  {
    kernelName: tf.Multiply,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s) => ({
      a: () => unbroadcast(tf.mul(single(dy), tf.cast(saved(s, 1), 'float32')), saved(s, 0).shape),
      b: () => unbroadcast(tf.mul(single(dy), tf.cast(saved(s, 0), 'float32')), saved(s, 1).shape),
    }),
  },
  { kernelName: tf.Neg, gradFunc: (dy) => ({ x: () => tf.neg(single(dy)) }) },
  {
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, s, attrs) => ({ x: () => expandReduced(single(dy), saved(s, 0).shape, attrs) }),
  },
  {
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, s, attrs) => ({
      x: () => {
        const shape = saved(s, 0).shape;
        const axes = tf.util.parseAxisParam(attrs.axis as number | number[], shape);
        const count = axes.reduce((n, a) => n * (shape[a] as number), 1);
        return tf.div(expandReduced(single(dy), shape, attrs), tf.scalar(count));
      },
    }),
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.reshape(single(dy), saved(s, 0).shape) }),
  },
  {
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    // Zero where x <= 0, like tfjs' own (step(x) is 0 at 0). One Step kernel instead of Greater + Cast: on wasm
    // ~20 ms vs 60-100 ms for a [128, 28, 28, 64] activation. Same values, except that a NaN x now passes NaN on.
    gradFunc: (dy, s) => ({
      x: () => tf.mul(single(dy), tf.step(tf.cast(saved(s, 0), 'float32'))),
    }),
  },
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, s, attrs) => {
      const g = single(dy);
      const a = saved(s, 0);
      const b = saved(s, 1);
      if (a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join()) {
        throw new Error('BatchMatMul gradient: broadcast batch dimensions are not supported');
      }
      const tA = attrs.transposeA === true;
      const tB = attrs.transposeB === true;
      // On wasm, XNNPACK only serves untransposed operands: a 16x300 by 300x784 product took 2.6 ms with the
      // transpose materialised vs 29 ms with the flag. The cpu and native kernels are faster with the flags.
      if (tf.getBackend() === 'wasm') {
        const T = swapLastTwo;
        const mm = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y);
        if (!tA && !tB) return { a: () => mm(g, T(b)), b: () => mm(T(a), g) };
        if (!tA && tB) return { a: () => mm(g, b), b: () => mm(T(g), a) };
        if (tA && !tB) return { a: () => mm(b, T(g)), b: () => mm(a, g) };
        return { a: () => mm(T(b), T(g)), b: () => mm(T(g), T(a)) };
      }
      if (!tA && !tB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!tA && tB) return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
      if (tA && !tB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
  {
    kernelName: tf.Exp,
    outputsToSave: [true],
    gradFunc: (dy, s) => ({ x: () => tf.mul(single(dy), saved(s, 0)) }),
  },
  {
    kernelName: tf.Log,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.div(single(dy), tf.cast(saved(s, 0), 'float32')) }),
  },
  {
    kernelName: tf.Square,
    inputsToSave: ['x'],
    gradFunc: (dy, s) => ({ x: () => tf.mul(single(dy), tf.mul(tf.cast(saved(s, 0), 'float32'), 2)) }),
  },
  {
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, s, attrs) => {
      const g = single(dy) as tf.Tensor4D;
      const x = saved(s, 0) as tf.Tensor4D;
      const filter = saved(s, 1) as tf.Tensor4D;
      const pad = conv2dPadding(x.shape, filter.shape, attrs as unknown as Conv2DGradAttrs);
      // wasm's Conv2DBackpropInput is a plain loop; elsewhere the backend's own kernel is the faster one.
      const via = tf.getBackend() === 'wasm' ? 'conv' : 'kernel';
      return {
        x: () => conv2dInputGrad(g, filter, x.shape, pad, via),
        filter: () => conv2dFilterGrad(x, g, filter.shape, pad),
      };
    },
  },
  {
    kernelName: tf.MaxPool,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, s, attrs) => ({
      x: () =>
        maxPoolInputGrad(
          single(dy) as tf.Tensor4D,
          saved(s, 0) as tf.Tensor4D,
          saved(s, 1) as tf.Tensor4D,
          attrs as unknown as MaxPoolGradAttrs,
        ),
    }),
  },
  {
    kernelName: tf.Rsqrt,
    outputsToSave: [true],
    // y = x^(-1/2): dy/dx = -y³ / 2.
    gradFunc: (dy, s) => ({
      x: () => tf.mul(single(dy), tf.mul(tf.mul(saved(s, 0), tf.square(saved(s, 0))), -0.5)),
    }),
  },
  {
    kernelName: tf.Slice,
    inputsToSave: ['x'],
    // The slice's gradient sits where it was cut from, zeros elsewhere.
    gradFunc: (dy, s, attrs) => ({
      x: () => {
        const x = saved(s, 0);
        const [begin = [], size = []] = tf.slice_util.parseSliceParams(
          x,
          attrs.begin as number[],
          attrs.size as number[],
        );
        const pads = x.shape.map((d, i) => [
          begin[i] as number,
          d - (begin[i] as number) - (size[i] as number),
        ]);
        return tf.pad(single(dy), pads as [number, number][]);
      },
    }),
  },
  {
    kernelName: tf.Transpose,
    gradFunc: (dy, _s, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return { x: () => tf.transpose(single(dy), inverse) };
    },
  },
  {
    kernelName: tf.Erf,
    inputsToSave: ['x'],
    // d/dx erf(x) = 2/√π · exp(-x²).
    gradFunc: (dy, s) => ({
      x: () => tf.mul(single(dy), tf.mul(tf.exp(tf.neg(tf.square(saved(s, 0)))), 2 / Math.sqrt(Math.PI))),
    }),
  },
  {
    kernelName: tf.Softmax,
    outputsToSave: [true],
    // y = softmax(x) along `dim`: dx = y ⊙ (dy − Σ_dim dy ⊙ y).
    gradFunc: (dy, s, attrs) => {
      const y = saved(s, 0);
      const g = single(dy);
      const dim = attrs.dim as number;
      return { logits: () => tf.mul(y, tf.sub(g, tf.sum(tf.mul(g, y), dim, true))) };
    },
  },
  {
    kernelName: tf.Concat,
    saveAllInputs: true,
    // Each input gets the slice of dy it was concatenated into.
    gradFunc: (dy, s, attrs) => {
      const axis = tf.util.parseAxisParam(
        attrs.axis as number,
        (saved(s, 0) as tf.Tensor).shape,
      )[0] as number;
      const sizes = s.map((t) => t.shape[axis] as number);
      const parts = tf.split(single(dy), sizes, axis);
      const out: Record<string, () => tf.Tensor> = {};
      parts.forEach((p, i) => (out[i] = () => p));
      return out;
    },
  },
  { kernelName: tf.Identity, gradFunc: (dy) => ({ x: () => tf.clone(single(dy)) }) },
  { kernelName: tf.Cast, gradFunc: (dy) => ({ x: () => tf.clone(single(dy)) }) },
];

/** The configuration registered here for `kernelName` (ml/second-order.ts reuses those that are twice-differentiable). */
export function gradientConfig(kernelName: string): tf.GradConfig {
  const c = CONFIGS.find((g) => g.kernelName === kernelName);
  if (!c) throw new Error(`internal: no gradient of ${kernelName} in ml/gradients.ts`);
  return c;
}

export const REGISTERED_GRADIENT_KERNELS: readonly string[] = CONFIGS.map((c) => c.kernelName);

let done = false;

/** Idempotent; ml/ modules that differentiate call it on import. */
export function registerGradients(): void {
  if (done) return;
  done = true;
  for (const c of CONFIGS) {
    if (!tf.getGradient(c.kernelName)) tf.registerGradient(c);
  }
}

registerGradients();
