/**
 * Logits (or the last feature map) of a model on a block of images (host arrays in, host arrays out), in batches,
 * with the current backend. Used to precompute teacher outputs; the batch size changes nothing but speed and
 * memory, up to float summation order inside the backend's kernels.
 */
import * as tf from '@tensorflow/tfjs-core';

import { MlInputError } from './errors.js';
import { getModel } from './models/index.js';
import type { NamedTensors } from './tensors.js';

export interface LogitsOptions {
  /** Images per forward pass (default 500; 32 on the pure-JS cpu backend). */
  batchSize?: number;
  /** Called after every batch with the number of images done (for heartbeats and progress). */
  onBatch?: (done: number) => void | Promise<void>;
  /** What to return per image: the logits (default) or the model's last feature map, flattened (h, w, c). */
  outputs?: ModelOutputs;
}

export type ModelOutputs = 'logits' | 'features';

/** Values per image of a model's outputs: its classes, or the size of its last feature map. */
export function outputWidth(modelName: string, outputs: ModelOutputs = 'logits'): number {
  const model = getModel(modelName);
  if (outputs === 'logits') return model.numClasses;
  if (!model.features || !model.featureShape)
    throw new MlInputError(`outputs: ${modelName} has no feature map to store`);
  return model.featureShape.reduce((a, b) => a * b, 1);
}

/** [n × width] float32 outputs of `images` ([n × H·W·C], normalised like ml/data); width: see outputWidth. */
export async function predictLogits(
  modelName: string,
  weights: NamedTensors,
  images: Float32Array,
  opts: LogitsOptions = {},
): Promise<Float32Array> {
  const model = getModel(modelName);
  const [h, w, c] = model.inputShape as [number, number, number];
  const size = h * w * c;
  if (images.length % size !== 0) {
    throw new MlInputError(`images: ${images.length} floats is not a whole number of ${h}x${w}x${c} images`);
  }
  const n = images.length / size;
  // Large batches are ~30% faster on native TensorFlow (and no slower on WASM); on the pure-JS backend a batch
  // of 500 blocks the thread for a minute, longer than a heartbeat timeout, so it takes small ones.
  const batchSize = opts.batchSize ?? (tf.getBackend() === 'cpu' ? 32 : 500);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new MlInputError(`batchSize must be >= 1, got ${batchSize}`);
  const params: Record<string, tf.Tensor> = {};
  for (const p of model.params) {
    const t = weights[p.name];
    if (!t) throw new MlInputError(`weights: missing '${p.name}' of ${model.name}`);
    if (t.shape.join() !== p.shape.join()) {
      throw new MlInputError(
        `weights '${p.name}': shape [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`,
      );
    }
    params[p.name] = tf.tensor(t.data, t.shape, 'float32');
  }
  const outputs = opts.outputs ?? 'logits';
  const width = outputWidth(modelName, outputs);
  const out = new Float32Array(n * width);
  try {
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(start + batchSize, n);
      const logits = tf.tidy(() => {
        const x = tf.tensor(images.subarray(start * size, end * size), [end - start, h, w, c], 'float32');
        if (outputs === 'logits') return model.forward(params, x, false);
        return tf.reshape((model.features as NonNullable<typeof model.features>)(params, x), [
          end - start,
          width,
        ]);
      });
      try {
        out.set(await logits.data<'float32'>(), start * width);
      } finally {
        logits.dispose();
      }
      await opts.onBatch?.(end);
      // A forward pass blocks the thread; between batches, let the event loop run, so that heartbeats go out
      // and sockets closed meanwhile are noticed before the next request would reuse them.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    tf.dispose(Object.values(params));
  }
  return out;
}
