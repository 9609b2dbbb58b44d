// The spec of a teacher-logit precompute (which trained teacher, on which data and views, stored how) and the
// values its workflow and activities exchange.
import { z } from 'zod';

import { AUGMENTATION_POLICIES, DATASET_NAMES } from '../ml/data/names';
import { FEATURE_MAP_MODELS } from '../ml/models/names';
import { experimentSchema, heartbeatTimeoutSchema, nameSchema, objectRefSchema, parseSpec } from './spec';
import { trainConfigSpecSchema } from './train';

export const LOGIT_FORMAT_NAMES = ['float32', 'float16', 'top-k'] as const;
export const AUGMENTATION_POLICY_NAMES = AUGMENTATION_POLICIES;

export const augmentationSpecSchema = z
  .object({
    policy: z.enum(AUGMENTATION_POLICY_NAMES).default('none'),
    seed: z.number().int().min(0).default(0),
    /** random-shift: the largest shift in pixels (default 2); crop-flip: the padding (default 4). */
    maxShift: z.number().int().min(0).max(27).optional(),
    /** Which epoch's views: each epoch of a seeded policy draws new ones. */
    epoch: z.number().int().min(0).default(0),
  })
  .strict();

export const precomputeSpecSchema = z
  .object({
    experiment: experimentSchema,
    teacher: z
      .object({
        /** A readable name recorded in the manifest (e.g. cnn-teacher). */
        name: nameSchema,
        /** The teacher's training config: its finished run (`lth train`) holds the weights used. */
        train: trainConfigSpecSchema,
      })
      .strict(),
    /** Defaults to the teacher's dataset. */
    dataset: z.enum(DATASET_NAMES).optional(),
    split: z.enum(['train', 'test']).default('train'),
    limit: z.number().int().positive().optional(),
    augmentation: augmentationSpecSchema.default({ policy: 'none', seed: 0, epoch: 0 }),
    format: z.enum(LOGIT_FORMAT_NAMES).default('float16'),
    /**
     * What is stored per sample: the teacher's logits (absent), or its last feature map (feature distillation;
     * float32 or float16, h·w·c values per sample).
     */
    outputs: z.enum(['logits', 'features']).optional(),
    /** top-k: probabilities kept per sample. */
    k: z.number().int().positive().optional(),
    shardSize: z.number().int().positive().default(10_000),
    /** Shards computed at once (compute workers take them as they have slots). */
    parallelism: z.number().int().positive().max(64).default(2),
    heartbeatTimeoutSeconds: heartbeatTimeoutSchema,
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.outputs === 'features') {
      if (s.format === 'top-k')
        ctx.addIssue({
          code: 'custom',
          path: ['format'],
          message: 'a feature map is stored as float32 or float16',
        });
      if (!(FEATURE_MAP_MODELS as readonly string[]).includes(s.teacher.train.model))
        ctx.addIssue({
          code: 'custom',
          path: ['outputs'],
          message: `${s.teacher.train.model} has no feature map to store (${FEATURE_MAP_MODELS.join(', ')} have)`,
        });
    }
    if (s.format === 'top-k' && s.k === undefined) {
      ctx.addIssue({ code: 'custom', path: ['k'], message: 'required for format top-k' });
    }
    if (s.format !== 'top-k' && s.k !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['k'],
        message: `only meaningful for format top-k, not ${s.format}`,
      });
    }
  });

export type AugmentationSpecValue = z.infer<typeof augmentationSpecSchema>;
export type PrecomputeSpec = z.infer<typeof precomputeSpecSchema>;
export type PrecomputeSpecInput = z.input<typeof precomputeSpecSchema>;

export function parsePrecomputeSpec(input: unknown): PrecomputeSpec {
  return parseSpec(precomputeSpecSchema, input, 'precompute spec');
}

/**
 * How the augmentation is named in a logit manifest: the policy with everything that changes its views, so that
 * a reader comparing names compares views ('none' has one view whatever the seed and epoch).
 */
export function augmentationLabel(a: AugmentationSpecValue): { policy: string; seed: number } {
  if (a.policy === 'none') return { policy: 'none', seed: 0 };
  if (a.policy === 'crop-flip')
    return { policy: `crop-flip(pad=${a.maxShift ?? 4},epoch=${a.epoch})`, seed: a.seed };
  return { policy: `random-shift(max=${a.maxShift ?? 2},epoch=${a.epoch})`, seed: a.seed };
}

export interface LogitShardResult extends z.infer<typeof objectRefSchema> {
  start: number;
  end: number;
  /** True when a valid shard was already stored and the teacher did not run. */
  skipped: boolean;
}

export interface LogitPlan {
  teacherRunId: string;
  /** The teacher's final weights object: shards load exactly these, whatever the run's manifest says later. */
  weights: { key: string; sha256: string };
  weightsSha256: string;
  classes: number;
  sampleCount: number;
  shardCount: number;
  manifestKey: string;
  /** True when the manifest is already published and every shard verified: nothing to do. */
  complete: boolean;
}

/** What the shard and publish activities take from the plan instead of looking the teacher up again. */
export interface LogitPlanRef {
  weights: { key: string; sha256: string };
  sampleCount: number;
}

export interface PlanLogitsInput {
  spec: PrecomputeSpec;
}

export interface LogitShardInput {
  spec: PrecomputeSpec;
  shard: number;
  /** Absent in shards scheduled by workflows started before plans travelled: the activity looks it up. */
  plan?: LogitPlanRef;
}

export interface PublishLogitsInput {
  spec: PrecomputeSpec;
  shards: LogitShardResult[];
  plan?: LogitPlanRef;
}

export interface PrecomputeResult {
  manifestKey: string;
  sampleCount: number;
  shards: LogitShardResult[];
  computedShards: number;
  skippedShards: number;
  /** True when the manifest was already there: no shard was even looked at by a teacher. */
  reused: boolean;
}

export interface PrecomputeStatus {
  phase: 'planning' | 'computing' | 'publishing' | 'done' | 'failed';
  experiment: string;
  shardCount: number | null;
  done: number;
  computed: number;
  skipped: number;
}
