// The lottery-ticket spec as `lth lottery` and `lth branch` take it: a JSON/YAML file, flags that override it
// field by field, then the full check: the schema, and the pruning's layer names against the model, so that a
// bad spec fails here, before anything is started.
import { InvalidArgumentError } from 'commander';

import type { z } from 'zod';

import { BRANCH_FLAG_HELP, branchFromFlag, branchLabel, branchSpecSchema } from '../contract/branches';
import type { LotterySpec } from '../contract/lottery';
import type { RewindSpec } from '../contract/rewind';
import { validateLotterySpec } from '../contract/spec-kinds';
import { issueLines } from '../store/errors';
import { readSpecFile } from './spec-file';
import { applyTrainFlags, type TrainFieldFlags } from './spec-flags';

export interface LotteryFieldFlags extends TrainFieldFlags {
  config?: string;
  experiment?: string;
  levels?: number;
  /** Pruning fraction per level (of the kind the spec names). */
  fraction?: number;
  rewind?: RewindFlag;
  /** Replaces the spec's branches. */
  branch?: BranchFlag[];
  checkpointEvery?: number;
}

export type RewindFlag = RewindSpec;
/** A branch as written (defaults not filled in), checked against its kind's schema. */
export type BranchFlag = z.input<typeof branchSpecSchema>;

/** `--rewind init` or `--rewind <step>`. */
export function parseRewindFlag(v: string): RewindFlag {
  if (v === 'init') return 'init';
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected 'init' or a positive step number, got "${v}"`);
  }
  return { step: n };
}

/** One `--branch` value, in any of the ways the branch kinds write themselves (contract/branches). */
export function parseBranchFlag(v: string, prev: BranchFlag[] = []): BranchFlag[] {
  const raw = branchFromFlag(v);
  if (raw === null) throw new InvalidArgumentError(`expected ${BRANCH_FLAG_HELP}, got "${v}"`);
  const r = branchSpecSchema.safeParse(raw);
  if (!r.success) throw new InvalidArgumentError(`"${v}": ${issueLines(r.error).join('; ')}`);
  return [...prev, raw as BranchFlag];
}

/** The spec file with the flags applied, parsed and checked (see validateLotterySpec). */
export function lotterySpecFromFlags(flags: LotteryFieldFlags): LotterySpec {
  const base = flags.config ? readSpecFile(flags.config) : {};
  const spec: Record<string, unknown> = { ...base, train: applyTrainFlags(base.train, flags) };
  if (flags.experiment !== undefined) spec.experiment = flags.experiment;
  if (flags.levels !== undefined) spec.levels = flags.levels;
  if (flags.rewind !== undefined) spec.rewind = flags.rewind;
  if (flags.branch !== undefined) spec.branches = flags.branch;
  if (flags.checkpointEvery !== undefined) spec.checkpointEvery = flags.checkpointEvery;
  if (flags.fraction !== undefined) {
    const pruning = base.pruning;
    spec.pruning =
      pruning !== null && typeof pruning === 'object' && !Array.isArray(pruning)
        ? { ...(pruning as object), fraction: flags.fraction }
        : { kind: 'global-magnitude', fraction: flags.fraction };
  }
  return validateLotterySpec(spec);
}

/** One line for people: what the spec trains, prunes and compares. */
export function describeLotterySpec(spec: LotterySpec): string {
  const p = spec.pruning;
  const pruning =
    p.kind === 'global-magnitude'
      ? `global magnitude ${p.fraction} per level`
      : `layerwise magnitude ${p.fraction} per level (output ${p.outputFraction})`;
  const length =
    spec.train.iterations !== undefined
      ? `${spec.train.iterations} iterations`
      : `${spec.train.epochs} epochs`;
  const rewind = spec.rewind === 'init' ? 'rewind to init' : `rewind to step ${spec.rewind.step}`;
  const branches = spec.branches.length > 0 ? spec.branches.map(branchLabel).join(', ') : 'no branches';
  return `${spec.train.model} on ${spec.train.dataset}, ${length} per level, levels 0..${spec.levels}, ${pruning}, ${rewind}; ${branches}`;
}
