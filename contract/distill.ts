// The spec of a distillation run (LIB-KD): a ViT student, its teachers (stored logit sets, or teachers to train and
// precompute first), how it learns from them, and its training; and the values its workflow and activities exchange.
import { z } from 'zod';

import { KD_MODE_DEFS, KD_MODES } from '../ml/distill/modes';
import { FEATURE_MAP_MODELS, MODEL_NAMES } from '../ml/models/names';
import { objectKeySchema } from '../store/refs';
import { parseSpec, experimentSchema, heartbeatTimeoutSchema, nameSchema } from './spec';
import { augmentationSpecSchema, LOGIT_FORMAT_NAMES, type PrecomputeSpec } from './precompute';
import {
  trainConfigSpecSchema,
  type TrainProgressUpdate,
  type TrainRunResult,
  type TrainSpec,
} from './train';

const STUDENT_MODELS = MODEL_NAMES.filter((m) => m.startsWith('vit-'));

/** A teacher: a stored logit set (its manifest key), or a training spec (trained and precomputed if missing). */
export const teacherSpecSchema = z.union([
  z.object({ name: nameSchema, logits: objectKeySchema }).strict(),
  z
    .object({
      name: nameSchema,
      train: trainConfigSpecSchema,
      /** How its logits are stored when they are precomputed here. */
      format: z.enum(LOGIT_FORMAT_NAMES).default('float16'),
      k: z.number().int().positive().optional(),
    })
    .strict(),
]);

export const kdSpecSchema = z
  .object({
    mode: z.enum(KD_MODES).default('tokens'),
    temperature: z.number().positive().finite().default(1),
    /** DeiT's α: (1 − α)·CE + α·KD. */
    alpha: z.number().min(0).max(1).default(0.5),
    /** The weight of each KD term in `tokens` and `average` (the class term's is 1). */
    kdWeight: z.number().min(0).finite().default(1),
    /**
     * Feature distillation: the student's patch tokens, projected, regress onto this teacher's last feature map
     * (mean squared error, weighted so). The maps are precomputed into shards like the logits (or run online).
     */
    features: z
      .object({
        teacher: nameSchema,
        weight: z.number().positive().finite().default(1),
        format: z.enum(['float32', 'float16']).default('float16'),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Changes to the registered student's ViT configuration (patch, width, depth, ...). */
export const studentSpecSchema = z
  .object({
    patch: z.number().int().positive().optional(),
    dim: z.number().int().positive().optional(),
    depth: z.number().int().positive().optional(),
    heads: z.number().int().positive().optional(),
    mlpRatio: z.number().positive().optional(),
    predict: z.enum(['average', 'class']).optional(),
    /** Dropout after attention and MLP outputs while training (default none). */
    dropout: z.number().min(0).lt(1).optional(),
    /** Stochastic depth: the last block's drop-path rate, 0 in the first, linear between (DeiT; default none). */
    dropPath: z.number().min(0).lt(1).optional(),
  })
  .strict();

export const distillSpecSchema = z
  .object({
    experiment: experimentSchema,
    student: studentSpecSchema.default({}),
    teachers: z.array(teacherSpecSchema).max(8).default([]),
    kd: kdSpecSchema.default({ mode: 'tokens', temperature: 1, alpha: 0.5, kdWeight: 1 }),
    /** The student's training; `model` names the registered ViT it starts from. */
    train: trainConfigSpecSchema,
    /**
     * The views the student trains on: epoch e sees each sample's view e of the policy (none: the image itself).
     * With stored targets, a logit set is precomputed per epoch on exactly those views.
     */
    augmentation: augmentationSpecSchema.omit({ epoch: true }).default({ policy: 'none', seed: 0 }),
    /** Where the teachers' outputs come from: their stored logit sets, or running them on each batch. */
    targets: z.enum(['stored', 'online']).default('stored'),
    checkpointEvery: z.number().int().positive().default(200),
    heartbeatTimeoutSeconds: heartbeatTimeoutSchema,
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!(STUDENT_MODELS as readonly string[]).includes(s.train.model)) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'model'],
        message: `the student must be a ViT (${STUDENT_MODELS.join(', ')}), not ${s.train.model}`,
      });
    }
    const n = s.teachers.length;
    const mode = KD_MODE_DEFS[s.kd.mode];
    const [min, max] = mode.teachers;
    if (n < min || n > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['teachers'],
        message: `kd.mode ${s.kd.mode} takes ${min === max ? min : `${min} to ${max}`} teacher(s), got ${n}`,
      });
    } else {
      const o = mode.objective(n, s.kd);
      const total = o.classWeight + o.terms.reduce((w, t) => w + t.weight, 0) + (s.kd.features?.weight ?? 0);
      if (total <= 0)
        ctx.addIssue({ code: 'custom', path: ['kd'], message: 'the loss terms weigh 0 in all' });
    }
    const f = s.kd.features;
    if (f) {
      const teacher = s.teachers.find((t) => t.name === f.teacher);
      const problem = !teacher
        ? `names no teacher of this spec (${s.teachers.map((t) => t.name).join(', ') || 'none'})`
        : !('train' in teacher)
          ? "needs the teacher's training spec: its feature maps are computed from its weights"
          : !(FEATURE_MAP_MODELS as readonly string[]).includes(teacher.train.model)
            ? `${teacher.train.model} has no feature map (${FEATURE_MAP_MODELS.join(', ')} have)`
            : null;
      if (problem) ctx.addIssue({ code: 'custom', path: ['kd', 'features', 'teacher'], message: problem });
    }
    const names = new Set<string>();
    s.teachers.forEach((t, i) => {
      if (names.has(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['teachers', i, 'name'],
          message: `duplicate teacher ${t.name}`,
        });
      names.add(t.name);
      if ('logits' in t && s.augmentation.policy !== 'none') {
        ctx.addIssue({
          code: 'custom',
          path: ['teachers', i, 'logits'],
          message: `a stored set holds one view per sample; with augmentation ${s.augmentation.policy} give the teacher's training spec (a set is precomputed per epoch)`,
        });
      }
      if ('logits' in t && s.targets === 'online') {
        ctx.addIssue({
          code: 'custom',
          path: ['teachers', i, 'logits'],
          message: "targets online run the teacher on each batch: give the teacher's training spec",
        });
      }
      if ('format' in t && (t.format === 'top-k') !== (t.k !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['teachers', i, 'k'],
          message: t.format === 'top-k' ? 'required for format top-k' : `only meaningful for format top-k`,
        });
      }
    });
  });

export type DistillSpec = z.infer<typeof distillSpecSchema>;
export type DistillSpecInput = z.input<typeof distillSpecSchema>;
export type TeacherSpec = z.infer<typeof teacherSpecSchema>;

export function parseDistillSpec(input: unknown): DistillSpec {
  return parseSpec(distillSpecSchema, input, 'distill spec');
}

/**
 * What the student learns from of one teacher: its logit set per epoch (one for every epoch without augmentation),
 * or, online, its trained run.
 */
export interface TeacherSource {
  name: string;
  /** Stored targets: the logit set of epoch e is manifestKeys[e], or manifestKeys[0] for every epoch. */
  manifestKeys: string[];
  /** Online targets: the teacher's finished training run. */
  trainRunId: string | null;
  /** The feature-distillation teacher's feature-map set per epoch (as manifestKeys); absent for the others. */
  featureKeys?: string[];
}

/** A teacher as the plan resolved it: what exists, and the runs that make what is missing (each reuses what it finds). */
export interface PlannedTeacher {
  name: string;
  /** The logit set of each epoch (stored targets), null where it is missing; empty online. */
  manifestKeys: (string | null)[];
  /** The teacher's training run id (given by training spec), whether finished or not. */
  trainRunId: string | null;
  /** The teacher's training, when its run is not finished. */
  train?: TrainSpec;
  /** The feature-distillation teacher's feature-map set of each epoch, null where missing; absent otherwise. */
  featureKeys?: (string | null)[];
  /** The precompute of each missing logit set (and feature-map set: `spec.outputs`), by epoch. */
  precompute: { epoch: number; spec: PrecomputeSpec }[];
}

export interface DistillPlanInput {
  spec: DistillSpec;
}

export interface DistillActivityInput {
  spec: DistillSpec;
  /** Each teacher's targets, in spec order. */
  teachers: TeacherSource[];
  progressWorkflowId: string | null;
}

export interface DistillResult extends TrainRunResult {
  teachers: TeacherSource[];
  /**
   * Stored objects this distillation found damaged or missing (its teachers' logit shards or sets, its own earlier
   * result) and recomputed, by key; absent when there were none.
   */
  healed?: string[];
}

export type DistillPhase = 'planning' | 'teachers' | 'training' | 'done' | 'failed';

export interface DistillStatus {
  phase: DistillPhase;
  experiment: string;
  teachers: { name: string; ready: boolean; making: boolean }[];
  progress: TrainProgressUpdate | null;
  result: DistillResult | null;
}

/** The child workflows that train a missing teacher and precompute its logits (and feature maps), named under the distillation's. */
export function teacherWorkflowIds(
  distillWorkflowId: string,
  teacher: string,
): { train: string; logits: (epoch: number) => string; features: (epoch: number) => string } {
  const suffix = (epoch: number) => (epoch > 0 ? `-e${epoch}` : '');
  return {
    train: `${distillWorkflowId}.${teacher}.train`,
    logits: (epoch) => `${distillWorkflowId}.${teacher}.logits${suffix(epoch)}`,
    features: (epoch) => `${distillWorkflowId}.${teacher}.features${suffix(epoch)}`,
  };
}
