// A deliberately incompatible change to trainWorkflow, for test/workflow-replay.test.ts: a new activity now runs
// before the training, unguarded. A run recorded before the change scheduled `train` first, so replaying its history
// against this code must fail with a DeterminismViolationError. Bundled on its own under the same workflow type.
import { trainWorkflow as current } from '../../workflows/train';
import { checkTrainSpec } from './new-step';

export async function trainWorkflow(input: unknown): ReturnType<typeof current> {
  await checkTrainSpec(input);
  return current(input);
}
