import { z } from 'zod';
import type { NamedTensors } from '../tensors.js';
import { stepsPerEpoch } from './config.js';

export {
  epochsToIterations,
  optimizerSchema,
  parseTrainConfig,
  stepsPerEpoch,
  trainConfigSchema,
  zodMessage,
  type OptimizerSpec,
  type TrainConfig,
} from './config.js';

export interface TrainProgress {
  step: number;
  totalSteps: number;
  /** Epochs completed, fractional: step / stepsPerEpoch. */
  epoch: number;
  /** Mini-batch loss of step `step` (NaN at step 0, before any step). */
  loss: number;
  trainAccuracy?: number;
  /** Present only on steps where the test set was evaluated. */
  testAccuracy?: number;
  testLoss?: number;
}

export interface EvalRecord {
  step: number;
  testLoss: number;
  testAccuracy: number;
}

export interface TrainState {
  /** Number of optimizer steps completed. */
  step: number;
  weights: NamedTensors;
  /** Optimizer slots by name: `momentum/<param>` (SGD with momentum), `m/<param>` and `v/<param>` (Adam). */
  optimizer: NamedTensors;
  /** JSON: the data cursor (see DataCursor). The data order is a pure function of it. */
  rng: unknown;
  evals: EvalRecord[];
  /** Mini-batch loss of the step `step`; null before the first step. */
  lastLoss: number | null;
  /**
   * The engine family whose steps computed this state (ml/train/engines/): a run continues from a state on the
   * state's family or not at all. Absent on a state no step computed (initialTrainState). Stored only for the graph
   * (a tape state's bytes are what they always were), so a stored state without it is the tape's where steps made it:
   * whoever reads a checkpoint back says so (TrainOptions.engine).
   */
  engine?: 'tape' | 'graph';
}

export interface TrainResult {
  state: TrainState;
  /** The engine the steps of this process ran on, and anything a person should know about how they ran. */
  engine?: { name: 'tape' | 'native-dense' | 'graph'; notes: string[] };
  /** trainLoss/trainAccuracy: the final weights evaluated on the whole training set used. */
  final: { testLoss: number; testAccuracy: number; trainLoss: number; trainAccuracy: number };
  evals: EvalRecord[];
}

/** Where the data stream stands after `step` steps. Redundant with step by design: it is checked on resume. */
export interface DataCursor {
  version: 1;
  order: 'epochOrder';
  seed: number;
  trainSize: number;
  batchSize: number;
  epoch: number;
  position: number;
}

export function cursorAt(step: number, seed: number, trainSize: number, batchSize: number): DataCursor {
  const spe = stepsPerEpoch(trainSize, batchSize);
  return {
    version: 1,
    order: 'epochOrder',
    seed,
    trainSize,
    batchSize,
    epoch: Math.floor(step / spe),
    position: (step % spe) * batchSize,
  };
}

const nonNegInt = z.number().int().min(0);
const posInt = z.number().int().min(1);

export const dataCursorSchema = z.object({
  version: z.literal(1),
  order: z.literal('epochOrder'),
  seed: nonNegInt,
  trainSize: posInt,
  batchSize: posInt,
  epoch: nonNegInt,
  position: nonNegInt,
});
