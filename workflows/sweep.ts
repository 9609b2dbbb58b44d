// A sweep: each trial its kind's workflow, started as a child under the id its content hash gives, at most
// maxParallel at once. A trial whose workflow exists already (finished, or running for another sweep or a person)
// is attached to, not rerun; a failed trial is listed with its error and the others go on. Each run starts at most
// trialsPerRun trials, waits for them, and continues as new with the table so far, so a sweep of thousands of
// trials keeps each history bounded.
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  condition,
  isCancellation,
  setCurrentDetails,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  ParentClosePolicy,
  patched,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';

import * as sa from '../contract/search-attributes';
import {
  parseSweepSpec,
  type PlannedTrial,
  type SweepResult,
  type SweepStatus,
  type SweepWorkflowInput,
  type TrialRow,
} from '../contract/sweep';
import { pauseControl } from './control';
import { lightActivities } from './light-activities';
import { parseInput } from './spec-input';

export const sweepStatusQuery = defineQuery<SweepStatus>('status');

/**
 * Patch id: a trial started here is awaited as a child (which holds no worker slot however long it runs) and its
 * result handed to trialMetrics; sweeps started before awaited it and then read it again through trialOutcome.
 */
const TRIAL_METRICS_FROM_RESULT = 'sweep-trial-metrics-from-result';

/** The innermost message of a failure chain: what went wrong in the trial, not that a child failed. */
function failureMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (err instanceof ChildWorkflowFailure && e instanceof Error && e !== err) return e.message || e.name;
  return e instanceof Error ? e.message : String(e);
}

/**
 * A cancelled sweep is not a trial failure: when the sweep is cancelled (or the trial's error is a cancellation),
 * the error goes on up so the sweep ends cancelled, and the trials it stopped are not listed as failed. Thrown as
 * a cancellation, since only one ends a workflow cancelled rather than failed.
 */
function rethrowIfCancelled(err: unknown): void {
  if (isCancellation(err)) throw err;
  if (CancellationScope.current().consideredCancelled)
    throw new CancelledFailure('the sweep was cancelled', [], err instanceof Error ? err : undefined);
}

/** Progress and failures as the UI's current details (Markdown). */
function sweepDetails(s: SweepStatus, summary: string | undefined): string {
  const failed = s.rows.filter((r) => r.status === 'failed');
  return [
    ...(summary ? [summary, ''] : []),
    `${s.rows.length} of ${s.total ?? '?'} trials finished, ${failed.length} failed, ${s.running.length} running` +
      `${s.paused ? ' (paused)' : ''}.`,
    ...(failed.length > 0
      ? [
          '',
          '| trial | values | error |',
          '| ---: | --- | --- |',
          ...failed.map((r) => `| ${r.index} | ${r.label} | ${r.error ?? ''} |`),
        ]
      : []),
    '',
    `Table and plot: \`lth report ${s.sweep}\`.`,
  ].join('\n');
}

export async function sweepWorkflow(input: SweepWorkflowInput): Promise<SweepResult> {
  const spec = parseInput(parseSweepSpec, input.spec);
  const { planSweepTrials, trialOutcome, trialMetrics } = lightActivities();
  const status: SweepStatus = {
    phase: 'running',
    sweep: spec.sweep,
    kind: null,
    total: null,
    started: input.next ?? 0,
    running: [],
    rows: [...(input.rows ?? [])],
    paused: Boolean(input.paused),
  };
  setHandler(sweepStatusQuery, () => status);
  const control = pauseControl(status.paused, (p) => (status.paused = p));
  upsertSearchAttributes([
    { key: sa.SWEEP, value: spec.sweep },
    { key: sa.RUN_KIND, value: 'sweep' },
    { key: sa.PHASE, value: 'running' },
  ]);

  async function runTrial(t: PlannedTrial): Promise<TrialRow> {
    const row = { index: t.index, label: t.label, assignments: t.assignments, workflowId: t.workflowId };
    let attached = false;
    try {
      const child = await startChild(t.workflowType, {
        args: t.workflowArgs,
        workflowId: t.workflowId,
        staticSummary: t.summary,
        // A failed earlier run of this trial is run again; a finished or running one is attached to below.
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        // Cancelling or terminating the sweep asks its running trials to stop (they keep their checkpoints).
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        typedSearchAttributes: [
          { key: sa.EXPERIMENT, value: t.experiment },
          { key: sa.RUN_KIND, value: t.runKind },
          { key: sa.SWEEP, value: spec.sweep },
          { key: sa.TRIAL, value: t.label },
        ],
      });
      if (patched(TRIAL_METRICS_FROM_RESULT)) {
        const result: unknown = await child.result();
        const { metrics } = await trialMetrics({ kind: t.kind, result });
        return { ...row, status: 'done', metrics, attached };
      }
      await child.result();
    } catch (err) {
      rethrowIfCancelled(err);
      if (!(err instanceof WorkflowExecutionAlreadyStartedError))
        return { ...row, status: 'failed', error: failureMessage(err), attached };
      attached = true;
    }
    try {
      // A trial attached to (not a child of this run) can only be waited on from an activity, which also turns
      // its result into its kind's metrics.
      const { metrics } = await trialOutcome({ kind: t.kind, workflowId: t.workflowId });
      return { ...row, status: 'done', metrics, attached };
    } catch (err) {
      rethrowIfCancelled(err);
      return { ...row, status: 'failed', error: failureMessage(err), attached };
    }
  }

  const inFlight = new Map<number, Promise<void>>();
  let page: PlannedTrial[] = [];
  let next = input.next ?? 0;
  let startedHere = 0;
  try {
    for (;;) {
      // `lth pause`: no new trial starts; the running ones finish.
      while (!control.paused() && inFlight.size < spec.maxParallel && startedHere < spec.trialsPerRun) {
        if (page.length === 0) {
          if (status.total !== null && next >= status.total) break;
          const p = await planSweepTrials({
            spec: input.spec,
            from: next,
            count: Math.max(16, 2 * spec.maxParallel),
          });
          status.total = p.total;
          page = p.trials;
          if (page.length === 0) break;
          status.kind = page[0]?.kind ?? status.kind;
        }
        const t = page.shift() as PlannedTrial;
        next = t.index + 1;
        startedHere++;
        status.started = next;
        status.running.push({ index: t.index, label: t.label, workflowId: t.workflowId });
        const done = runTrial(t).then((r) => {
          status.rows.push(r);
          status.running = status.running.filter((x) => x.index !== t.index);
          inFlight.delete(t.index);
          setCurrentDetails(sweepDetails(status, input.summary));
        });
        // Only a cancellation rejects it, and the wait below rethrows that; until then it must not count as an
        // unhandled rejection (which fails the workflow task instead of ending the sweep cancelled).
        done.catch(() => undefined);
        inFlight.set(t.index, done);
        // Stop starting trials when the server says the history is getting long; the rest go to the next run.
        if (workflowInfo().continueAsNewSuggested) startedHere = spec.trialsPerRun;
      }
      if (inFlight.size === 0) {
        if (!control.paused()) break;
        await control.untilResumed('running');
        continue;
      }
      // A trial finishing frees a slot; so does a resume while paused with slots free.
      await Promise.race([
        ...inFlight.values(),
        ...(control.paused() ? [condition(() => !control.paused())] : []),
      ]);
    }
    if (status.total === null) throw ApplicationFailure.nonRetryable('internal: the sweep has no trials');
    if (next < status.total) {
      await continueAsNew<typeof sweepWorkflow>({
        spec: input.spec,
        rows: status.rows,
        next,
        paused: control.paused(),
        ...(input.summary ? { summary: input.summary } : {}),
      });
    }
    status.phase = 'done';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
    const rows = [...status.rows].sort((a, b) => a.index - b.index);
    return { sweep: spec.sweep, kind: status.kind ?? '', total: status.total, rows };
  } catch (err) {
    if (!(err instanceof ContinueAsNew)) {
      status.phase = isCancellation(err) ? 'cancelled' : 'failed';
      upsertSearchAttributes([{ key: sa.PHASE, value: status.phase }]);
    }
    throw err;
  }
}
