// What a training run computes, as the one schema of it: the trainer parses its config with this, and the spec
// schemas of contract/ are derived from it (defaults and spec-only fields added there), so a config that passes a
// spec check cannot fail here. Pure zod and name lists: it is imported inside the workflow sandbox.
import { z } from 'zod';

import { AUGMENTATION_POLICIES, DATASET_NAMES } from '../data/names.js';
import { MlInputError } from '../errors.js';
import { MODEL_NAMES } from '../models/names.js';
import { scheduleSchema } from './schedule.js';

const nonNegInt = z.number().int().min(0);
const posInt = z.number().int().min(1);
const rate = z.number().min(0).lt(1);

/** Adam's and AdamW's shared hyperparameters, torch's defaults. */
const ADAM_FIELDS = {
  lr: z.number().positive().finite(),
  beta1: rate.default(0.9),
  beta2: rate.default(0.999),
  eps: z.number().positive().finite().default(1e-8),
};

/**
 * PyTorch semantics: for sgd and adam, weightDecay is L2 added to the gradient; adamw decays the weights themselves
 * (Loshchilov & Hutter: w ← w·(1 − lr·weightDecay) before Adam's step; torch's default weightDecay 0.01).
 */
export const optimizerSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('sgd'),
      lr: z.number().positive().finite(),
      momentum: rate.default(0),
      nesterov: z.boolean().optional(),
      weightDecay: z.number().min(0).finite().optional(),
    })
    .strict()
    .refine((o) => !o.nesterov || o.momentum > 0, {
      message: 'nesterov needs momentum > 0',
      path: ['nesterov'],
    }),
  z
    .object({ kind: z.literal('adam'), ...ADAM_FIELDS, weightDecay: z.number().min(0).finite().optional() })
    .strict(),
  z
    .object({
      kind: z.literal('adamw'),
      ...ADAM_FIELDS,
      weightDecay: z.number().min(0).finite().default(0.01),
    })
    .strict(),
]);

export const trainConfigSchema = z
  .object({
    // A string, so that a config written by hand gets the registry's own message for an unknown name.
    model: z.string().refine((m) => (MODEL_NAMES as readonly string[]).includes(m), {
      error: (i) => `unknown model '${String(i.input)}'; known models: ${MODEL_NAMES.join(', ')}`,
    }),
    dataset: z.enum(DATASET_NAMES),
    optimizer: optimizerSchema,
    /** How the learning rate changes over the run (ml/train/schedule.ts); absent: constant. */
    schedule: scheduleSchema.optional(),
    /**
     * The cross-entropy's targets are (1 − ε)·one-hot + ε/classes (torch's label_smoothing), in training only: the
     * reported test loss stays the plain cross-entropy. Not with a distillation objective, which has its own.
     */
    labelSmoothing: z.number().min(0).lt(1).optional(),
    /**
     * Each training image's view, a pure function of (seed, epoch, sample) (ml/data/augment.ts): `crop-flip` is the
     * CIFAR recipe (pad 4, random crop, horizontal flip). Not with a distillation objective, which brings its own.
     */
    augmentation: z
      .object({
        policy: z.enum(AUGMENTATION_POLICIES),
        seed: z.number().int().min(0).default(0),
        maxShift: z.number().int().min(0).max(63).optional(),
      })
      .strict()
      .optional(),
    batchSize: posInt,
    /** Optimizer steps. One epoch is ceil(trainSize / batchSize) steps; see epochsToIterations. */
    iterations: nonNegInt,
    /** Evaluate on the test set every this many steps (0: only at step 0 and at the end). */
    evalEvery: nonNegInt,
    /** Seeds the data order (and the initialisation, when no initialWeights are given). */
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    trainLimit: posInt.optional(),
    testLimit: posInt.optional(),
  })
  .strict();

export type OptimizerSpec = z.output<typeof optimizerSchema>;
export type TrainConfig = z.output<typeof trainConfigSchema>;

export function zodMessage(prefix: string, err: z.ZodError): string {
  return `${prefix}: ${err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ')}`;
}

export function parseTrainConfig(config: unknown): TrainConfig {
  const r = trainConfigSchema.safeParse(config);
  if (!r.success) throw new MlInputError(zodMessage('invalid train config', r.error));
  return r.data;
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
