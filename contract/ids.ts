// Identities derived from specs: run and lineage ids (the folders of stored artifacts) and workflow ids (so the
// same spec attaches to its run instead of starting another). Content hashes of canonical JSON, so key order and
// defaults written out or not make no difference. Not for the workflow sandbox: hashing needs node:crypto.
import { getModel } from '../ml/models';
import { contentHash } from '../store/keys';
import { branchKind, type BranchSpec } from './branches';
import type { AnalysisSpec } from './analysis';
import type { DistillSpec, TeacherSource } from './distill';
import type { LotterySpec } from './lottery';
import type { PrecomputeSpec } from './precompute';
import type { SweepSpec } from './sweep';
import { canonicalStrategy, resolvePruning } from './pruning';
import { rewindStep } from './rewind';
import type { TrainConfigSpec, TrainSpec } from './train';

/** Identity of a training run's artifacts (runs/<runId>/): the hash of everything that determines its result. */
export function trainRunId(config: TrainConfigSpec): string {
  return contentHash({ kind: 'train', config }).slice(0, 24);
}

/**
 * The trunk's identity: everything that determines its levels. The pruning enters as the strategy it resolves to
 * for this model (defaults filled in, layer lists sorted), so two ways of writing the same pruning share a
 * lineage. `levels` is left out on purpose, since level L depends only on levels below it: asking for more
 * levels later continues the same lineage.
 */
export function trunkLineageId(spec: LotterySpec): string {
  const strategy = resolvePruning(spec.pruning, getModel(spec.train.model));
  return contentHash({
    kind: 'imp',
    train: spec.train,
    pruning: canonicalStrategy(strategy),
    rewindStep: rewindStep(spec.rewind),
  }).slice(0, 24);
}

/** A branch's identity: its trunk's plus what its kind says of it; a trunk-like branch is a trunk of its own. */
export function branchLineageId(spec: LotterySpec, branch: BranchSpec): string {
  const kind = branchKind(branch);
  if (kind.runs === 'trunk') return trunkLineageId({ ...spec, rewind: kind.rewind(branch) });
  return contentHash({
    kind: 'imp-branch',
    trunk: trunkLineageId(spec),
    branch: kind.lineage(branch, { rewindStep: rewindStep(spec.rewind) }),
  }).slice(0, 24);
}

/**
 * Identity of a distillation run's artifacts (runs/<runId>/, like a training run's): the student's training and
 * architecture, how it learns, and the exact teacher outputs it learns from (their content-addressed manifests).
 */
export function distillRunId(spec: DistillSpec, teachers: readonly TeacherSource[]): string {
  return contentHash({
    kind: 'distill',
    train: spec.train,
    student: spec.student,
    kd: spec.kd,
    // Absent while they are the defaults, so the ids of runs without augmentation stay as they were.
    ...(spec.augmentation.policy !== 'none' ? { augmentation: spec.augmentation } : {}),
    ...(spec.targets !== 'stored' ? { targets: spec.targets } : {}),
    teachers: teachers.map((t) => (spec.targets === 'online' ? { run: t.trainRunId } : t.manifestKeys)),
  }).slice(0, 24);
}

export function specHash(
  spec: TrainSpec | LotterySpec | PrecomputeSpec | DistillSpec | AnalysisSpec | SweepSpec,
): string {
  return contentHash(spec);
}

export function trainWorkflowId(spec: TrainSpec): string {
  return `train-${spec.experiment}-${specHash(spec).slice(0, 16)}`;
}

/** Branches are left out: adding a branch to a spec attaches to the same trunk. */
export function lotteryWorkflowId(spec: LotterySpec): string {
  return `lottery-${spec.experiment}-${specHash({ ...spec, branches: [] }).slice(0, 16)}`;
}

export function precomputeWorkflowId(spec: PrecomputeSpec): string {
  return `logits-${spec.experiment}-${spec.teacher.name}-${specHash(spec).slice(0, 16)}`;
}

export function distillWorkflowId(spec: DistillSpec): string {
  return `distill-${spec.experiment}-${specHash(spec).slice(0, 16)}`;
}

/** The same solutions, measures and config attach to the same analysis. */
export function analysisWorkflowId(spec: AnalysisSpec): string {
  return `analyze-${spec.experiment}-${specHash(spec).slice(0, 16)}`;
}
