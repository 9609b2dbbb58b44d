/**
 * Knowledge distillation losses for the ViT student (ml/models/vit.ts): pure functions of the student's head
 * logits, the labels and the teachers' stored outputs. See README.md here.
 */
export {
  distillationLoss,
  distillationTotal,
  distillTokensFor,
  KD_MODES,
  objectiveFor,
  type DistillLoss,
  type DistillObjective,
  type FeatureTargets,
  type FeatureTerm,
  type KdMode,
  type KdTerm,
  type ObjectiveOptions,
} from './objective.js';
export { KD_MODE_DEFS, type KdModeDef } from './modes/index.js';
export { crossEntropyToLabels, featureKd, hardKd, softKd } from './losses.js';
export {
  averageDistribution,
  teacherDistribution,
  teacherLabels,
  type TeacherKind,
  type TeacherTargets,
} from './targets.js';
