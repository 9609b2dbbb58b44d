// The sweep workflow's light activities (light task queue): planning a page of trials (parsing and hashing, which
// the workflow sandbox cannot) and a trial's outcome read from its workflow through the client, which is how a
// sweep attaches to a trial that another run, or an earlier sweep, already started or finished.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';

import type { LightActivities } from '../contract/activities';
import { specKindNamed } from '../contract/spec-kinds';
import { parseSweepSpec, type TrialsPage } from '../contract/sweep';
import { planTrials } from '../contract/sweep-trials';
import { activity } from './failures';

export interface SweepActivityDeps {
  client: Client;
}

export function createSweepActivities(deps: SweepActivityDeps): LightActivities {
  async function planSweepTrials(input: { spec: unknown; from: number; count: number }): Promise<TrialsPage> {
    return planTrials(parseSweepSpec(input.spec), input.from, input.count);
  }

  /** Waits for the trial's workflow (following continue-as-new) and returns its kind's metrics. */
  async function trialOutcome(input: {
    kind: string;
    workflowId: string;
  }): Promise<{ metrics: Record<string, number> }> {
    const kind = specKindNamed(input.kind);
    const ctx = Context.current();
    // A trial may run for days: the heartbeat is what tells Temporal this wait is alive.
    const beat = setInterval(() => ctx.heartbeat(), 5_000);
    try {
      const result: unknown = await deps.client.workflow.getHandle(input.workflowId).result();
      return { metrics: (kind.metrics as (r: unknown) => Record<string, number>)(result) };
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const why = err.cause?.message ?? err.message;
        throw ApplicationFailure.nonRetryable(
          `trial workflow ${input.workflowId} failed: ${why}`,
          'TrialFailed',
        );
      }
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  return { planSweepTrials: activity(planSweepTrials), trialOutcome: activity(trialOutcome) };
}
