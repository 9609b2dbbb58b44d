/**
 * Involution (Li, Hu, Wang, He, Zhang, Chen: "Involution: Inverting the Inherence of Convolution for Visual
 * Recognition", CVPR 2021): stride 1, 'same' zero padding, odd kernel size K.
 *
 * A convolution shares one kernel over all pixels and mixes channels; involution does the opposite. Each pixel
 * gets its own K×K kernel per channel group, generated from that pixel's own feature vector, and every channel
 * of a group (C/G of them) is aggregated over its K×K neighbourhood with that group's kernel:
 *
 *   kernel[n, h, w, :] = W2ᵀ · relu(rms(W1ᵀ · x[n, h, w, :] + b1)) + b2          (C → C/r → G·K² per pixel)
 *   y[n, h, w, c]      = Σ_{i, j < K} kernel[n, h, w, g(c)·K² + i·K + j] · x[n, h + i − p, w + j − p, c]
 *
 * with p = (K − 1) / 2, g(c) = floor(c / (C/G)), x zero outside the image, and rms(v) = v / sqrt(mean(v²) + ε)
 * over the C/r channels of one pixel. The kernel's channel order (group-major, then the K² taps row-major) is
 * that of the reference implementation, whose `weight.view(b, groups, K*K, h, w)` reads the same layout in NCHW.
 *
 * Normalisation: the paper puts batch norm between the two 1×1 convolutions. We use a per-pixel RMS norm there
 * instead (RMSNorm, Zhang & Sennrich 2019, without a gain: W2 is one): it is per sample, the same in training
 * and evaluation, needs no running statistics outside the parameters, and is deterministic. It matters because
 * involution is second order in x (the kernel is computed from x, then multiplies x): without it the output's
 * scale would be the square of the input's, compounding over blocks. With it, the kernel's scale is set by W2.
 *
 * Everything is built from kernels every backend has (MatMul, Pad, Slice, Multiply, Add, Sum, Rsqrt, Transpose,
 * Reshape), so it trains on native TensorFlow, wasm and cpu alike:
 *  - the 1×1 convolutions are matMuls over the pixels, whose gradient is ml/gradients.ts' BatchMatMul one (no
 *    Conv2DBackpropFilter, which wasm lacks);
 *  - the aggregation pads x once and sums K² products of shifted slices of it with the matching kernel tap,
 *    broadcast over the channels of each group. Its gradient is written out (tf.customGrad), from one shifted
 *    window of dy per tap: the input gradient is the aggregation run backwards (dy and the tap both read at the
 *    mirrored shift), each tap's gradient the group's channel-sum of that same dy window times x, shifted back
 *    (small: G channels, not C). Left to the tape, every tap's gradient would go through Slice's gradient, a
 *    pad to the whole padded input, and K² adds of those.
 *
 * Layout. The aggregation computes channels first, [C, H, W, N] ("CHWN"), because of how the wasm backend
 * slices: its Slice kernel is JavaScript that copies the whole input out of the wasm heap, then copies the
 * window one contiguous run at a time, and for 5 or more dimensions goes element by element. For a
 * [128, 14, 14, 32] window of a 1-padded input, on the 2-core dev machine (medians): NHWC, N·H·W runs of C
 * floats, 7.9 ms; CHWN, C·H runs of W·N floats, 4.9 ms; a 5-d [N, H, W, G, C/G] view, 0.77 s; a multiply of
 * that size costs 2.2 ms. A rank-5 transpose (0.6 s) or a row gather (69 ms) was no way out. For the same
 * reason the kernel is produced one tap at a time, [G, H, W, N] per tap, by a matMul of that tap's rows of W2:
 * cutting K² taps out of one [G·K², ...] tensor would copy the whole tensor K² times. In CHWN a 1×1
 * convolution is W1ᵀ · x viewed as [C, H·W·N], and a 2×2 max pool is tf.maxPool on [C, H, W, N] (it pools the
 * two middle axes whatever the outer ones mean), so a network can stay channels-first from its first
 * involution to its head (ml/models/teachers.ts).
 *
 * `involution` and `involutionLayer` take and return NHWC like the rest of ml/ (they transpose at the edges);
 * `involutionCF` and `involutionLayerCF` are the channels-first forms the models use.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';
import { secondOrderActive } from '../second-order.js';

export interface InvolutionOptions {
  /** K, odd: each pixel aggregates its K×K neighbourhood. */
  kernelSize: number;
  /** G: channel groups; C must be a multiple of G. Each group has its own kernel per pixel. */
  groups: number;
}

/** ε of the RMS norm over the reduced channels. */
export const INVOLUTION_RMS_EPS = 1e-5;

/** Parameters of one involution layer (dense layouts, x @ W, like the rest of ml/models). */
export interface InvolutionWeights {
  /** [C, C/r]: the reducing 1×1 convolution. */
  reduce: tf.Tensor;
  /** [C/r] */
  reduceBias: tf.Tensor;
  /** [C/r, G·K²]: the 1×1 convolution that spans each pixel's kernels, columns group-major then tap. */
  span: tf.Tensor;
  /** [G·K²] */
  spanBias: tf.Tensor;
}

interface Geometry {
  c: number;
  h: number;
  w: number;
  n: number;
  k: number;
  g: number;
  pad: number;
}

function checkOptions(c: number, opts: InvolutionOptions): { k: number; g: number; pad: number } {
  const { kernelSize: k, groups: g } = opts;
  if (!Number.isInteger(k) || k < 1 || k % 2 !== 1) {
    throw new Error(`involution: kernelSize must be a positive odd integer, got ${k}`);
  }
  if (!Number.isInteger(g) || g < 1 || c % g !== 0) {
    throw new Error(`involution: ${c} channels do not split into ${g} groups`);
  }
  return { k, g, pad: (k - 1) / 2 };
}

/** NHWC <-> CHWN: swapping axes 0 and 3 is its own inverse. */
export function swapBatchAndChannels<T extends tf.Tensor4D>(x: T): T {
  return tf.transpose(x, [3, 1, 2, 0]);
}

const padHW = (t: tf.Tensor4D, p: number): tf.Tensor4D =>
  p === 0
    ? t
    : tf.pad(t, [
        [0, 0],
        [p, p],
        [p, p],
        [0, 0],
      ]);

/**
 * The aggregation, channels first: x [C, H, W, N], taps: K² tensors [G, H, W, N] (tap i·K + j weighs the
 * neighbour at row offset i − p, column offset j − p). Returns [C, H, W, N]. Differentiable in x and every tap.
 */
export function involutionCF(x: tf.Tensor4D, taps: tf.Tensor4D[], opts: InvolutionOptions): tf.Tensor4D {
  const [c, h, w, n] = x.shape;
  const geo: Geometry = { c, h, w, n, ...checkOptions(c, opts) };
  const { k, g } = geo;
  if (taps.length !== k * k)
    throw new Error(`involution: ${taps.length} kernel taps, expected K² = ${k * k}`);
  for (const [t, tap] of taps.entries()) {
    if (tap.shape.join() !== [g, h, w, n].join()) {
      throw new Error(
        `involution: tap ${t} is [${tap.shape.join(', ')}], expected [${[g, h, w, n].join(', ')}] ` +
          `(G, H, W, N) for x [${x.shape.join(', ')}] (C, H, W, N)`,
      );
    }
  }
  // The tape's own gradient of the plain ops when a second backward pass needs the first (ml/second-order.ts).
  if (secondOrderActive()) return aggregate(x, taps, geo);
  const f = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xs, ...ks] = args as tf.Tensor4D[];
    save([xs as tf.Tensor4D, ...ks]);
    return {
      value: aggregate(xs as tf.Tensor4D, ks, geo),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        if (Array.isArray(dy)) throw new Error('internal: involution has one output');
        const [xSaved, ...kSaved] = saved as tf.Tensor4D[];
        return backward(xSaved as tf.Tensor4D, kSaved, dy as tf.Tensor4D, geo);
      },
    };
  });
  return f(x, ...taps) as tf.Tensor4D;
}

/** [C, H, W, N] → [C, H + 2p, (W + 2p)·N], zero-padded: a shifted window is C·H runs of W·N floats. */
function padded(v: tf.Tensor4D, pad: number): tf.Tensor3D {
  const [c, h, w, n] = v.shape;
  return tf.reshape(padHW(v, pad), [c, h + 2 * pad, (w + 2 * pad) * n]);
}

/** The [C, H, W·N] window of a padded tensor whose top-left corner is (i, j) in padded coordinates. */
function window(vp: tf.Tensor3D, geo: Geometry, i: number, j: number): tf.Tensor3D {
  const { h, w, n } = geo;
  return tf.slice(vp, [0, i, j * n], [vp.shape[0], h, w * n]);
}

/** y[q] = Σ_t tap_t[q] · x[q + o_t], o_t = (i − p, j − p) the offset of tap t = i·K + j from the centre. */
function aggregate(x: tf.Tensor4D, taps: tf.Tensor4D[], geo: Geometry): tf.Tensor4D {
  const { c, h, w, n, k, g, pad } = geo;
  const hwn = h * w * n;
  const xp = padded(x, pad);
  let acc: tf.Tensor | null = null;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const win = tf.reshape(window(xp, geo, i, j), [g, c / g, hwn]);
      const term = tf.mul(win, tf.reshape(taps[i * k + j] as tf.Tensor4D, [g, 1, hwn]));
      acc = acc === null ? term : tf.add(acc, term);
    }
  }
  return tf.reshape(acc as tf.Tensor, [c, h, w, n]);
}

/**
 * Gradients of y = aggregate(x, taps) for upstream dy, from one shifted window of dy per tap (the expensive
 * part on wasm, see above): with D_t[q] = dy[q − o_t] (zero outside the image),
 *   dx[q]           = Σ_t D_t[q] · tap_t[q − o_t]                (the tap is small: G channels, not C)
 *   dtap_t[q − o_t] = Σ_{c in the group} D_t[c, q] · x[c, q]     (shifted back by +o_t afterwards).
 * D_t is dy's window at (2p − i, 2p − j) in padded coordinates; a tap is read at −o_t there too, and the
 * channel sum, computed at q, is read at q + o_t: the window at (i, j) of its padded form.
 */
function backward(x: tf.Tensor4D, taps: tf.Tensor4D[], dy: tf.Tensor4D, geo: Geometry): tf.Tensor4D[] {
  const { c, h, w, n, k, g, pad } = geo;
  const hwn = h * w * n;
  const dyp = padded(dy, pad);
  const xg = tf.reshape(x, [g, c / g, hwn]);
  let dx: tf.Tensor | null = null;
  const dtaps: tf.Tensor4D[] = [];
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const [mi, mj] = [2 * pad - i, 2 * pad - j];
      const d = tf.reshape(window(dyp, geo, mi, mj), [g, c / g, hwn]);
      const tapBack = window(padded(taps[i * k + j] as tf.Tensor4D, pad), geo, mi, mj);
      const part = tf.mul(d, tf.reshape(tapBack, [g, 1, hwn]));
      dx = dx === null ? part : tf.add(dx, part);
      const sumAtQ = tf.reshape(tf.sum(tf.mul(d, xg), 1), [g, h, w, n]) as tf.Tensor4D;
      dtaps.push(tf.reshape(window(padded(sumAtQ, pad), geo, i, j), [g, h, w, n]));
    }
  }
  return [tf.reshape(dx as tf.Tensor, [c, h, w, n]), ...dtaps];
}

function checkWeights(c: number, weights: InvolutionWeights, opts: InvolutionOptions): number {
  const { k, g } = checkOptions(c, opts);
  const [rc, red] = weights.reduce.shape as [number, number];
  const bad = (what: string, t: tf.Tensor, want: number[]) =>
    new Error(`involution: ${what} is [${t.shape.join(', ')}], expected [${want.join(', ')}]`);
  if (weights.reduce.rank !== 2 || rc !== c) throw bad('reduce', weights.reduce, [c, red]);
  if (weights.reduceBias.shape.join() !== String(red)) throw bad('reduceBias', weights.reduceBias, [red]);
  if (weights.span.shape.join() !== [red, g * k * k].join())
    throw bad('span', weights.span, [red, g * k * k]);
  if (weights.spanBias.shape.join() !== String(g * k * k))
    throw bad('spanBias', weights.spanBias, [g * k * k]);
  return red;
}

/**
 * The kernel taps of every pixel, channels first: x [C, H, W, N] → K² tensors [G, H, W, N], each from its own
 * rows of W2 (see the layout note above).
 */
export function involutionTapsCF(
  x: tf.Tensor4D,
  weights: InvolutionWeights,
  opts: InvolutionOptions,
): tf.Tensor4D[] {
  const [c, h, w, n] = x.shape;
  const red = checkWeights(c, weights, opts);
  const { k, g } = checkOptions(c, opts);
  return tf.tidy(() => {
    const pixels = tf.reshape(x, [c, h * w * n]);
    // [C/r, H·W·N]; the weights are tiny, so transposing them is free and keeps the big operand untransposed.
    const pre = tf.add(
      tf.matMul(tf.transpose(weights.reduce), pixels),
      tf.reshape(weights.reduceBias, [red, 1]),
    );
    const rms = tf.rsqrt(tf.add(tf.mean(tf.square(pre), 0, true), INVOLUTION_RMS_EPS));
    const hidden = tf.relu(tf.mul(pre, rms)) as tf.Tensor2D;
    // Rows of W2ᵀ as [G, K², C/r], and the bias as [G, K², 1]: tap t is [:, t].
    const spanT = tf.reshape(tf.transpose(weights.span), [g, k * k, red]);
    const bias = tf.reshape(weights.spanBias, [g, k * k, 1]);
    const taps: tf.Tensor4D[] = [];
    for (let t = 0; t < k * k; t++) {
      const rows = tf.reshape(tf.slice(spanT, [0, t, 0], [g, 1, red]), [g, red]) as tf.Tensor2D;
      const b = tf.reshape(tf.slice(bias, [0, t, 0], [g, 1, 1]), [g, 1]);
      taps.push(tf.reshape(tf.add(tf.matMul(rows, hidden), b), [g, h, w, n]));
    }
    return taps;
  });
}

/** A whole involution layer, channels first: kernels generated from x [C, H, W, N] itself, then aggregated. */
export function involutionLayerCF(
  x: tf.Tensor4D,
  weights: InvolutionWeights,
  opts: InvolutionOptions,
): tf.Tensor4D {
  return tf.tidy(() => involutionCF(x, involutionTapsCF(x, weights, opts), opts));
}

/** A whole involution layer on NHWC x: [N, H, W, C] → [N, H, W, C]. */
export function involutionLayer(
  x: tf.Tensor4D,
  weights: InvolutionWeights,
  opts: InvolutionOptions,
): tf.Tensor4D {
  return tf.tidy(() => swapBatchAndChannels(involutionLayerCF(swapBatchAndChannels(x), weights, opts)));
}

/**
 * The kernels involution applies at each pixel, NHWC: x [N, H, W, C] → [N, H, W, G·K²] (group-major, taps
 * row-major), the tensor the paper's kernel-generation branch outputs. For inspection and tests: it stacks the
 * taps (Pack), whose gradient ml/gradients.ts does not register; models use involutionLayerCF.
 */
export function involutionKernel(
  x: tf.Tensor4D,
  weights: InvolutionWeights,
  opts: InvolutionOptions,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = x.shape;
    const { k, g } = checkOptions(x.shape[3], opts);
    const taps = involutionTapsCF(swapBatchAndChannels(x), weights, opts); // K² × [G, H, W, N]
    // [G, K², H, W, N] → [N, H, W, G, K²]
    const stacked = tf.reshape(tf.stack(taps, 1), [g * k * k, h, w, n]) as tf.Tensor4D;
    return swapBatchAndChannels(stacked);
  });
}

/**
 * The aggregation on NHWC tensors: x [N, H, W, C], kernel [N, H, W, G·K²] (group-major, taps row-major) →
 * [N, H, W, C]. Differentiable in both.
 */
export function involution(x: tf.Tensor4D, kernel: tf.Tensor4D, opts: InvolutionOptions): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const { k, g } = checkOptions(c, opts);
  const expected = [n, h, w, g * k * k];
  if (kernel.shape.join() !== expected.join()) {
    throw new Error(
      `involution: kernel is [${kernel.shape.join(', ')}], expected [${expected.join(', ')}] ` +
        `(N, H, W, groups·K²) for x [${x.shape.join(', ')}], K=${k}, G=${g}`,
    );
  }
  return tf.tidy(() => {
    // [G·K², H, W, N] → [G, K², H·W·N]; tap t is [:, t].
    const kt = tf.reshape(swapBatchAndChannels(kernel), [g, k * k, h * w * n]);
    const taps = Array.from(
      { length: k * k },
      (_, t) => tf.reshape(tf.slice(kt, [0, t, 0], [g, 1, h * w * n]), [g, h, w, n]) as tf.Tensor4D,
    );
    return swapBatchAndChannels(involutionCF(swapBatchAndChannels(x), taps, opts));
  });
}
