// A run of a schedule: the schedule's spec, its labels stamped with the time this run was scheduled for, started
// as its kind's workflow (a sweep, a lottery, ...) and awaited. The time comes from the search attribute the
// server sets on every scheduled workflow, so a backfilled run is labelled with its own past time.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { executeChild, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

import type { ScheduledRunInput, ScheduledRunResult } from '../contract/schedule';
import * as sa from '../contract/search-attributes';
import { lightActivities } from './light-activities';

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export async function scheduledRunWorkflow(input: ScheduledRunInput): Promise<ScheduledRunResult> {
  const info = workflowInfo();
  // Started by hand rather than by a schedule: the run's own start time.
  const at = info.typedSearchAttributes.get(SCHEDULED_START) ?? info.runStartTime;
  const plan = await lightActivities().planScheduledRun({ spec: input.spec, scheduledFor: at.toISOString() });
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: plan.experiment },
    ...(plan.sweep ? [{ key: sa.SWEEP, value: plan.sweep }] : []),
  ]);
  await executeChild(plan.workflowType, {
    args: plan.workflowArgs,
    workflowId: plan.workflowId,
    staticSummary: plan.summary,
    typedSearchAttributes: [
      { key: sa.EXPERIMENT, value: plan.experiment },
      { key: sa.RUN_KIND, value: plan.runKind },
      ...(plan.sweep ? [{ key: sa.SWEEP, value: plan.sweep }] : []),
    ],
  });
  return {
    scheduledFor: at.toISOString(),
    workflowId: plan.workflowId,
    kind: plan.kind,
    experiment: plan.experiment,
  };
}
