// The new step the replay variants add to trainWorkflow: an activity no recorded history has scheduled. Replay runs
// no activity, so it needs no implementation.
import { proxyActivities } from '@temporalio/workflow';

import { COMPUTE_TASK_QUEUE } from '../../contract/task-queues';

export const NEW_STEP_PATCH = 'train-check-spec-first';

export const { checkTrainSpec } = proxyActivities<{ checkTrainSpec(spec: unknown): Promise<void> }>({
  taskQueue: COMPUTE_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
});
