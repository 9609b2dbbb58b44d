/**
 * The loss a measure probes: the mean over a fixed data subset, as a function of a point of the parameter space.
 * Values are summed per batch on the backend and across batches on the host in double precision, so the result does
 * not depend on the batch size beyond float32 rounding within a batch.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { Dataset } from '../data/index.js';
import { MlInputError } from '../errors.js';
import type { ModelDef } from '../models/types.js';
import { softmaxCrossEntropy } from '../native-kernels.js';
import { namedFromHost, type NamedTensors } from '../tensors.js';
import { batchTensors } from '../train/evaluate.js';
import { paramSpace, restrict, unflatten, type ParamSpace, type Vec } from './space.js';

export interface LossValue {
  /** Mean loss over the subset. */
  loss: number;
  /** Fraction of the subset misclassified (NaN for an objective without a notion of error). */
  error: number;
}

export interface Objective {
  space: ParamSpace;
  /** Examples the loss averages over. */
  n: number;
  value(point: Vec): Promise<LossValue>;
  /** The loss and its gradient at `point`, the gradient zero on pruned coordinates. */
  gradient(point: Vec): Promise<{ loss: number; gradient: Vec }>;
  /** Frees the batches held on the backend. */
  dispose(): void;
}

export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor;
  n: number;
}

export interface BatchLoss {
  /** The model's output on a batch. */
  forward(params: Record<string, tf.Tensor>, batch: Batch): tf.Tensor;
  /** Sum (not mean) of the per-example losses of a batch, from its output. */
  lossSum(output: tf.Tensor, batch: Batch): tf.Scalar;
  /** Misclassified examples of a batch, from its output; absent: the error is NaN. */
  errors?(output: tf.Tensor, batch: Batch): tf.Scalar;
}

/** An objective over batches held on the backend for its lifetime (they are its data subset). */
export function batchObjective(space: ParamSpace, batches: Batch[], loss: BatchLoss): Objective {
  const n = batches.reduce((s, b) => s + b.n, 0);
  if (n === 0) throw new MlInputError('an objective needs at least one example');
  const upload = (point: Vec) => namedFromHost(unflatten(space, point));
  const names = space.params.map((p) => p.name);
  return {
    space,
    n,
    async value(point) {
      const params = upload(point);
      try {
        let lossSum = 0;
        let errors = 0;
        for (const b of batches) {
          const [l, e] = tf.tidy(() => {
            const out = loss.forward(params, b);
            return [loss.lossSum(out, b), loss.errors ? loss.errors(out, b) : tf.scalar(NaN)];
          });
          lossSum += (await (l as tf.Scalar).data())[0] as number;
          errors += (await (e as tf.Scalar).data())[0] as number;
          tf.dispose([l as tf.Tensor, e as tf.Tensor]);
        }
        return { loss: lossSum / n, error: errors / n };
      } finally {
        tf.dispose(Object.values(params));
      }
    },
    async gradient(point) {
      const params = upload(point);
      const list = names.map((name) => params[name] as tf.Tensor);
      const grad = new Float64Array(space.size);
      let lossSum = 0;
      try {
        for (const b of batches) {
          const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => {
            const named: Record<string, tf.Tensor> = {};
            names.forEach((name, i) => (named[name] = ws[i] as tf.Tensor));
            return loss.lossSum(loss.forward(named, b), b);
          })(list);
          lossSum += (await value.data())[0] as number;
          for (let i = 0; i < grads.length; i++) {
            const g = await (grads[i] as tf.Tensor).data();
            const o = space.offsets[i] as number;
            for (let j = 0; j < g.length; j++) grad[o + j] = (grad[o + j] as number) + (g[j] as number);
          }
          tf.dispose([value, ...grads]);
        }
      } finally {
        tf.dispose(list);
      }
      for (let i = 0; i < grad.length; i++) grad[i] = (grad[i] as number) / n;
      return { loss: lossSum / n, gradient: restrict(space, grad) };
    },
    dispose() {
      tf.dispose(batches.flatMap((b) => [b.x, b.y]));
    },
  };
}

/** The model's mean softmax cross-entropy and error rate on `data`, in the subspace `masks` leaves free. */
export function modelObjective(
  model: ModelDef,
  data: Dataset,
  opts: { masks?: NamedTensors; batchSize?: number } = {},
): Objective {
  const batchSize = opts.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new MlInputError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const batches: Batch[] = [];
  for (let start = 0; start < data.n; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, data.n - start) }, (_, i) => start + i);
    const { x, y } = batchTensors(model, data, idx);
    batches.push({ x, y, n: idx.length });
  }
  return batchObjective(paramSpace(model.params, opts.masks), batches, {
    forward: (params, b) => model.forward(params, b.x, false),
    lossSum: (logits, b) =>
      tf.mul(softmaxCrossEntropy(logits as tf.Tensor2D, b.y as tf.Tensor2D), b.n) as tf.Scalar,
    errors: (logits, b) =>
      tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), tf.argMax(b.y, 1)), 'float32')) as tf.Scalar,
  });
}
