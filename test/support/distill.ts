// Runs a distillation on the test workers and waits for it: the workflow id is the spec's (as `lth distill` names
// it) plus `suffix`, so that a test can run the same spec again as another workflow.
import type { Client } from '@temporalio/client';

import { parseDistillSpec, type DistillSpecInput } from '../../contract/distill';
import { distillWorkflowId } from '../../contract/ids';
import { LIGHT_TASK_QUEUE } from '../../contract/task-queues';
import { distillWorkflow } from '../../workflows/distill';

export async function runDistill(client: Client, input: DistillSpecInput, suffix = '') {
  const spec = parseDistillSpec(input);
  const handle = await client.workflow.start(distillWorkflow, {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${distillWorkflowId(spec)}${suffix}`,
  });
  return { handle, result: await handle.result() };
}
