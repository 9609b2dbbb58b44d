// Custom search attributes: declared once here. `lth up` registers them on the embedded server (infra/), and a
// production namespace needs them created once by an operator (the README lists the command).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EXPERIMENT = defineSearchAttributeKey('Experiment', SearchAttributeType.KEYWORD);
export const RUN_KIND = defineSearchAttributeKey('RunKind', SearchAttributeType.KEYWORD);
export const SPEC_HASH = defineSearchAttributeKey('SpecHash', SearchAttributeType.KEYWORD);
export const PHASE = defineSearchAttributeKey('Phase', SearchAttributeType.KEYWORD);
export const LEVEL = defineSearchAttributeKey('Level', SearchAttributeType.INT);
export const REMAINING_PCT = defineSearchAttributeKey('RemainingPct', SearchAttributeType.DOUBLE);
export const TEST_ACCURACY = defineSearchAttributeKey('TestAccuracy', SearchAttributeType.DOUBLE);
/** A sweep's name, on the sweep and on each of its trials. */
export const SWEEP = defineSearchAttributeKey('Sweep', SearchAttributeType.KEYWORD);
/** A trial's assignments as written in its label (`pruning.fraction=0.4 train.seed=2`), on the trial. */
export const TRIAL = defineSearchAttributeKey('Trial', SearchAttributeType.KEYWORD);

/** Every custom search attribute, for registering them with a namespace. */
export const SEARCH_ATTRIBUTES = [
  EXPERIMENT,
  RUN_KIND,
  SPEC_HASH,
  PHASE,
  LEVEL,
  REMAINING_PCT,
  TEST_ACCURACY,
  SWEEP,
  TRIAL,
];
