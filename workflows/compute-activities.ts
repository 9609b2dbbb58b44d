// How workflows call activities on the compute queue: liveness by heartbeats (a run may take hours, so the
// start-to-close bound is only a backstop), retries with capped backoff, and no retry for what no retry fixes.
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';

import { NON_RETRYABLE_ERROR_TYPES, type ComputeActivities } from '../contract/activities';
import { COMPUTE_TASK_QUEUE } from '../contract/task-queues';

export function computeActivityOptions(
  heartbeatTimeoutSeconds: number,
  opts: { startToCloseTimeout?: ActivityOptions['startToCloseTimeout'] } = {},
): ActivityOptions {
  return {
    taskQueue: COMPUTE_TASK_QUEUE,
    startToCloseTimeout: opts.startToCloseTimeout ?? '7 days',
    heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`,
    retry: {
      initialInterval: '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  };
}

/** The compute activities, called with these options. */
export function computeActivities(
  heartbeatTimeoutSeconds: number,
  opts: { startToCloseTimeout?: ActivityOptions['startToCloseTimeout'] } = {},
) {
  return proxyActivities<ComputeActivities>(computeActivityOptions(heartbeatTimeoutSeconds, opts));
}
