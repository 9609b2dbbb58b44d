// The light activities (light task queue): planning a sweep's page of trials or a scheduled run (parsing and
// hashing, which the workflow sandbox cannot), and a trial's outcome read from its workflow through the client: the
// one read of each trial's result, whether the sweep started the trial or attached to one that another run, or an
// earlier sweep, already started or finished.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';

import type { LightActivities } from '../contract/activities';
import { specKindNamed } from '../contract/spec-kinds';
import { parseSweepSpec, type TrialsPage } from '../contract/sweep';
import { planTrials } from '../contract/sweep-trials';
import type { PlannedRun } from '../contract/schedule';
import { planScheduledRun } from '../contract/scheduled-runs';
import { activity } from './failures';

export interface LightActivityDeps {
  client: Client;
}

export function createLightActivities(deps: LightActivityDeps): LightActivities {
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
        // The innermost cause says what went wrong in the trial (not that an activity or child of it failed).
        let cause: Error = err;
        while (cause.cause instanceof Error) cause = cause.cause;
        const why = cause.message || cause.name;
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

  async function trialMetrics(input: {
    kind: string;
    result: unknown;
  }): Promise<{ metrics: Record<string, number> }> {
    const kind = specKindNamed(input.kind);
    return { metrics: (kind.metrics as (r: unknown) => Record<string, number>)(input.result) };
  }

  async function planScheduled(input: {
    spec: Record<string, unknown>;
    scheduledFor: string;
  }): Promise<PlannedRun> {
    return planScheduledRun(input.spec, new Date(input.scheduledFor));
  }

  return {
    planSweepTrials: activity(planSweepTrials),
    trialOutcome: activity(trialOutcome),
    trialMetrics: activity(trialMetrics),
    planScheduledRun: activity(planScheduled),
  };
}
