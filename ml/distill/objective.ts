import * as tf from '@tensorflow/tfjs-core';
import { MlInputError } from '../errors.js';
import { crossEntropyToLabels, featureKd, hardKd, softKd } from './losses.js';
import { KD_MODE_DEFS, KD_MODES, type KdMode } from './modes/index.js';
import { averageDistribution, teacherDistribution, teacherLabels, type TeacherTargets } from './targets.js';
import type { DistillObjective, FeatureTerm } from './terms.js';

/**
 * How a student learns from its teachers (../shared/REFERENCES.md): a KD mode (modes/: `none`, `tokens`, `average`,
 * `deit-soft`, `deit-hard`) says which head learns from which teachers, softly or by their argmax, with what weight.
 * Any mode with a teacher may add a feature term: the student's projected patch tokens regressed onto one teacher's
 * last feature map (mean squared error, `features.weight`).
 */
export { KD_MODES, type KdMode };
export type { DistillObjective, FeatureTerm, KdTerm } from './terms.js';

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
  const def = KD_MODE_DEFS[mode];
  if (!def) throw new MlInputError(`mode: unknown ${String(mode)} (${KD_MODES.join(', ')})`);
  const [min, max] = def.teachers;
  if (teachers < min || teachers > max)
    throw new MlInputError(
      `teachers: mode ${mode} takes ${min === max ? min : `${min} to ${max}`} teacher(s), got ${teachers}`,
    );
  const base = def.objective(teachers, { temperature, alpha, kdWeight });
  const f = opts.features;
  if (!f) return base;
  if (!Number.isInteger(f.teacher) || f.teacher < 0 || f.teacher >= teachers)
    throw new MlInputError(`features.teacher: ${f.teacher} is not one of the ${teachers} teacher(s)`);
  if (!(f.weight > 0) || !Number.isFinite(f.weight))
    throw new MlInputError(`features.weight: must be > 0, got ${f.weight}`);
  return { ...base, features: { teacher: f.teacher, weight: f.weight } };
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
