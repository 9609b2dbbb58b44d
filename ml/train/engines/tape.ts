// The tape engine: each op a TF.js kernel call, gradients from the tape. Runs on every backend and every objective.
import type { ModelDef } from '../../models/types.js';
import { stepScalars } from '../optimizers.js';
import type { OptimizerSpec } from '../types.js';
import { disposeStepInputs, HeldState, tapeStep } from './tape-step.js';
import type { EngineStep, StepEngine } from './types.js';

export function tapeEngine(model: ModelDef, optimizer: OptimizerSpec): StepEngine {
  const state = new HeldState();
  return {
    name: 'tape',
    family: 'tape',
    load: (p, s) => state.replace(p, s),
    read: () => ({ params: state.params, slots: state.slots }),
    step(input: EngineStep) {
      const batch = input.tensors();
      const scalars = stepScalars(optimizer, input.s + 1, input.lrFactor);
      try {
        const out = tapeStep(model, optimizer, state, batch, input, scalars);
        state.replace(out.params, out.slots);
        return out.loss;
      } finally {
        disposeStepInputs(batch, scalars);
      }
    },
    notes: () => [],
    dispose: () => state.dispose(),
  };
}
