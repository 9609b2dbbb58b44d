/**
 * How a training step runs: one engine per file in this folder, picked once when a trainer is made.
 *
 * - `tape`: TF.js ops and the tape's gradients; every backend, every objective.
 * - `native-dense`: LeNet's step as one hand-written TensorFlow graph; the tape's bytes (its family), faster.
 * - `graph`: the tape's step traced once per batch size and run as one TensorFlow graph; its own bytes.
 *
 * Exact by its own record: every step of a run comes from one engine family, and the state records it
 * (TrainState.engine). A run continuing from a state uses the state's family; where this process cannot run it,
 * EngineUnavailableError says so, naming both, instead of continuing on bytes the run never had. A new run takes
 * LTH_ENGINE (tape | graph) where that engine can run it, else the fastest exact engine for the model:
 * native-dense, then graph, then tape. LTH_NATIVE_STEP=off keeps everything on the tape itself (to measure it).
 */
import { currentBackend } from '../../backend.js';
import { EngineUnavailableError, MlInputError } from '../../errors.js';
import type { ModelDef } from '../../models/types.js';
import { nativeDenseStep, nativeSupport } from '../../native/index.js';
import type { OptimizerSpec } from '../types.js';
import { graphEngine } from './graph.js';
import { nativeDenseEngine } from './native-dense.js';
import { tapeEngine } from './tape.js';
import { ENGINE_FAMILY, type EngineFamily, type EngineName, type StepEngine } from './types.js';

export {
  ENGINE_FAMILY,
  type EngineFamily,
  type EngineName,
  type EngineStep,
  type StepEngine,
} from './types.js';
export { applyMask } from './tape-step.js';

export interface EngineRequest {
  model: ModelDef;
  optimizer: OptimizerSpec;
  /**
   * What the step minimises: the prediction's cross-entropy ('none'), or an objective of its own (distillation)
   * that declares the tensors it reads ('fed': it may be a graph) or does not ('opaque').
   */
  objective: 'none' | 'fed' | 'opaque';
  /** For the native dense step: the masked parameters, and whether it must re-apply masks (slotsZeroWherePruned). */
  masked: readonly string[];
  remask: boolean;
  /** The family of the state the run continues from; absent for a run from fresh weights. */
  continues?: EngineFamily;
  /** Whether the run's learning rate follows a schedule (each step's factor comes with the step). */
  scheduled?: boolean;
}

/**
 * Why this process cannot run computations as traced graphs (ml/native/traced-step.ts), or null where it can: native
 * TensorFlow's CPU build with the pinned tfjs-node, and neither LTH_ENGINE=tape nor LTH_NATIVE_STEP=off.
 */
export function graphsUnavailable(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.LTH_NATIVE_STEP === 'off') return 'LTH_NATIVE_STEP=off';
  if (env.LTH_ENGINE === 'tape') return 'LTH_ENGINE=tape';
  const native = nativeSupport();
  if (!native.backend) return native.reason;
  try {
    if (currentBackend().name !== 'tensorflow') return `the backend is ${currentBackend().name}`;
  } catch {
    return 'no backend selected';
  }
  return null;
}

/** Why the graph engine cannot run this request here, or null where it can. */
export function graphUnavailable(r: Pick<EngineRequest, 'model' | 'objective'>): string | null {
  const backend = graphsUnavailable({});
  if (backend !== null) return backend;
  if (r.model.stochastic && !r.model.noiseTensors)
    return `${r.model.name} draws dropout or drop-path noise at every step and cannot hand it over (noiseTensors)`;
  if (r.objective === 'opaque')
    return "the step's objective does not declare the tensors it reads (StepObjective.feeds)";
  return null;
}

const PREFERENCES = ['tape', 'graph'] as const;

/** The engine for a run, and why it is not the one asked for where it is not. */
export function selectEngine(
  r: EngineRequest,
  env: NodeJS.ProcessEnv = process.env,
): { engine: StepEngine; note: string | null } {
  const asked = env.LTH_ENGINE;
  if (asked !== undefined && asked !== '' && !(PREFERENCES as readonly string[]).includes(asked))
    throw new MlInputError(`LTH_ENGINE is '${asked}'; expected one of ${PREFERENCES.join(', ')} (or unset)`);
  const tapeOnly = env.LTH_NATIVE_STEP === 'off';
  // LeNet's hand-written step holds its rate as a constant: a scheduled run takes the graph or the tape.
  const dense = () =>
    tapeOnly || r.objective !== 'none' || r.scheduled === true
      ? null
      : nativeDenseStep(r.model, r.optimizer, { remask: r.remask, masked: r.masked }, env);
  const tapeFamily = (): StepEngine => {
    const d = dense();
    return d ? nativeDenseEngine(d) : tapeEngine(r.model, r.optimizer);
  };
  const noGraph = tapeOnly ? 'LTH_NATIVE_STEP=off' : graphUnavailable(r);

  if (r.continues === 'graph') {
    if (noGraph !== null)
      throw new EngineUnavailableError(
        `this run's state was computed by the graph engine, which cannot run here (${noGraph}); continuing on the ` +
          'tape would not give the run its own bytes: run it on a compute worker with native TensorFlow ' +
          '(`lth worker compute --backend tensorflow`)',
      );
    return { engine: graphEngine(r.model, r.optimizer), note: null };
  }
  if (r.continues === 'tape') {
    const note =
      asked === 'graph' ? 'LTH_ENGINE=graph ignored: the run continues a state computed on the tape' : null;
    return { engine: tapeFamily(), note };
  }
  if (asked === 'tape') return { engine: tapeFamily(), note: null };
  if (asked === 'graph') {
    if (noGraph === null) return { engine: graphEngine(r.model, r.optimizer), note: null };
    return { engine: tapeFamily(), note: `LTH_ENGINE=graph: on the tape instead, because ${noGraph}` };
  }
  const d = dense();
  if (d) return { engine: nativeDenseEngine(d), note: null };
  if (noGraph === null) return { engine: graphEngine(r.model, r.optimizer), note: null };
  // Where native TensorFlow is here but this run cannot be a graph, the record says why it ran on the tape.
  const note = nativeSupport().backend && !tapeOnly ? `on the tape, not a graph: ${noGraph}` : null;
  return { engine: tapeEngine(r.model, r.optimizer), note };
}

/** The engine family a name belongs to. */
export function engineFamily(name: EngineName): EngineFamily {
  return ENGINE_FAMILY[name];
}
