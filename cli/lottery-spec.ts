// The lottery-ticket spec as `lth lottery` and `lth branch` take it: a JSON/YAML file, flags that override it
// field by field, then the full check: the schema, and the pruning's layer names against the model, so that a
// bad spec fails here, before anything is started.
import { InvalidArgumentError } from 'commander';

import { resolvePruning } from '../activities/lottery-plan';
import { getModel } from '../ml/models';
import { branchLabel, parseLotterySpec, type LotterySpec } from '../workflows/lottery-specs';
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

export type RewindFlag = 'init' | { step: number };
export type BranchFlag =
  | { kind: 'reinit' | 'one-shot' }
  | { kind: 'random-prune'; scope?: 'layerwise' | 'global' }
  | { kind: 'rewind'; to: RewindFlag };

export const BRANCH_FLAG_HELP = 'reinit, random-prune[:global], one-shot or rewind:<step|init>';

/** `--rewind init` or `--rewind <step>`. */
export function parseRewindFlag(v: string): RewindFlag {
  if (v === 'init') return 'init';
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected 'init' or a positive step number, got "${v}"`);
  }
  return { step: n };
}

/** One `--branch` value. */
export function parseBranchFlag(v: string, prev: BranchFlag[] = []): BranchFlag[] {
  let b: BranchFlag;
  if (v === 'reinit' || v === 'random-prune' || v === 'one-shot') b = { kind: v };
  // Layerwise is the default; it is left out so that it names the same lineage as a spec without a scope.
  else if (v === 'random-prune:layerwise') b = { kind: 'random-prune' };
  else if (v === 'random-prune:global') b = { kind: 'random-prune', scope: 'global' };
  else if (v.startsWith('rewind:')) b = { kind: 'rewind', to: parseRewindFlag(v.slice('rewind:'.length)) };
  else throw new InvalidArgumentError(`expected ${BRANCH_FLAG_HELP}, got "${v}"`);
  return [...prev, b];
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

/**
 * Parses a lottery spec and checks what the schema cannot: that every layer it names (pruning.exclude,
 * pruning.fractions) is a prunable weight of its model. Throws SpecError with one line per offending field.
 */
export function validateLotterySpec(input: unknown): LotterySpec {
  const spec = parseLotterySpec(input);
  resolvePruning(spec.pruning, getModel(spec.train.model));
  return spec;
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
