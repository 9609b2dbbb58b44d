/**
 * The backward passes of 2-D convolution and max pooling, written with kernels that every TF.js backend has.
 *
 * Why: the WASM backend has no Conv2DBackpropFilter kernel, its Conv2DBackpropInput is a plain loop (16x slower
 * than its forward Conv2D, which runs on XNNPACK), and tfjs-core's Node build registers no gradients at all.
 * For stride 1 both convolution gradients are themselves forward convolutions, so they run on the fastest
 * kernel each backend has:
 *  - input gradient: dy convolved with the filter rotated by 180 degrees and its in/out channels swapped, padded
 *    by K-1-p on each side where the forward pass padded p ("full" correlation);
 *  - filter gradient: with the batch moved into the channel position, x (as [Cin, H, W, N]) convolved with dy
 *    (as the filter [Ho, Wo, N, Cout]) gives [Cin, Kh, Kw, Cout], the sum over batch and pixels of x * dy.
 * Measured on the 2-core x86 dev machine, batch 128, 28x28, 64 -> 64 channels, tfjs 4.22 (see ml/README.md):
 * wasm forward 0.40 s, input gradient 0.37 s (Conv2DBackpropInput kernel: 5.9 s), filter gradient 0.58 s
 * (im2col patches^T x dy: 1.2 s); cpu (batch 8) filter gradient 2.4 s vs its Conv2DBackpropFilter kernel 54 s.
 * An explicit im2col forward (pad, K*K slices, concat, matMul) was 2.2x slower than Conv2D on wasm, so the
 * forward pass stays tf.conv2d.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface Conv2DGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export interface Padding4 {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** The pads the forward pass used; throws for what the gradients below do not cover. */
export function conv2dPadding(xShape: number[], filterShape: number[], attrs: Conv2DGradAttrs): Padding4 {
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') {
    throw new Error(`Conv2D gradient: only NHWC is supported, got dataFormat '${String(attrs.dataFormat)}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  if (
    info.strideHeight !== 1 ||
    info.strideWidth !== 1 ||
    info.dilationHeight !== 1 ||
    info.dilationWidth !== 1
  ) {
    // Strided or dilated gradients would need zero-interleaving; no model here uses them.
    throw new Error(
      `Conv2D gradient: only stride 1 and dilation 1 are supported, got strides ` +
        `${info.strideHeight}x${info.strideWidth}, dilations ${info.dilationHeight}x${info.dilationWidth}`,
    );
  }
  const { top, bottom, left, right } = info.padInfo;
  return { top, bottom, left, right };
}

function explicit(p: Padding4): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [p.top, p.bottom],
    [p.left, p.right],
    [0, 0],
  ];
}

const samePad = (p: Padding4, q: Padding4) =>
  p.top === q.top && p.bottom === q.bottom && p.left === q.left && p.right === q.right;

/**
 * The pad argument for a stride-1 conv of x by a filter: 'valid' or 'same' where they fit, since native
 * TensorFlow rejects explicit padding; null where only explicit padding will do.
 */
function namedPad(p: Padding4, xShape: number[], filterShape: number[]): 'valid' | 'same' | null {
  if (samePad(p, { top: 0, bottom: 0, left: 0, right: 0 })) return 'valid';
  return samePad(p, conv2dPadding(xShape, filterShape, { strides: 1, pad: 'same' })) ? 'same' : null;
}

/** Stride-1 conv2d with any padding, on every backend. */
export function conv2dPadded(x: tf.Tensor4D, filter: tf.Tensor4D, p: Padding4): tf.Tensor4D {
  const named = namedPad(p, x.shape, filter.shape);
  if (named) return tf.conv2d(x, filter, 1, named);
  if (tf.getBackend() === 'tensorflow') return tf.conv2d(tf.pad(x, explicit(p)), filter, 1, 'valid');
  return tf.conv2d(x, filter, 1, explicit(p));
}

/**
 * dL/dx of y = conv2d(x, filter) (stride 1, NHWC), computed by a forward Conv2D.
 * `via: 'kernel'` uses the backend's own Conv2DBackpropInput instead: faster on cpu (0.66 s vs 1.2 s in the
 * measurement above) and native TensorFlow, far slower on wasm. (Native TensorFlow's kernel takes no explicit
 * padding; such a case takes the conv path there.)
 */
export function conv2dInputGrad(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  xShape: number[],
  pad: Padding4,
  via: 'conv' | 'kernel' = 'conv',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filter.shape;
    const named = namedPad(pad, xShape, filter.shape);
    if (via === 'kernel' && (named || tf.getBackend() !== 'tensorflow')) {
      return tf.conv2dTranspose(
        dy,
        filter,
        xShape as [number, number, number, number],
        1,
        named ?? explicit(pad),
      );
    }
    const full: Padding4 = {
      top: kh - 1 - pad.top,
      bottom: kh - 1 - pad.bottom,
      left: kw - 1 - pad.left,
      right: kw - 1 - pad.right,
    };
    if (Object.values(full).some((v) => v < 0)) {
      throw new Error(`Conv2D gradient: padding ${JSON.stringify(pad)} exceeds the ${kh}x${kw} kernel`);
    }
    const rotated = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return conv2dPadded(dy, rotated, full);
  });
}

/** dL/dfilter of y = conv2d(x, filter) (stride 1, NHWC), computed by a forward Conv2D over the batch. */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: number[],
  pad: Padding4,
): tf.Tensor4D {
  return tf.tidy(() => {
    const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
    const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const g = tf.transpose(conv2dPadded(xT, dyT, pad), [1, 2, 0, 3]) as tf.Tensor4D;
    if (g.shape.join() !== filterShape.join()) {
      throw new Error(
        `internal: Conv2D filter gradient came out [${g.shape.join()}], not [${filterShape.join()}]`,
      );
    }
    return g;
  });
}

export interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * dL/dx of y = maxPool(x). Ties: a window's dy is split evenly among the positions that equal its maximum, on
 * every backend (a valid subgradient; with no tie each maximum gets dy exactly).
 *
 * Non-overlapping windows (stride = window, no padding: our 2x2 pooling) are computed from kernels every
 * backend has: the positions equal to the upsampled y, divided by their count per window (an average pool).
 * We do not use the backends' MaxPoolGrad kernels there: wasm's (and its MaxPoolWithArgmax) start the search at
 * FLT_MIN instead of -FLT_MAX, so in a window whose maximum is <= 0 the gradient goes to the window's first
 * position even when it is not a maximum. The kernels were also slower: for [128, 28, 28, 64], 0.2-0.26 s vs
 * 0.08-0.16 s on wasm, and about 4x on cpu.
 * Their tie rules also differ (cpu: first maximum, wasm: last). Overlapping or padded windows fall back to the
 * backend's kernel (first maximum on cpu), except on wasm, where that kernel would be wrong and we refuse.
 */
export function maxPoolInputGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  attrs: MaxPoolGradAttrs,
): tf.Tensor4D {
  const info = tf.backend_util.computePool2DInfo(
    x.shape,
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = info.padInfo;
  const tiled =
    info.filterHeight === info.strideHeight &&
    info.filterWidth === info.strideWidth &&
    top === 0 &&
    bottom === 0 &&
    left === 0 &&
    right === 0;
  if (tiled) return tiledMaxPoolGrad(dy, x, y, info.strideHeight, info.strideWidth);
  if (tf.getBackend() === 'wasm') {
    throw new Error(
      `MaxPool gradient on wasm: only non-overlapping, unpadded windows are supported (got window ` +
        `${info.filterHeight}x${info.filterWidth}, stride ${info.strideHeight}x${info.strideWidth}, padding ` +
        `${top}/${bottom}/${left}/${right}); wasm's MaxPoolGrad kernel mislocates maxima <= 0`,
    );
  }
  const inputs: tf.MaxPoolGradInputs = { dy, input: x, output: y };
  const kernelAttrs: tf.MaxPoolGradAttrs = {
    filterSize: attrs.filterSize,
    strides: attrs.strides,
    pad: attrs.pad,
    dimRoundingMode: attrs.dimRoundingMode,
  };
  const out = tf
    .engine()
    .runKernel(
      tf.MaxPoolGrad,
      inputs as unknown as tf.NamedTensorMap,
      kernelAttrs as unknown as tf.NamedAttrMap,
    );
  if (Array.isArray(out)) throw new Error('internal: MaxPoolGrad returned several tensors');
  return out as tf.Tensor4D;
}

function tiledMaxPoolGrad(
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  sh: number,
  sw: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const [, ho, wo] = y.shape;
    // 'valid' windows may leave the last rows/columns uncovered; they get no gradient.
    const [ch, cw] = [ho * sh, wo * sw];
    const covered = ch === h && cw === w ? x : tf.slice(x, [0, 0, 0, 0], [n, ch, cw, c]);
    // Half-pixel centres put every source index (r + 0.5) / s at least 0.5 / s from an integer, so floor() is
    // exact for any stride; without them r / 3 can round down across one.
    const up = (t: tf.Tensor4D) => tf.image.resizeNearestNeighbor(t, [ch, cw], false, true);
    const hit = tf.cast(tf.equal(covered, up(y)), 'float32') as tf.Tensor4D;
    // round(): the average of k ones times k is not always exactly k in float32 (k = 9).
    const ties = tf.round(tf.mul(tf.avgPool(hit, [sh, sw], [sh, sw], 'valid'), sh * sw));
    const g = tf.mul(hit, up(tf.div(dy, ties) as tf.Tensor4D)) as tf.Tensor4D;
    return ch === h && cw === w
      ? g
      : tf.pad(g, [
          [0, 0],
          [0, h - ch],
          [0, w - cw],
          [0, 0],
        ]);
  });
}
