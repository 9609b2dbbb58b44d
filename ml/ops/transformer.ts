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
import { secondOrderActive } from '../second-order.js';

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

/**
 * Layer normalisation over the last axis: (x − mean) / √(var + eps) · gain + bias, biased variance (PyTorch).
 *
 * Its gradient is written out (tf.customGrad) rather than left to the tape, which differentiates the nine forward
 * ops one by one (means broadcast back through ones, rsqrt through pow, ...) in about twice as many kernels. With
 * x̂ the normalised input, r = 1/√(var + eps), g the gain and ĝ = dy·g over the normalised axis of size D:
 *   dx = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)),   dgain = Σ_batch dy · x̂,   dbias = Σ_batch dy.
 */
export function layerNorm(x: tf.Tensor, gain: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor {
  const axis = x.rank - 1;
  if (secondOrderActive()) {
    // Plain ops, so that a second backward pass sees how r and x̂ depend on x (ml/second-order.ts).
    const centred = tf.sub(x, tf.mean(x, axis, true));
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), eps));
    return tf.add(tf.mul(tf.mul(centred, r), gain), bias);
  }
  const batchAxes = Array.from({ length: axis }, (_, i) => i);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const centred = tf.sub(xs, tf.mean(xs, axis, true));
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), eps));
    const normed = tf.mul(centred, r);
    save([normed, r, g]);
    return {
      value: tf.add(tf.mul(normed, g), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xh, rs, gs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const d = dy as tf.Tensor;
        const gh = tf.mul(d, gs);
        const dx = tf.mul(
          rs,
          tf.sub(tf.sub(gh, tf.mean(gh, axis, true)), tf.mul(xh, tf.mean(tf.mul(gh, xh), axis, true))),
        );
        const reduce = (t: tf.Tensor) => (batchAxes.length > 0 ? tf.sum(t, batchAxes) : t);
        return [dx, tf.reshape(reduce(tf.mul(d, xh)), gs.shape), tf.reshape(reduce(d), gs.shape)];
      },
    };
  });
  return f(x, gain, bias);
}

/**
 * GELU, the exact form: x · Φ(x) = x/2 · (1 + erf(x/√2)) (PyTorch's default, not the tanh approximation), with its
 * gradient written out, Φ(x) + x · φ(x) with φ(x) = exp(−x²/2)/√(2π), from the Φ the forward pass computed (the tape
 * would differentiate erf and the products separately, in about twice the kernels).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (secondOrderActive()) return tf.mul(x, tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5));
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(xs, Math.SQRT1_2)), 1), 0.5);
    save([xs, cdf]);
    return {
      value: tf.mul(xs, cdf),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xv, phi] = saved as [tf.Tensor, tf.Tensor];
        const pdf = tf.mul(tf.exp(tf.mul(tf.square(xv), -0.5)), 1 / Math.sqrt(2 * Math.PI));
        return tf.mul(dy as tf.Tensor, tf.add(phi, tf.mul(xv, pdf)));
      },
    };
  });
  return f(x);
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
  return tf.mul(x, dropoutMultiplier(x.shape, rate, seed));
}

/**
 * The factor inverted dropout multiplies by: 0 or 1/(1 − rate) per element of `shape`, drawn from `seed`. The same
 * ops and values as tf.dropout's (so the same bytes), made on their own so that a step can compute its masks before
 * it runs and hand them to a graph as inputs (ModelDef.noiseTensors).
 */
export function dropoutMultiplier(shape: readonly number[], rate: number, seed: number): tf.Tensor {
  const keep = 1 - rate;
  return tf.tidy(() =>
    tf.div(tf.floor(tf.add(tf.randomUniform([...shape], 0, 1, 'float32', seed), keep)), keep),
  );
}

/**
 * Drop-path (stochastic depth, Huang et al.; DeiT's regulariser): a residual branch [B, ...] zeroed for a whole
 * sample with probability `rate`, the kept samples scaled by 1/(1 − rate).
 */
export function dropPath(branch: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate === 0) return branch;
  return tf.mul(branch, dropoutMultiplier(dropPathShape(branch.shape), rate, seed));
}

/** The shape of a drop-path mask for a branch of this shape: one value per sample. */
export function dropPathShape(shape: readonly number[]): number[] {
  return [shape[0] as number, ...shape.slice(1).map(() => 1)];
}
