// What a control branch kind is: one file each (reinit.ts, random-prune.ts, ...) says everything about it, and
// index.ts lists them. A kind either trains one level per trunk level from the trunk's stored artifacts
// (`runs: 'per-level'`, with `derive`), or is a whole IMP lineage of its own (`runs: 'trunk'`).
import type { z } from 'zod';

import type { NamedTensors } from '../../ml/host-tensor';
import type { ModelDef } from '../../ml/models/types';
import type { PruningStrategy } from '../../ml/pruning';
import type { TrainState } from '../../ml/train/types';
import type { LotterySpec } from '../lottery';
import type { RewindSpec } from '../rewind';

/** The options of `lth branch` a kind may take; each kind says which apply to it. */
export interface BranchOptions {
  seed?: number;
  scope?: 'layerwise' | 'global';
  rewindStep?: RewindSpec;
}

/** What a per-level branch derives its level L from: the experiment and the trunk's stored artifacts. */
export interface BranchLevelInputs {
  spec: LotterySpec;
  level: number;
  model: ModelDef;
  /** The trunk's pruning, resolved for the model. */
  strategy: PruningStrategy;
  /** The trunk's mask at level L: the ticket this branch is a control for. */
  trunkMask(): Promise<NamedTensors>;
  /** The dense solution: the trunk's level-0 final weights. */
  denseWeights(): Promise<NamedTensors>;
  /** The trunk's rewind point: the dense run's whole state at the rewind step (step 0: its initialisation). */
  rewindPoint(): Promise<TrainState>;
  /** New random weights from `seed`, as a state at the rewind step's place in the schedule (fresh optimizer). */
  freshStart(seed: number): TrainState;
}

/** A branch level's masks and the state it trains from (the caller applies the masks to it). */
export interface LevelStart {
  masks: NamedTensors;
  start: TrainState;
  /** The seed of the data order, when it is not the spec's (a twin sees the same data in another order). */
  dataSeed?: number;
}

/** A kind's schema: an object with a literal `kind`, the discriminator of the union of all kinds. */
export type BranchSchema = z.ZodType<{ kind: string }, unknown>;

interface BranchKindBase<S extends BranchSchema, B = z.output<S>> {
  kind: z.output<S>['kind'];
  schema: S;
  /** One line for help texts and docs. */
  summary: string;
  /** Short readable name, unique within a spec's branches: workflow ids, reports and the UI use it. */
  label(b: B): string;
  /** `--branch` of `lth lottery`: how this kind is written there, and the raw spec a value means (null: not this kind). */
  flag: { usage: string; parse(value: string): unknown };
  /** The `lth branch` options this kind takes, and the raw spec they mean (a kind with none ignores them). */
  options: (keyof BranchOptions)[];
  /** Options without which the kind means nothing (e.g. a rewind branch's rewind point). */
  requires?: (keyof BranchOptions)[];
  fromOptions(o: BranchOptions): unknown;
  /**
   * What of the branch enters its lineage id besides the trunk's. Two spellings of one branch (a default written
   * out or not) must give the same value: lineage ids address stored levels.
   */
  lineage(b: B, trunk: { rewindStep: number }): unknown;
}

export interface PerLevelBranchKind<S extends BranchSchema, B = z.output<S>> extends BranchKindBase<S, B> {
  runs: 'per-level';
  derive(b: B, t: BranchLevelInputs): Promise<LevelStart>;
}

export interface TrunkBranchKind<S extends BranchSchema, B = z.output<S>> extends BranchKindBase<S, B> {
  runs: 'trunk';
  /** The rewind point of the IMP lineage the branch runs (it shares the trunk's dense level 0). */
  rewind(b: B): RewindSpec;
}

export type BranchKind<S extends BranchSchema, B = z.output<S>> =
  PerLevelBranchKind<S, B> | TrunkBranchKind<S, B>;
