/**
 * The loss a measure probes: the mean over a fixed data subset, as a function of a point of the parameter space.
 * Values are summed per batch on the backend and across batches on the host in double precision, so the result does
 * not depend on the batch size beyond float32 rounding within a batch.
 *
 * Every method reads a point and a direction only on the free coordinates (pruned ones are taken as 0, whatever the
 * caller passed) and returns vectors that are 0 on pruned coordinates.
 *
 * On native TensorFlow a batch's gradient and its Hessian-vector product are each traced once per batch size into
 * one TensorFlow graph and run as one session call (ml/native/traced-step.ts, as the graph engine does for training
 * steps): the point, the direction and the batch are its inputs. An exact product on LeNet-300-100 or conv-2 over
 * 1,000 images gave the tape's bytes and ran 2.1-2.4× faster. A batch's loss alone stays eager: as a graph it gave
 * the same bytes but ran slower (a LeNet-300-100 level's 2D slice 16.3 s against 12.9 s, bench/results/
 * geometry-engines.json). `engine` says which ran; LTH_ENGINE=tape keeps everything on the tape.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { Dataset } from '../data/index.js';
import { MlInputError } from '../errors.js';
import type { ModelDef } from '../models/types.js';
import '../gradients.js';
import { softmaxCrossEntropy } from '../native/kernels.js';
import { crossEntropySum, secondOrderActive, withSecondOrder } from '../second-order.js';
import { namedFromHost, type NamedTensors } from '../tensors.js';
import { traceStep, type TracedStep } from '../native/traced-step.js';
import { graphsUnavailable } from '../train/engines/index.js';
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
  /**
   * H·v, H the Hessian of the loss at `point` in the free subspace, exactly (double backward, ml/second-order.ts):
   * on ReLU and max-pool networks the Hessian with the activation pattern and pooling choices of `point` held fixed,
   * as autograd computes it.
   */
  hessianVectorProduct(point: Vec, v: Vec): Promise<Vec>;
  /** How the computations run: as traced graphs, or on the tape (and why). */
  readonly engine: { name: 'graph' | 'tape'; reason: string | null };
  /** Frees the batches held on the backend, and the graphs. */
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
  /**
   * Sum (not mean) of the per-example losses of a batch, from its output. Under `secondOrderActive()` it must be
   * written with ops ml/second-order.ts differentiates twice.
   */
  lossSum(output: tf.Tensor, batch: Batch): tf.Scalar;
  /** Misclassified examples of a batch, from its output; absent: the error is NaN. */
  errors?(output: tf.Tensor, batch: Batch): tf.Scalar;
}

/** An objective over batches held on the backend for its lifetime (they are its data subset). */
export function batchObjective(space: ParamSpace, batches: Batch[], loss: BatchLoss): Objective {
  const n = batches.reduce((s, b) => s + b.n, 0);
  if (n === 0) throw new MlInputError('an objective needs at least one example');
  const upload = (point: Vec) => namedFromHost(unflatten(space, restrict(space, Float64Array.from(point))));
  const names = space.params.map((p) => p.name);
  const named = (ws: tf.Tensor[]) => {
    const out: Record<string, tf.Tensor> = {};
    names.forEach((name, i) => (out[name] = ws[i] as tf.Tensor));
    return out;
  };
  /** Adds each tensor's values at its parameter's offset of `into`. */
  const accumulate = async (into: Vec, grads: tf.Tensor[]) => {
    for (let i = 0; i < grads.length; i++) {
      const g = await (grads[i] as tf.Tensor).data();
      const o = space.offsets[i] as number;
      for (let j = 0; j < g.length; j++) into[o + j] = (into[o + j] as number) + (g[j] as number);
    }
  };
  const noGraphs = graphsUnavailable();
  // Per computation and batch size: its graph, or null where it cannot be one (it then runs on the tape).
  const graphs = new Map<string, TracedStep | null>();
  /** `body` (a function of `inputs` only) as a traced graph where this process runs graphs, else on the tape. */
  const compute = (
    key: string,
    inputs: Map<string, tf.Tensor>,
    body: () => Map<string, tf.Tensor>,
  ): Map<string, tf.Tensor> => {
    if (noGraphs !== null) return body();
    const known = graphs.get(key);
    if (known !== undefined) return known ? known.run(inputs) : body();
    const trace = traceStep(inputs, body);
    graphs.set(key, trace.step);
    if (!trace.graphOutputs) return trace.outputs;
    // As for training steps: the graph computes the traced call too, so every call comes from the graph.
    tf.dispose([...trace.outputs.values()]);
    return trace.graphOutputs;
  };
  const listed = (prefix: string, ts: tf.Tensor[]) =>
    ts.map((t, i): [string, tf.Tensor] => [`${prefix}/${i}`, t]);
  const inOrder = (out: Map<string, tf.Tensor>, prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => out.get(`${prefix}/${i}`) as tf.Tensor);
  const checkLength = (what: string, v: Vec) => {
    if (v.length !== space.size)
      throw new MlInputError(`${what} has ${v.length} coordinates, the space ${space.size}`);
  };
  return {
    space,
    n,
    async value(point) {
      checkLength('the point', point);
      const params = upload(point);
      try {
        let lossSum = 0;
        let errors = 0;
        for (const b of batches) {
          const [l, e] = tf.tidy(() => {
            const output = loss.forward(params, b);
            return [loss.lossSum(output, b), loss.errors ? loss.errors(output, b) : tf.scalar(NaN)];
          }) as [tf.Tensor, tf.Tensor];
          lossSum += (await l.data())[0] as number;
          errors += (await e.data())[0] as number;
          tf.dispose([l, e]);
        }
        return { loss: lossSum / n, error: errors / n };
      } finally {
        tf.dispose(Object.values(params));
      }
    },
    async gradient(point) {
      checkLength('the point', point);
      const params = upload(point);
      const list = names.map((name) => params[name] as tf.Tensor);
      const grad = new Float64Array(space.size);
      let lossSum = 0;
      try {
        for (const b of batches) {
          const out = compute(
            `gradient/${b.n}`,
            new Map([['x', b.x], ['y', b.y], ...listed('w', list)]),
            () => {
              const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) =>
                loss.lossSum(loss.forward(named(ws), b), b),
              )(list);
              return new Map([['loss', value as tf.Tensor], ...listed('g', grads)]);
            },
          );
          lossSum += (await (out.get('loss') as tf.Tensor).data())[0] as number;
          await accumulate(grad, inOrder(out, 'g', list.length));
          tf.dispose([...out.values()]);
        }
      } finally {
        tf.dispose(list);
      }
      for (let i = 0; i < grad.length; i++) grad[i] = (grad[i] as number) / n;
      return { loss: lossSum / n, gradient: restrict(space, grad) };
    },
    async hessianVectorProduct(point, v) {
      checkLength('the point', point);
      checkLength('the direction', v);
      const params = upload(point);
      const direction = upload(v);
      const [ws, vs] = [
        names.map((name) => params[name] as tf.Tensor),
        names.map((name) => direction[name] as tf.Tensor),
      ];
      const hv = new Float64Array(space.size);
      try {
        for (const b of batches) {
          const inputs = new Map([['x', b.x], ['y', b.y], ...listed('w', ws), ...listed('v', vs)]);
          const out = compute(`hvp/${b.n}`, inputs, () => {
            // Hv = ∇(∇L · v): the inner gradient is recorded on the outer tape, then differentiated again.
            const products = withSecondOrder(() =>
              tf.tidy(() =>
                tf.grads((...outer: tf.Tensor[]) => {
                  const inner = tf.grads((...w: tf.Tensor[]) => loss.lossSum(loss.forward(named(w), b), b))(
                    outer,
                  );
                  return inner
                    .map((g, i) => tf.sum(tf.mul(g, vs[i] as tf.Tensor)))
                    .reduce((a, c) => tf.add(a, c)) as tf.Scalar;
                })(ws),
              ),
            );
            return new Map(listed('hv', products));
          });
          await accumulate(hv, inOrder(out, 'hv', ws.length));
          tf.dispose([...out.values()]);
        }
      } finally {
        tf.dispose([...ws, ...vs]);
      }
      for (let i = 0; i < hv.length; i++) hv[i] = (hv[i] as number) / n;
      return restrict(space, hv);
    },
    get engine() {
      const fellBack = [...graphs].filter(([, g]) => g === null).map(([k]) => k);
      if (noGraphs !== null) return { name: 'tape' as const, reason: noGraphs };
      return {
        name: 'graph' as const,
        reason: fellBack.length > 0 ? `on the tape, not traceable: ${fellBack.join(', ')}` : null,
      };
    },
    dispose() {
      tf.dispose(batches.flatMap((b) => [b.x, b.y]));
      for (const g of graphs.values()) g?.dispose();
      graphs.clear();
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
  return batchObjective(
    paramSpace(model.params, opts.masks),
    batches,
    classifierLoss((params, b) => model.forward(params, b.x, false)),
  );
}

/** Softmax cross-entropy and error rate of a classifier's logits against one-hot labels. */
export function classifierLoss(forward: BatchLoss['forward']): BatchLoss {
  return {
    forward,
    // The fused kernel is faster, but its gradient cannot be differentiated again.
    lossSum: (logits, b) =>
      secondOrderActive()
        ? crossEntropySum(logits as tf.Tensor2D, b.y as tf.Tensor2D)
        : (tf.mul(softmaxCrossEntropy(logits as tf.Tensor2D, b.y as tf.Tensor2D), b.n) as tf.Scalar),
    errors: (logits, b) =>
      tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), tf.argMax(b.y, 1)), 'float32')) as tf.Scalar,
  };
}
