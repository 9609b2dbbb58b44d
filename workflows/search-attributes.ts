// Custom search attributes; `lth up` registers the same names on the embedded server
// (infra/stack.ts), and a production namespace needs them created once by an operator.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EXPERIMENT = defineSearchAttributeKey('Experiment', SearchAttributeType.KEYWORD);
export const RUN_KIND = defineSearchAttributeKey('RunKind', SearchAttributeType.KEYWORD);
export const SPEC_HASH = defineSearchAttributeKey('SpecHash', SearchAttributeType.KEYWORD);
export const PHASE = defineSearchAttributeKey('Phase', SearchAttributeType.KEYWORD);
export const LEVEL = defineSearchAttributeKey('Level', SearchAttributeType.INT);
export const REMAINING_PCT = defineSearchAttributeKey('RemainingPct', SearchAttributeType.DOUBLE);
export const TEST_ACCURACY = defineSearchAttributeKey('TestAccuracy', SearchAttributeType.DOUBLE);
