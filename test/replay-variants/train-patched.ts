// The same change as train-unguarded.ts, made safely: guarded by patched(), so a run that started before the change
// (no patch marker in its history) takes the old path on replay, and a new run records the marker and the new step.
import { patched } from '@temporalio/workflow';

import { trainWorkflow as current } from '../../workflows/train';
import { checkTrainSpec, NEW_STEP_PATCH } from './new-step';

export async function trainWorkflow(input: unknown): ReturnType<typeof current> {
  if (patched(NEW_STEP_PATCH)) await checkTrainSpec(input);
  return current(input);
}
