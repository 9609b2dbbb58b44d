// Small JSON values of the lottery-ticket workflows. Tensors never cross; only keys, hashes and metrics.
import type { BranchSpec, LotterySpec } from './lottery-specs';
import type { ArtifactRef, TrainProgressUpdate } from './train-types';

/** What produced a level: the IMP trunk or one of the control branches. */
export type LevelSource = 'trunk' | BranchSpec['kind'];

export interface LevelResult {
  /** Content hash of everything that determines this lineage's levels; names its folder in the store. */
  lineageId: string;
  source: LevelSource;
  level: number;
  /** Share of prunable weights still alive, in percent, and the counts behind it. */
  remainingPct: number;
  remaining: number;
  prunable: number;
  /** Step the level's training started from (the rewind step; 0 for initialisation). */
  startStep: number;
  steps: number;
  bestTestAccuracy: number;
  /** Step at which bestTestAccuracy was first reached. */
  bestIteration: number;
  finalTestAccuracy: number;
  finalTestLoss: number;
  finalTrainAccuracy: number;
  backend: string;
  weights: ArtifactRef;
  mask: ArtifactRef;
  rewind: ArtifactRef;
  metricsKey: string;
  manifestKey: string;
  /** True when the level had already finished and its stored result was returned. */
  reused: boolean;
  resumedFromStep: number;
}

export interface LevelActivityInput {
  spec: LotterySpec;
  level: number;
  /** Set for a branch level; absent for the trunk. */
  branch?: BranchSpec;
  progressWorkflowId: string | null;
}

export interface LevelProgressUpdate extends TrainProgressUpdate {
  level: number;
}

export interface BranchSummary {
  label: string;
  branch: BranchSpec;
  workflowId: string;
  levels: LevelResult[];
}

export type LotteryPhase = 'queued' | 'training' | 'branches' | 'done' | 'failed';

export interface LotteryStatus {
  phase: LotteryPhase;
  experiment: string;
  /** 'trunk' or a branch label. */
  kind: string;
  /** The spec's `levels`: a trunk trains levels 0..levelsPlanned, a per-level branch 1..levelsPlanned. */
  levelsPlanned: number;
  levels: LevelResult[];
  /** Progress of levels being trained now, by level. */
  running: LevelProgressUpdate[];
  branches: BranchSummary[];
}

export interface LotteryResult {
  experiment: string;
  lineageId: string;
  levels: LevelResult[];
  branches: BranchSummary[];
}

export interface LotteryWorkflowInput {
  spec: unknown;
  /** Levels finished by earlier runs of this workflow (carried over continue-as-new). */
  completed?: LevelResult[];
  /**
   * 'rewind-branch' when this trunk is the inner IMP of a rewind branch: it is listed with RunKind
   * 'lottery-rewind-trunk', so that `RunKind = "lottery"` finds only the experiment's own trunks.
   */
  role?: 'trunk' | 'rewind-branch';
}

export interface BranchWorkflowInput {
  spec: unknown;
  branch: unknown;
}
