// The training spec (`lth train`, and the `train` section of every other spec) and what crosses the
// workflow/activity boundary for a training run. The config schema is ml/'s own (ml/train/config.ts) with the
// defaults and the epochs-or-iterations choice a person writes: one meaning, checked the same everywhere.
import { z } from 'zod';

import {
  epochsToIterations,
  optimizerSchema,
  parseTrainConfig,
  trainConfigSchema as mlTrainConfigSchema,
  type TrainConfig,
} from '../ml/train/config';
import { DATASET_NAMES } from '../ml/data/names';
import { MODEL_NAMES } from '../ml/models/names';
import { objectRefSchema, experimentSchema, heartbeatTimeoutSchema, parseSpec } from './spec';
import { storedNumber } from './stored-numbers';

export { DATASET_NAMES, MODEL_NAMES };

const ml = mlTrainConfigSchema.shape;

/** What a training run computes. Everything here determines the result, so it is all hashed. */
export const trainConfigSpecSchema = mlTrainConfigSchema
  .extend({
    model: z.enum(MODEL_NAMES).default('lenet-300-100'),
    dataset: z.enum(DATASET_NAMES).default('mnist'),
    // open_lth's LeNet-300-100 defaults: plain SGD, lr 0.1, batch 128.
    optimizer: optimizerSchema.default({ kind: 'sgd', lr: 0.1, momentum: 0 }),
    batchSize: ml.batchSize.default(128),
    iterations: ml.iterations.min(1).optional(),
    epochs: z.number().positive().optional(),
    evalEvery: ml.evalEvery.default(500),
    seed: ml.seed.default(0),
  })
  .strict()
  .refine((c) => (c.iterations === undefined) !== (c.epochs === undefined), {
    message: 'give exactly one of iterations or epochs',
    path: ['iterations'],
  });

/** A training run as the user submits it: the config plus labels and operational settings. */
export const trainSpecSchema = z
  .object({
    experiment: experimentSchema,
    train: trainConfigSpecSchema,
    checkpointEvery: z.number().int().positive().default(200),
    heartbeatTimeoutSeconds: heartbeatTimeoutSchema,
  })
  .strict();

export type OptimizerConfig = z.infer<typeof optimizerSchema>;
export type TrainConfigSpec = z.infer<typeof trainConfigSpecSchema>;
export type TrainSpec = z.infer<typeof trainSpecSchema>;
export type TrainSpecInput = z.input<typeof trainSpecSchema>;

export function parseTrainSpec(input: unknown): TrainSpec {
  return parseSpec(trainSpecSchema, input, 'training spec');
}

/** The ml/ config a spec's `train` section means once the training set's size turns epochs into steps. */
export function toTrainConfig(config: TrainConfigSpec, trainSize: number): TrainConfig {
  const { epochs, iterations, ...rest } = config;
  return parseTrainConfig({
    ...rest,
    iterations: iterations ?? epochsToIterations(epochs ?? 1, trainSize, config.batchSize),
  });
}

export interface TrainProgressUpdate {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number | null;
  testAccuracy: number | null;
  testLoss: number | null;
  /** Key of the last checkpoint written, if any. */
  checkpointKey: string | null;
  backend: string;
}

export interface TrainActivityInput {
  spec: TrainSpec;
  /** Workflow that receives progress signals; null when the activity runs on its own. */
  progressWorkflowId: string | null;
}

const evalSchema = z.object({ step: z.number(), testAccuracy: storedNumber, testLoss: storedNumber });

/** A finished run as its manifest records it (runs/<runId>/manifest.json `result`). */
export const trainRunRecordSchema = z.object({
  weights: objectRefSchema,
  metricsKey: z.string(),
  backend: z.string(),
  steps: z.number(),
  final: z.object({
    testAccuracy: storedNumber,
    testLoss: storedNumber,
    trainLoss: storedNumber,
    trainAccuracy: storedNumber,
  }),
  evals: z.array(evalSchema),
});

export type TrainRunRecord = z.infer<typeof trainRunRecordSchema> & { runId: string; manifestKey: string };

export interface TrainRunResult extends TrainRunRecord {
  /** True when the run had already finished and its stored result was returned. */
  reused: boolean;
  /** Step the last attempt resumed from (0 for a fresh start). */
  resumedFromStep: number;
}

export type TrainPhase = 'queued' | 'training' | 'done' | 'failed';

export interface TrainStatus {
  phase: TrainPhase;
  experiment: string;
  progress: TrainProgressUpdate | null;
  result: TrainRunResult | null;
}
