import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/index.js';
import type { ModelDef } from '../models/types.js';
import { softmaxCrossEntropy } from '../native/kernels.js';
import { namedFromHost, type NamedTensors } from '../tensors.js';

/** Mean softmax cross-entropy; labels as one-hot float32 [batch, classes] (ml/native/kernels.ts). */
export function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return softmaxCrossEntropy(logits, oneHot);
}

/** One-hot targets; with `smoothing` ε, (1 − ε)·one-hot + ε/classes (each value computed in double, then rounded). */
export function oneHotHost(labels: ArrayLike<number>, numClasses: number, smoothing = 0): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  if (smoothing > 0) out.fill(smoothing / numClasses);
  const hot = smoothing > 0 ? 1 - smoothing + smoothing / numClasses : 1;
  for (let i = 0; i < labels.length; i++) out[i * numClasses + (labels[i] as number)] = hot;
  return out;
}

/** Copies samples [start, end) of `data` (or the listed indices) into fresh tensors shaped for the model. */
/**
 * A batch on the host: images row-major [b, ...inputShape], labels, and the labels one-hot [b, classes] (smoothed
 * by `smoothing`, the training targets of a run with labelSmoothing).
 */
export function batchHost(
  model: ModelDef,
  data: Dataset,
  indices: ArrayLike<number>,
  smoothing = 0,
): { x: Float32Array; y: Float32Array; labels: Int32Array } {
  const size = data.height * data.width * data.channels;
  const b = indices.length;
  const xs = new Float32Array(b * size);
  const labels = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const src = indices[i] as number;
    xs.set(data.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = data.labels[src] as number;
  }
  return { x: xs, y: oneHotHost(labels, model.numClasses, smoothing), labels };
}

export function batchTensors(
  model: ModelDef,
  data: Dataset,
  indices: ArrayLike<number>,
  smoothing = 0,
): { x: tf.Tensor; y: tf.Tensor2D; labels: Int32Array } {
  const h = batchHost(model, data, indices, smoothing);
  const b = indices.length;
  const x = tf.tensor(h.x, [b, ...model.inputShape], 'float32');
  const y = tf.tensor2d(h.y, [b, model.numClasses], 'float32');
  return { x, y, labels: h.labels };
}

/** Loss and accuracy of already-uploaded weights; sums in double precision on the host. */
export async function evaluateTensors(
  model: ModelDef,
  params: Record<string, tf.Tensor>,
  data: Dataset,
  batchSize = 1000,
): Promise<{ loss: number; accuracy: number }> {
  if (data.n === 0) throw new Error(`cannot evaluate on an empty dataset (${data.name}/${data.split})`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`eval batchSize must be >= 1, got ${batchSize}`);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += batchSize) {
    const end = Math.min(start + batchSize, data.n);
    const idx = new Int32Array(end - start);
    for (let i = 0; i < idx.length; i++) idx[i] = start + i;
    const { x, y, labels } = batchTensors(model, data, idx);
    const out = tf.tidy(() => {
      const logits = model.forward(params, x, false);
      const perExample = tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1));
      return { loss: tf.sum(perExample), pred: tf.argMax(logits, 1) };
    });
    tf.dispose([x, y]);
    try {
      const [l, p] = await Promise.all([out.loss.data(), out.pred.data()]);
      lossSum += l[0] as number;
      for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) correct++;
    } finally {
      tf.dispose([out.loss, out.pred]);
    }
  }
  return { loss: lossSum / data.n, accuracy: correct / data.n };
}

export async function evaluate(
  model: ModelDef,
  weights: NamedTensors,
  data: Dataset,
  batchSize = 1000,
): Promise<{ loss: number; accuracy: number }> {
  for (const p of model.params) {
    if (!weights[p.name]) throw new Error(`evaluate: weights lack '${p.name}' for model ${model.name}`);
  }
  const params = namedFromHost(weights, 'float32');
  try {
    return await evaluateTensors(model, params, data, batchSize);
  } finally {
    tf.dispose(Object.values(params));
  }
}
