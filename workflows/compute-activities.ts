// How workflows call activities on the compute queue: liveness by heartbeats (a run may take hours, so the
// start-to-close bound is only a backstop), retries with capped backoff, and no retry for what no retry fixes.
import type { ActivityOptions } from '@temporalio/workflow';

import { COMPUTE_TASK_QUEUE } from './task-queues';

/** Errors that no retry can fix: the activities throw them as non-retryable failures by type. */
export const NON_RETRYABLE_ERROR_TYPES = ['SpecError', 'IntegrityError', 'ArtifactNotFoundError'];

export function computeActivityOptions(
  heartbeatTimeoutSeconds: number,
  opts: { startToCloseTimeout?: ActivityOptions['startToCloseTimeout']; nonRetryable?: string[] } = {},
): ActivityOptions {
  return {
    taskQueue: COMPUTE_TASK_QUEUE,
    startToCloseTimeout: opts.startToCloseTimeout ?? '7 days',
    heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`,
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, ...(opts.nonRetryable ?? [])],
    },
  };
}
