// How workflows call the light activities (light task queue: planning and bookkeeping, no tensors). Type-only
// import of their signatures: the sandbox never loads the activity code.
import { proxyActivities } from '@temporalio/workflow';

import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import type { LightActivities } from '../contract/activities';

export function lightActivities(): LightActivities {
  // Each proxy is a Proxy object with no own keys: take the functions out by name, not by spreading.
  const { planSweepTrials, planScheduledRun, trialMetrics } = proxyActivities<
    Pick<LightActivities, 'planSweepTrials' | 'planScheduledRun' | 'trialMetrics'>
  >({
    taskQueue: LIGHT_TASK_QUEUE,
    startToCloseTimeout: '2 minutes',
    retry: { maximumInterval: '30 seconds', nonRetryableErrorTypes: ['SpecError'] },
  });
  // Waits as long as the trial runs; liveness comes from its heartbeat.
  const { trialOutcome } = proxyActivities<Pick<LightActivities, 'trialOutcome'>>({
    taskQueue: LIGHT_TASK_QUEUE,
    startToCloseTimeout: '365 days',
    heartbeatTimeout: '60 seconds',
    retry: { maximumInterval: '1 minute', nonRetryableErrorTypes: ['SpecError', 'TrialFailed'] },
  });
  return { planSweepTrials, trialOutcome, trialMetrics, planScheduledRun };
}
