// Asking a running workflow what it is doing, for the views of `lth status`, `lth report` and the followers: the
// answer comes from a light worker, so a missing worker must cost a few seconds, not hang the command.
import type { Client } from '@temporalio/client';

/** How long a view waits for a workflow's query to be answered. */
export const QUERY_TIMEOUT_MS = 5_000;

/** A workflow's `status` query, or null when nobody answers within QUERY_TIMEOUT_MS (or the query fails). */
export async function queryStatus<T>(client: Client, workflowId: string): Promise<T | null> {
  try {
    return await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
      client.workflow.getHandle(workflowId).query<T>('status'),
    );
  } catch {
    return null;
  }
}
