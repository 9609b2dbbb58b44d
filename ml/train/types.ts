import { z } from 'zod';
import { DATASET_NAMES, type DatasetName } from '../data/index.js';
import { MlInputError } from '../errors.js';
import type { NamedTensors } from '../tensors.js';

/** PyTorch semantics for both: weightDecay is L2 added to the gradient (not AdamW's decoupled decay). */
export type OptimizerSpec =
  | { kind: 'sgd'; lr: number; momentum: number; nesterov?: boolean; weightDecay?: number }
  | { kind: 'adam'; lr: number; beta1: number; beta2: number; eps: number; weightDecay?: number };

export interface TrainConfig {
  model: string;
  dataset: DatasetName;
  optimizer: OptimizerSpec;
  batchSize: number;
  /** Optimizer steps. One epoch is ceil(trainSize / batchSize) steps; see epochsToIterations. */
  iterations: number;
  /** Evaluate on the test set every this many steps (0: only at step 0 and at the end). */
  evalEvery: number;
  /** Seeds the data order (and the initialisation, when no initialWeights are given). */
  seed: number;
  trainLimit?: number;
  testLimit?: number;
}

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
}

export interface TrainResult {
  state: TrainState;
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

const nonNegInt = z.number().int().min(0);
const posInt = z.number().int().min(1);
const rate = z.number().min(0).lt(1);

const optimizerSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('sgd'),
      lr: z.number().positive().finite(),
      momentum: rate,
      nesterov: z.boolean().optional(),
      weightDecay: z.number().min(0).finite().optional(),
    })
    .refine((o) => !o.nesterov || o.momentum > 0, {
      message: 'nesterov needs momentum > 0',
      path: ['nesterov'],
    }),
  z.object({
    kind: z.literal('adam'),
    lr: z.number().positive().finite(),
    beta1: rate,
    beta2: rate,
    eps: z.number().positive().finite(),
    weightDecay: z.number().min(0).finite().optional(),
  }),
]);

export const trainConfigSchema = z.object({
  model: z.string().min(1),
  dataset: z.enum(DATASET_NAMES as [DatasetName, ...DatasetName[]]),
  optimizer: optimizerSchema,
  batchSize: posInt,
  iterations: nonNegInt,
  evalEvery: nonNegInt,
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  trainLimit: posInt.optional(),
  testLimit: posInt.optional(),
});

export function zodMessage(prefix: string, err: z.ZodError): string {
  return `${prefix}: ${err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')}`;
}

export function parseTrainConfig(config: unknown): TrainConfig {
  const r = trainConfigSchema.safeParse(config);
  if (!r.success) throw new MlInputError(zodMessage('invalid train config', r.error));
  return r.data as TrainConfig;
}

export function stepsPerEpoch(trainSize: number, batchSize: number): number {
  if (!Number.isInteger(trainSize) || trainSize < 1)
    throw new MlInputError(`trainSize must be >= 1, got ${trainSize}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new MlInputError(`batchSize must be >= 1, got ${batchSize}`);
  return Math.ceil(trainSize / batchSize);
}

/**
 * Steps for a number of epochs. An epoch visits every sample once: ceil(trainSize / batchSize) batches, the last
 * one smaller when batchSize does not divide trainSize (PyTorch's drop_last=False). Fractional epochs round up.
 */
export function epochsToIterations(epochs: number, trainSize: number, batchSize: number): number {
  if (!Number.isFinite(epochs) || epochs < 0) throw new MlInputError(`epochs must be >= 0, got ${epochs}`);
  const x = epochs * stepsPerEpoch(trainSize, batchSize);
  // Tolerate float noise such as 0.1 * 30 = 3.0000000000000004, which must not become 4 steps.
  const r = Math.round(x);
  return Math.abs(x - r) < 1e-9 ? r : Math.ceil(x);
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

export const dataCursorSchema = z.object({
  version: z.literal(1),
  order: z.literal('epochOrder'),
  seed: nonNegInt,
  trainSize: posInt,
  batchSize: posInt,
  epoch: nonNegInt,
  position: nonNegInt,
});
