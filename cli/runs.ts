// Starting runs idempotently: the workflow id is derived from the spec, so the same spec attaches
// to the run that exists instead of starting a second one.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';

import { contentHash } from '../store';
import * as sa from '../workflows/search-attributes';
import type { TrainSpec } from '../workflows/specs';
import { LIGHT_TASK_QUEUE, COMPUTE_TASK_QUEUE } from '../workflows/task-queues';
import type { trainWorkflow } from '../workflows/train';

export function trainWorkflowId(spec: TrainSpec): string {
  return `train-${spec.experiment}-${specHash(spec).slice(0, 16)}`;
}

export function specHash(spec: TrainSpec): string {
  return contentHash(spec);
}

export interface StartedRun {
  handle: WorkflowHandle<typeof trainWorkflow>;
  workflowId: string;
  /** False when an existing run with this spec was found and attached to. */
  started: boolean;
}

export async function startOrAttachTrain(client: Client, spec: TrainSpec): Promise<StartedRun> {
  const workflowId = trainWorkflowId(spec);
  const existing = client.workflow.getHandle<typeof trainWorkflow>(workflowId);
  const status = await existing
    .describe()
    .then((d) => d.status.name)
    .catch(() => null);
  if (status === 'RUNNING' || status === 'COMPLETED') return { handle: existing, workflowId, started: false };
  try {
    const handle = await client.workflow.start<typeof trainWorkflow>('trainWorkflow', {
      args: [spec],
      taskQueue: LIGHT_TASK_QUEUE,
      workflowId,
      // Running → attach; completed → attach (below); failed or cancelled → a fresh attempt.
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      typedSearchAttributes: [
        { key: sa.EXPERIMENT, value: spec.experiment },
        { key: sa.RUN_KIND, value: 'train' },
        { key: sa.SPEC_HASH, value: specHash(spec) },
      ],
    });
    return { handle, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { handle: client.workflow.getHandle<typeof trainWorkflow>(workflowId), workflowId, started: false };
    }
    throw err;
  }
}

/** Number of workers polling a task queue right now (for "no worker is running" hints). */
export async function pollerCount(client: Client, taskQueue: string, kind: 'workflow' | 'activity'): Promise<number> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: kind === 'workflow' ? 1 : 2,
  });
  return res.pollers?.length ?? 0;
}

export { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE };
