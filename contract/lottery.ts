// The lottery-ticket experiment: its spec (a trunk: dense training, then `levels` rounds of prune -> rewind ->
// retrain; and the control branches to run from it) and the small JSON values of its workflows and activities.
// Tensors never cross; only keys, hashes and metrics.
import { z } from 'zod';

import { analysisConfigSchema } from './analysis';
import { BRANCH_KIND_NAMES, branchKind, branchLabel, branchSpecSchema, type BranchSpec } from './branches';
import { pruningSpecSchema } from './pruning';
import { rewindSpecSchema, type RewindSpec } from './rewind';
import { experimentSchema, heartbeatTimeoutSchema, objectRefSchema, parseSpec } from './spec';
import { trainConfigSpecSchema, type TrainProgressUpdate } from './train';
import { storedNumber } from './stored-numbers';

export const lotterySpecSchema = z
  .object({
    experiment: experimentSchema,
    train: trainConfigSpecSchema,
    /** Pruning levels after the dense level 0: levels 0..levels are trained. */
    levels: z.number().int().min(0).max(100).default(8),
    pruning: pruningSpecSchema.default({ kind: 'global-magnitude', fraction: 0.2 }),
    rewind: rewindSpecSchema.default('init'),
    branches: z.array(branchSpecSchema).default([]),
    checkpointEvery: z.number().int().positive().default(500),
    heartbeatTimeoutSeconds: heartbeatTimeoutSchema,
    /**
     * The geometry of every finished level (trunk and branches), each as a child analyzeWorkflow started when the
     * level is stored; training goes on meanwhile. Absent: no analysis (`lth analyze` can run it later).
     */
    analysis: analysisConfigSchema.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const iterations = s.train.iterations;
    const check = (to: RewindSpec, path: (string | number)[]) => {
      if (to !== 'init' && iterations !== undefined && to.step >= iterations) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `rewind step ${to.step} must be before the end of training (${iterations} iterations)`,
        });
      }
    };
    check(s.rewind, ['rewind', 'step']);
    s.branches.forEach((b, i) => {
      const kind = branchKind(b);
      if (kind.runs === 'trunk') check(kind.rewind(b), ['branches', i, 'to', 'step']);
    });
    const seen = new Set<string>();
    s.branches.forEach((b, i) => {
      const id = branchLabel(b);
      if (seen.has(id))
        ctx.addIssue({ code: 'custom', path: ['branches', i], message: `duplicate branch ${id}` });
      seen.add(id);
    });
  });

export type LotterySpec = z.infer<typeof lotterySpecSchema>;
export type LotterySpecInput = z.input<typeof lotterySpecSchema>;

export function parseLotterySpec(input: unknown): LotterySpec {
  return parseSpec(lotterySpecSchema, input, 'lottery spec');
}

export function parseBranchSpec(input: unknown): BranchSpec {
  return parseSpec(branchSpecSchema, input, 'branch spec');
}

/** A level as its manifest records it (experiments/<lineage>/level-<L>/manifest.json `result`). */
export const levelRecordSchema = z.object({
  /** Content hash of everything that determines this lineage's levels; names its folder in the store. */
  lineageId: z.string(),
  /** What produced the level: the IMP trunk or a control branch kind. */
  source: z.enum(['trunk', ...BRANCH_KIND_NAMES]),
  level: z.number().int(),
  /** Share of prunable weights still alive, in percent, and the counts behind it. */
  remainingPct: z.number(),
  remaining: z.number().int(),
  prunable: z.number().int(),
  /** Step the level's training started from (the rewind step; 0 for initialisation). */
  startStep: z.number().int(),
  steps: z.number().int(),
  bestTestAccuracy: storedNumber,
  /** Step at which bestTestAccuracy was first reached. */
  bestIteration: z.number().int(),
  finalTestAccuracy: storedNumber,
  finalTestLoss: storedNumber,
  finalTrainAccuracy: storedNumber,
  backend: z.string(),
  weights: objectRefSchema,
  mask: objectRefSchema,
  rewind: objectRefSchema,
  metricsKey: z.string(),
  manifestKey: z.string(),
});

export type LevelRecord = z.infer<typeof levelRecordSchema>;
export type LevelSource = LevelRecord['source'];

export interface LevelResult extends LevelRecord {
  /** True when the level had already finished and its stored result was returned. */
  reused: boolean;
  resumedFromStep: number;
  /**
   * Stored objects this activity found damaged or missing (the level's own, or those of the levels and run it
   * derives from) and recomputed, by key; absent when there were none.
   */
  healed?: string[];
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

export type LotteryPhase = 'queued' | 'training' | 'branches' | 'done' | 'failed' | 'cancelled';

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
  /** True while a `pause` holds the next level back (the running one finishes). */
  paused?: boolean;
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
  /** Paused by `lth pause` before a continue-as-new: the next run waits for `resume` too. */
  paused?: boolean;
}

export interface BranchWorkflowInput {
  spec: unknown;
  branch: unknown;
}

export { branchLabel, branchWorkflowId, type BranchSpec } from './branches';
export { rewindStep, type RewindSpec } from './rewind';
export { resolvePruning, type PruningSpec } from './pruning';
