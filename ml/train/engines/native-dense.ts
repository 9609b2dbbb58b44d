// LeNet's step as one hand-written TensorFlow graph (ml/native/dense-step.ts): the tape's kernels with the tape's
// operands, so the tape's bytes, with its parameters and slots in the session's variables, updated in place.
import * as tf from '@tensorflow/tfjs-core';

import type { NativeDenseStep } from '../../native/dense-step.js';
import type { EngineStep, StepEngine, Tensors } from './types.js';

export function nativeDenseEngine(step: NativeDenseStep): StepEngine {
  // Views of the session's variables handed out by read(), dropped before the next step (a view alive during the
  // in-place update would cost TensorFlow a copy of the weights).
  let views: { params: Tensors; slots: Tensors } | null = null;
  const dropViews = () => {
    if (views) tf.dispose([...Object.values(views.params), ...Object.values(views.slots)]);
    views = null;
  };
  return {
    name: 'native-dense',
    family: 'tape',
    load(params, slots) {
      dropViews();
      step.load(params, slots);
      tf.dispose([...Object.values(params), ...Object.values(slots)]);
    },
    read() {
      views ??= step.read();
      return views;
    },
    step(input: EngineStep) {
      if (input.loss)
        throw new Error('internal: the native dense step computes only the plain cross-entropy');
      dropViews();
      const h = input.host();
      return step.step(input.keep, h);
    },
    notes: () => [],
    dispose() {
      dropViews();
      step.dispose();
    },
  };
}
