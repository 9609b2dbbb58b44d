/**
 * The pieces of a Vision Transformer, from kernels every backend has (cpu, wasm, native TensorFlow) and the
 * gradients ml/gradients.ts registers for them: patch extraction, layer normalisation, GELU and multi-head
 * self-attention. Each is checked against float64 loops and finite differences (test/ml-vit.test.ts, and
 * test/ml-vit-native.test.ts for native TensorFlow).
 *
 * Shapes: a sequence batch is [B, N, D] (B images, N tokens, D features). Weights of linear maps are [in, out]
 * (x @ W), as everywhere in ml/models.
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';

/**
 * Non-overlapping p×p patches of NHWC images, each flattened in (row, column, channel) order:
 * [B, H, W, C] → [B, (H/p)·(W/p), p·p·C], patches in row-major order. Only reshapes and one rank-4 transpose.
 */
export function patchify(x: tf.Tensor4D, patch: number): tf.Tensor3D {
  const [b, h, w, c] = x.shape;
  if (!Number.isInteger(patch) || patch < 1 || h % patch !== 0 || w % patch !== 0) {
    throw new Error(`patchify: ${h}×${w} images do not split into ${patch}×${patch} patches`);
  }
  const gh = h / patch;
  const gw = w / patch;
  return tf.tidy(() => {
    // [B·gh, p, gw, p·C]: a row of patches, each image row of it cut into gw runs of p pixels.
    const rows = tf.reshape(x, [b * gh, patch, gw, patch * c]);
    // [B·gh, gw, p, p·C]: the patches of the row side by side.
    const patches = tf.transpose(rows, [0, 2, 1, 3]);
    return tf.reshape(patches, [b, gh * gw, patch * patch * c]) as tf.Tensor3D;
  });
}

/** Layer normalisation over the last axis: (x − mean) / √(var + eps) · gain + bias, biased variance (PyTorch). */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const centred = tf.sub(x, tf.mean(x, axis, true));
    const variance = tf.mean(tf.square(centred), axis, true);
    const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, gain), bias);
  });
}

/** GELU, the exact form: x · Φ(x) = x/2 · (1 + erf(x/√2)) (PyTorch's default, not the tanh approximation). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** x @ W + b over the last axis of a [B, N, D] batch. */
export function linear(x: tf.Tensor3D, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, n, d] = x.shape;
    const out = weight.shape[1] as number;
    const y = tf.add(tf.matMul(tf.reshape(x, [b * n, d]) as tf.Tensor2D, weight as tf.Tensor2D), bias);
    return tf.reshape(y, [b, n, out]) as tf.Tensor3D;
  });
}

export interface AttentionWeights {
  query: tf.Tensor;
  queryBias: tf.Tensor;
  key: tf.Tensor;
  keyBias: tf.Tensor;
  value: tf.Tensor;
  valueBias: tf.Tensor;
  out: tf.Tensor;
  outBias: tf.Tensor;
}

/** [B, N, H·d] → [B·H, N, d]: one sequence per (image, head). */
function splitHeads(x: tf.Tensor3D, heads: number): tf.Tensor3D {
  const [b, n, d] = x.shape;
  const perHead = d / heads;
  return tf.reshape(tf.transpose(tf.reshape(x, [b, n, heads, perHead]), [0, 2, 1, 3]), [
    b * heads,
    n,
    perHead,
  ]) as tf.Tensor3D;
}

/** [B·H, N, d] → [B, N, H·d]. */
function mergeHeads(x: tf.Tensor3D, batch: number, heads: number): tf.Tensor3D {
  const [, n, perHead] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [batch, heads, n, perHead]), [0, 2, 1, 3]), [
    batch,
    n,
    heads * perHead,
  ]) as tf.Tensor3D;
}

/**
 * Multi-head self-attention (Vaswani et al. 2017): per head, softmax(Q Kᵀ / √d) V with Q, K, V linear maps of x,
 * the heads concatenated and mapped by the output projection. x: [B, N, D]; D must divide into `heads`.
 */
export function selfAttention(x: tf.Tensor3D, w: AttentionWeights, heads: number): tf.Tensor3D {
  const [b, , d] = x.shape;
  if (!Number.isInteger(heads) || heads < 1 || d % heads !== 0) {
    throw new Error(`selfAttention: ${d} features do not split into ${heads} heads`);
  }
  return tf.tidy(() => {
    const q = splitHeads(linear(x, w.query, w.queryBias), heads);
    const k = splitHeads(linear(x, w.key, w.keyBias), heads);
    const v = splitHeads(linear(x, w.value, w.valueBias), heads);
    const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d / heads));
    const attention = tf.softmax(scores);
    const mixed = mergeHeads(tf.matMul(attention, v) as tf.Tensor3D, b, heads);
    return linear(mixed, w.out, w.outBias);
  });
}

/**
 * Inverted dropout with a seeded mask: each element kept with probability 1 − rate and scaled by 1/(1 − rate), so
 * the expectation is x. The mask is drawn on the host from `seed` (TF.js's seeded uniform), the same bits on every
 * backend; only the multiplication is differentiated.
 */
export function dropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate === 0) return x;
  return tf.dropout(x, rate, undefined, seed);
}

/**
 * Drop-path (stochastic depth, Huang et al.; DeiT's regulariser): a residual branch [B, ...] zeroed for a whole
 * sample with probability `rate`, the kept samples scaled by 1/(1 − rate).
 */
export function dropPath(branch: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate === 0) return branch;
  return tf.dropout(branch, rate, [branch.shape[0] as number, ...branch.shape.slice(1).map(() => 1)], seed);
}
