// The tape engine: each op a TF.js kernel call, gradients from the tape. Runs on every backend and every objective.
import * as tf from '@tensorflow/tfjs-core';

import type { ModelDef } from '../../models/types.js';
import { stepScalars } from '../optimizers.js';
import type { OptimizerSpec } from '../types.js';
import { tapeStep } from './tape-step.js';
import type { EngineStep, StepEngine, Tensors } from './types.js';

export function tapeEngine(model: ModelDef, optimizer: OptimizerSpec): StepEngine {
  let params: Tensors = {};
  let slots: Tensors = {};
  return {
    name: 'tape',
    family: 'tape',
    load(p, s) {
      tf.dispose([...Object.values(params), ...Object.values(slots)]);
      params = p;
      slots = s;
    },
    read: () => ({ params, slots }),
    step(input: EngineStep) {
      const batch = input.tensors();
      const scalars = stepScalars(optimizer, input.s + 1);
      try {
        const out = tapeStep(model, optimizer, { params, slots }, batch, input, scalars);
        tf.dispose([...Object.values(params), ...Object.values(slots)]);
        params = out.params;
        slots = out.slots;
        return out.loss;
      } finally {
        tf.dispose([
          batch.x,
          batch.y,
          ...(batch.labels ? [batch.labels] : []),
          ...Object.values(batch.noise ?? {}),
          ...Object.values(scalars),
        ]);
      }
    },
    notes: () => [],
    dispose() {
      tf.dispose([...Object.values(params), ...Object.values(slots)]);
      params = {};
      slots = {};
    },
  };
}
