// The compute activities as workflows call them: names, inputs and results. activities/ implements this
// interface; workflows proxy it, so neither imports the other.
import type { MeasureActivityInput, MeasureRecord } from './analysis';
import type { DistillActivityInput, DistillPlanInput, DistillResult, PlannedTeacher } from './distill';
import type { LevelActivityInput, LevelResult } from './lottery';
import type {
  LogitPlan,
  LogitShardInput,
  LogitShardResult,
  PlanLogitsInput,
  PublishLogitsInput,
} from './precompute';
import type { PlannedRun } from './schedule';
import type { TrialsPage } from './sweep';
import type { TrainActivityInput, TrainRunResult } from './train';

export interface ComputeActivities {
  /** One durable training run (checkpoints, heartbeats, exact resume), published under runs/<runId>/. */
  train(input: TrainActivityInput): Promise<TrainRunResult>;
  /** One IMP level of the trunk or of a per-level control branch. */
  lotteryLevel(input: LevelActivityInput): Promise<LevelResult>;
  /** The logit set a precompute spec produces: its keys, shard count, and whether it is already complete. */
  planLogits(input: PlanLogitsInput): Promise<LogitPlan>;
  /** One shard of teacher logits (or the stored one when it verifies). */
  precomputeLogitShard(input: LogitShardInput): Promise<LogitShardResult>;
  /** The logit set's manifest, last; returns its key. */
  publishLogits(input: PublishLogitsInput): Promise<string>;
  /** Each teacher's stored logit set, or the training and precompute that make it. */
  planDistill(input: DistillPlanInput): Promise<PlannedTeacher[]>;
  /** The ViT student trained durably on the teachers' stored outputs. */
  distill(input: DistillActivityInput): Promise<DistillResult>;
  /** One geometry measure of one stored solution (or its stored result). */
  analyzeMeasure(input: MeasureActivityInput): Promise<MeasureRecord>;
}

/** The light task queue's activities: planning and bookkeeping for workflows, no tensors. */
export interface LightActivities {
  /** Trials from..from+count-1 of a sweep: parsed specs and the workflow ids their content hashes give. */
  planSweepTrials(input: { spec: unknown; from: number; count: number }): Promise<TrialsPage>;
  /** Waits for a trial's workflow to finish and returns its kind's metrics; fails when the trial failed. */
  trialOutcome(input: { kind: string; workflowId: string }): Promise<{ metrics: Record<string, number> }>;
  /** A finished trial's result as its kind's metrics (the sandbox cannot import the kinds' metric code). */
  trialMetrics(input: { kind: string; result: unknown }): Promise<{ metrics: Record<string, number> }>;
  /** The run a schedule's spec makes for the time it was scheduled for (labels stamped, kind's workflow and id). */
  planScheduledRun(input: { spec: Record<string, unknown>; scheduledFor: string }): Promise<PlannedRun>;
}

/** Errors that no retry can fix: the activities throw them as non-retryable failures by these types. */
export const NON_RETRYABLE_ERROR_TYPES = [
  'SpecError',
  'IntegrityError',
  'ArtifactNotFoundError',
  'LevelNotFinishedError',
];
