// `temporal workflow delete` for tests that must start a spec afresh (lth attaches to a completed workflow): the
// current execution of a workflow id, awaited until describe no longer finds it completed (the server deletes in the
// background: 3 to 10 s here, over 30 s once under load).
import type { Client } from '@temporalio/client';

export async function deleteExecution(client: Client, workflowId: string): Promise<void> {
  await client.workflowService.deleteWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId },
  });
  for (let i = 0; i < 1200; i++) {
    const status = await client.workflow
      .getHandle(workflowId)
      .describe()
      .then((d) => d.status.name)
      .catch(() => null);
    if (status !== 'COMPLETED') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${workflowId} is still there 120 s after its deletion`);
}
