import type * as tf from '@tensorflow/tfjs-core';

import type { DenseBatch } from '../../native/dense-step.js';

export type Tensors = Record<string, tf.Tensor>;

/** How a step is computed. One file per engine in this folder; a run's engine is picked once, when its trainer is made. */
export type EngineName = 'tape' | 'native-dense' | 'graph';

/**
 * What a run's bytes depend on: engines of one family give the same bytes step for step. LeNet's native dense step
 * is the tape's kernels with the tape's operands, so it is the tape's family; a graph is its own (TensorFlow's graph
 * optimizer may regroup a sum). A checkpoint records its family, and a run resumes on that family or not at all.
 */
export type EngineFamily = 'tape' | 'graph';

export const ENGINE_FAMILY: Record<EngineName, EngineFamily> = {
  tape: 'tape',
  'native-dense': 'tape',
  graph: 'graph',
};

/** A step's inputs as the trainer prepares them. Everything a step reads that changes from step to step is here. */
export interface EngineStep {
  /** 0-based index of the step being taken. */
  s: number;
  /** λ of this step under the run's learning-rate schedule (ml/train/schedule.ts); null for a constant rate. */
  lrFactor: number | null;
  /** The batch as tensors (made once per step, before it): see BatchTensors. */
  tensors(): BatchTensors;
  /** The same batch on the host, for an engine that feeds TensorFlow itself. */
  host(): DenseBatch;
  /**
   * The step's loss given the parameters and the batch tensors (inside the step's tidy), or null for the plain
   * cross-entropy of the model's prediction. An engine that cannot compute a given loss is not chosen for it.
   */
  loss: ((params: Tensors, batch: BatchTensors) => tf.Scalar) | null;
  /** float32 0/1 masks by parameter name (not disposed). */
  keep: Tensors;
}

/**
 * A step's batch as tensors: the images (an objective's view of them where it has one) and one-hot labels, which the
 * engine disposes after the step; with an objective also the int32 labels (disposed likewise) and the objective's
 * feeds (its own, released by it).
 */
export interface BatchTensors {
  x: tf.Tensor;
  y: tf.Tensor;
  labels?: tf.Tensor;
  feeds?: Tensors;
  /** A stochastic model's noise for the step (ModelDef.noiseTensors), disposed by the engine after the step. */
  noise?: Tensors;
}

export interface StepEngine {
  readonly name: EngineName;
  readonly family: EngineFamily;
  /** Takes these tensors as the training state; the engine owns them from now on. */
  load(params: Tensors, slots: Tensors): void;
  /** The current state, owned by the engine: valid until the next step or dispose, not to be disposed by callers. */
  read(): { params: Tensors; slots: Tensors };
  /** One optimizer step on the loaded state; returns the batch loss, which the caller owns. */
  step(input: EngineStep): tf.Scalar;
  /** What a person should know about how steps ran (e.g. a batch size computed on the tape, and why). */
  notes(): string[];
  dispose(): void;
}
