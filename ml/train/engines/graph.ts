// The graph engine: every step of a batch size computed by one TensorFlow graph, traced from the tape's step
// (ml/native/traced-step.ts) the first time that size comes up. The trace's own tape result is discarded and the
// graph computes that step too, so every step of the run, its first included, comes from the graph: a run resumed
// in a new process (a new trace of the same program) gives the bytes of an undisturbed one. The graph's bytes may
// differ from the tape's (TensorFlow's graph optimizer regroups some sums): it is its own engine family.
//
// What a graph cannot replay (a value read back during the step; a value too large to inline) is computed on the
// tape for that batch size, in every process alike, and said in notes().
import * as tf from '@tensorflow/tfjs-core';

import type { ModelDef } from '../../models/types.js';
import { traceStep, type TracedStep } from '../../native/traced-step.js';
import { stepScalars } from '../optimizers.js';
import type { OptimizerSpec } from '../types.js';
import { disposeStepInputs, HeldState, tapeStep, type StepState } from './tape-step.js';
import type { EngineStep, StepEngine, Tensors } from './types.js';

export function graphEngine(model: ModelDef, optimizer: OptimizerSpec): StepEngine {
  const state = new HeldState();
  const traced = new Map<number, { step: TracedStep | null; reason: string | null }>();
  return {
    name: 'graph',
    family: 'graph',
    load: (p, s) => state.replace(p, s),
    read: () => ({ params: state.params, slots: state.slots }),
    step(input: EngineStep) {
      const batch = input.tensors();
      const scalars = stepScalars(optimizer, input.s + 1, input.lrFactor);
      try {
        const inputs = new Map<string, tf.Tensor>([
          ['x', batch.x],
          ['y', batch.y],
          ...(batch.labels ? ([['labels', batch.labels]] as [string, tf.Tensor][]) : []),
          ...prefixed('feed/', batch.feeds ?? {}),
          ...prefixed('noise/', batch.noise ?? {}),
          ...prefixed('param/', state.params),
          ...prefixed('slot/', state.slots),
          ...prefixed('keep/', input.keep),
          ...prefixed('scalar/', scalars),
        ]);
        const tape = () => tapeStep(model, optimizer, state, batch, input, scalars);
        const b = batch.x.shape[0] as number;
        const known = traced.get(b);
        let out: StepState;
        if (known === undefined) {
          const trace = traceStep(inputs, () => named(tape()));
          traced.set(b, { step: trace.step, reason: trace.reason ?? null });
          if (trace.graphOutputs) {
            // The tape's result only served to trace: the graph computes this step as it computes every other.
            tf.dispose([...trace.outputs.values()]);
            out = unnamed(trace.graphOutputs);
          } else {
            out = unnamed(trace.outputs);
          }
        } else {
          out = known.step ? unnamed(known.step.run(inputs)) : tape();
        }
        state.replace(out.params, out.slots);
        return out.loss;
      } finally {
        disposeStepInputs(batch, scalars);
      }
    },
    notes: () =>
      [...traced]
        .filter(([, t]) => !t.step)
        .map(([b, t]) => `batches of ${b} run on the tape: ${t.reason ?? 'not traceable'}`),
    dispose() {
      state.dispose();
      for (const t of traced.values()) t.step?.dispose();
      traced.clear();
    },
  };
}

/** Named tensors under a prefix ('param/' + name), as a traced step names its inputs and outputs. */
function prefixed(prefix: string, tensors: Tensors): [string, tf.Tensor][] {
  return Object.entries(tensors).map(([n, t]) => [prefix + n, t]);
}

function named(o: StepState): Map<string, tf.Tensor> {
  return new Map([['loss', o.loss], ...prefixed('param/', o.params), ...prefixed('slot/', o.slots)]);
}

function unnamed(result: Map<string, tf.Tensor>): StepState {
  const pick = (prefix: string) =>
    Object.fromEntries(
      [...result].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]),
    );
  return { loss: result.get('loss') as tf.Scalar, params: pick('param/'), slots: pick('slot/') };
}
