import * as tf from '@tensorflow/tfjs-core';
import { MlInputError } from '../errors.js';
import { crossEntropyToLabels, featureKd, hardKd, softKd } from './losses.js';
import { KD_MODES, type KdMode } from './modes.js';
import { averageDistribution, teacherDistribution, teacherLabels, type TeacherTargets } from './targets.js';

/**
 * How a student learns from its teachers (../shared/REFERENCES.md):
 * - `none`: cross-entropy on the class head, no teacher (the plain student);
 * - `tokens` (CiT / Co-advise, LIB-KD): one distillation token per teacher, soft KD from that teacher on its head;
 * - `average`: one distillation token, soft KD from the mean of the teachers' distributions;
 * - `deit-soft` / `deit-hard` (DeiT): one distillation token taught by the first teacher, softly or by its argmax,
 *   the loss (1 − α)·CE + α·KD.
 * Any mode with a teacher may add a feature term: the student's projected patch tokens regressed onto one teacher's
 * last feature map (mean squared error, `features.weight`).
 */
export { KD_MODES, type KdMode };

export interface KdTerm {
  /** The student head it trains: 1..T (head 0 is the class head). */
  head: number;
  /** The teachers whose distributions it averages (one for every mode but `average`). */
  teachers: number[];
  kind: 'soft' | 'hard';
  weight: number;
  temperature: number;
}

export interface FeatureTerm {
  /** The teacher whose feature map the patch tokens regress onto. */
  teacher: number;
  weight: number;
}

export interface DistillObjective {
  /** Weight of the cross-entropy of the class head with the labels. */
  classWeight: number;
  terms: KdTerm[];
  features?: FeatureTerm;
}

/** The student's projected patch tokens and the teacher's feature map for the batch, both [B, positions, C]. */
export interface FeatureTargets {
  student: tf.Tensor3D;
  teacher: tf.Tensor3D;
}

export interface ObjectiveOptions {
  /** τ of the soft terms (default 1, as CiT). */
  temperature?: number;
  /** DeiT's α (default 0.5). */
  alpha?: number;
  /** Weight of each KD term in `tokens` and `average` (default 1, as CiT); the class term's is 1. */
  kdWeight?: number;
  /** A feature term from this teacher (an index into the teachers), weighted so. */
  features?: FeatureTerm;
}

/** The objective of a mode for this many teachers; refuses what cannot work, naming the option. */
export function objectiveFor(mode: KdMode, teachers: number, opts: ObjectiveOptions = {}): DistillObjective {
  const temperature = opts.temperature ?? 1;
  const alpha = opts.alpha ?? 0.5;
  const kdWeight = opts.kdWeight ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new MlInputError(`temperature: must be > 0, got ${temperature}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new MlInputError(`alpha: must be in [0, 1], got ${alpha}`);
  if (!(kdWeight >= 0) || !Number.isFinite(kdWeight))
    throw new MlInputError(`kdWeight: must be >= 0, got ${kdWeight}`);
  const need = mode === 'none' ? 0 : 1;
  if (teachers < need)
    throw new MlInputError(`teachers: mode ${mode} needs at least ${need}, got ${teachers}`);
  if (mode.startsWith('deit') && teachers !== 1)
    throw new MlInputError(`teachers: mode ${mode} distils one teacher, got ${teachers}`);
  const base = logitObjective(mode, teachers, temperature, alpha, kdWeight);
  const f = opts.features;
  if (!f) return base;
  if (!Number.isInteger(f.teacher) || f.teacher < 0 || f.teacher >= teachers)
    throw new MlInputError(`features.teacher: ${f.teacher} is not one of the ${teachers} teacher(s)`);
  if (!(f.weight > 0) || !Number.isFinite(f.weight))
    throw new MlInputError(`features.weight: must be > 0, got ${f.weight}`);
  return { ...base, features: { teacher: f.teacher, weight: f.weight } };
}

function logitObjective(
  mode: KdMode,
  teachers: number,
  temperature: number,
  alpha: number,
  kdWeight: number,
): DistillObjective {
  const soft = (head: number, from: number[], weight: number): KdTerm => ({
    head,
    teachers: from,
    kind: 'soft',
    weight,
    temperature,
  });
  switch (mode) {
    case 'none':
      return { classWeight: 1, terms: [] };
    case 'tokens':
      return {
        classWeight: 1,
        terms: Array.from({ length: teachers }, (_, i) => soft(i + 1, [i], kdWeight)),
      };
    case 'average':
      return {
        classWeight: 1,
        terms: [
          soft(
            1,
            Array.from({ length: teachers }, (_, i) => i),
            kdWeight,
          ),
        ],
      };
    case 'deit-soft':
      return { classWeight: 1 - alpha, terms: [soft(1, [0], alpha)] };
    case 'deit-hard':
      return {
        classWeight: 1 - alpha,
        terms: [{ head: 1, teachers: [0], kind: 'hard', weight: alpha, temperature: 1 }],
      };
  }
}

/** Distillation tokens a student needs for this objective: its highest head. */
export function distillTokensFor(objective: DistillObjective): number {
  return objective.terms.reduce((m, t) => Math.max(m, t.head), 0);
}

export interface DistillLoss {
  total: tf.Scalar;
  /** Each term's unweighted value, for progress and metrics: `ce`, then `kd<head>`, then `features`. */
  parts: Record<string, number>;
}

interface Term {
  name: string;
  weight: number;
  value: tf.Scalar;
}

/** The objective's terms for one batch, unweighted, with their weights. */
function terms(
  heads: tf.Tensor2D[],
  labels: tf.Tensor1D,
  teachers: TeacherTargets[],
  objective: DistillObjective,
  features: FeatureTargets | undefined,
): Term[] {
  const tokens = distillTokensFor(objective);
  if (heads.length !== tokens + 1) {
    throw new MlInputError(
      `the student has ${heads.length - 1} distillation tokens, the objective uses ${tokens}`,
    );
  }
  const weightSum =
    objective.classWeight +
    objective.terms.reduce((s, t) => s + t.weight, 0) +
    (objective.features?.weight ?? 0);
  if (!(weightSum > 0)) throw new MlInputError('weights: the loss terms weigh 0 in all');
  const out: Term[] = [
    {
      name: 'ce',
      weight: objective.classWeight,
      value: crossEntropyToLabels(heads[0] as tf.Tensor2D, labels),
    },
  ];
  for (const t of objective.terms) {
    const from = t.teachers.map((i) => {
      const target = teachers[i];
      if (!target)
        throw new MlInputError(`teachers: the objective uses teacher ${i}, ${teachers.length} given`);
      return target;
    });
    const head = heads[t.head] as tf.Tensor2D;
    const value =
      t.kind === 'hard'
        ? hardKd(head, teacherLabels(from[0] as TeacherTargets))
        : softKd(
            head,
            from.length === 1
              ? teacherDistribution(from[0] as TeacherTargets, t.temperature)
              : averageDistribution(from, t.temperature),
            t.temperature,
          );
    out.push({ name: `kd${t.head}`, weight: t.weight, value });
  }
  if (objective.features) {
    if (!features)
      throw new MlInputError('features: the objective has a feature term, the batch has no feature targets');
    out.push({
      name: 'features',
      weight: objective.features.weight,
      value: featureKd(features.student, features.teacher),
    });
  }
  return out;
}

/**
 * The objective's loss for one batch: classWeight·CE(head 0, labels) + Σ weight·KD(head, teachers)
 * (+ weight·MSE(features)). `heads` are the student's logits per head (class head first), `teachers` the batch's
 * targets of every teacher in spec order, `features` the feature term's two sides when the objective has one.
 * What a training step differentiates; `distillationLoss` also reports each term.
 */
export function distillationTotal(
  heads: tf.Tensor2D[],
  labels: tf.Tensor1D,
  teachers: TeacherTargets[],
  objective: DistillObjective,
  features?: FeatureTargets,
): tf.Scalar {
  return tf.tidy(() =>
    terms(heads, labels, teachers, objective, features)
      .filter((t) => t.weight !== 0)
      .map((t) => tf.mul(t.value, t.weight) as tf.Scalar)
      .reduce((a, b) => tf.add(a, b) as tf.Scalar),
  );
}

/** distillationTotal and each term's unweighted value (read from the device: not for the inner loop). */
export function distillationLoss(
  heads: tf.Tensor2D[],
  labels: tf.Tensor1D,
  teachers: TeacherTargets[],
  objective: DistillObjective,
  features?: FeatureTargets,
): DistillLoss {
  const parts: Record<string, number> = {};
  const total = tf.tidy(() => {
    const ts = terms(heads, labels, teachers, objective, features);
    for (const t of ts) parts[t.name] = t.value.dataSync()[0] as number;
    return ts
      .filter((t) => t.weight !== 0)
      .map((t) => tf.mul(t.value, t.weight) as tf.Scalar)
      .reduce((a, b) => tf.add(a, b) as tf.Scalar);
  });
  return { total, parts };
}
