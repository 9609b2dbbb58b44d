// Run specifications: the one schema shared by the CLI (fail fast), the workflows (non-retryable
// failure on bad input) and the activities (defence at the edge). Pure zod, so it is safe inside
// the deterministic workflow sandbox.
import { z } from 'zod';

export const MODEL_NAMES = [
  'lenet-300-100',
  'conv-2',
  'conv-4',
  'cnn-teacher',
  'involution-teacher',
] as const;
export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;

const positiveInt = z.number().int().positive();

export const optimizerSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('sgd'),
      lr: z.number().positive(),
      momentum: z.number().min(0).max(1).default(0),
      nesterov: z.boolean().optional(),
      weightDecay: z.number().min(0).optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('adam'),
      lr: z.number().positive(),
      beta1: z.number().min(0).lt(1).default(0.9),
      beta2: z.number().min(0).lt(1).default(0.999),
      eps: z.number().positive().default(1e-8),
      weightDecay: z.number().min(0).optional(),
    })
    .strict(),
]);

/** What a training run computes. Everything here determines the result, so it is all hashed. */
export const trainConfigSchema = z
  .object({
    model: z.enum(MODEL_NAMES).default('lenet-300-100'),
    dataset: z.enum(DATASET_NAMES).default('mnist'),
    // open_lth's LeNet-300-100 defaults: plain SGD, lr 0.1, batch 128.
    optimizer: optimizerSchema.default({ kind: 'sgd', lr: 0.1, momentum: 0 }),
    batchSize: positiveInt.default(128),
    iterations: positiveInt.optional(),
    epochs: z.number().positive().optional(),
    evalEvery: positiveInt.default(500),
    seed: z.number().int().min(0).default(0),
    trainLimit: positiveInt.optional(),
    testLimit: positiveInt.optional(),
  })
  .strict()
  .refine((c) => (c.iterations === undefined) !== (c.epochs === undefined), {
    message: 'give exactly one of iterations or epochs',
    path: ['iterations'],
  });

/** A training run as the user submits it: the config plus labels and operational settings. */
export const trainSpecSchema = z
  .object({
    experiment: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash, underscore; at most 64')
      .default('default'),
    train: trainConfigSchema,
    checkpointEvery: positiveInt.default(200),
    /** Seconds without a heartbeat after which Temporal declares the compute worker lost. */
    heartbeatTimeoutSeconds: positiveInt.default(60),
  })
  .strict();

export type OptimizerConfig = z.infer<typeof optimizerSchema>;
export type TrainConfigSpec = z.infer<typeof trainConfigSchema>;
export type TrainSpec = z.infer<typeof trainSpecSchema>;
export type TrainSpecInput = z.input<typeof trainSpecSchema>;

export class SpecError extends Error {
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

/** Parses a spec, turning every problem into a line naming the offending field. */
export function parseSpec<S extends z.ZodType>(schema: S, input: unknown, what = 'spec'): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.infer<S>;
  const issues = result.error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    return `${field}: ${issue.message}`;
  });
  throw new SpecError(`invalid ${what}:\n  ${issues.join('\n  ')}`, issues);
}

export function parseTrainSpec(input: unknown): TrainSpec {
  return parseSpec(trainSpecSchema, input, 'training spec');
}
