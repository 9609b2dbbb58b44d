import {
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  setCurrentDetails,
  ParentClosePolicy,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';

import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';

import { branchKind, branchTrunkWorkflowId } from '../contract/branches';
import {
  branchLabel,
  branchWorkflowId,
  parseBranchSpec,
  parseLotterySpec,
  type BranchSummary,
  type BranchWorkflowInput,
  type LevelProgressUpdate,
  type LevelResult,
  type LotteryResult,
  type LotterySpec,
  type LotteryStatus,
  type LotteryWorkflowInput,
} from '../contract/lottery';
import type { AnalysisTarget } from '../contract/analysis';
import { rewindName } from '../contract/rewind';
import * as sa from '../contract/search-attributes';
import { analyzeWorkflow } from './analysis';
import { computeActivities } from './compute-activities';
import { pauseControl } from './control';
import { parseInput } from './spec-input';

export const levelProgressSignal = defineSignal<[LevelProgressUpdate]>('levelProgress');
export const lotteryStatusQuery = defineQuery<LotteryStatus>('status');

/** The finished levels as the UI's current details: a Markdown table with the stored objects' keys. */
function levelsDetails(levels: LevelResult[]): string {
  const rows = levels.map(
    (l) =>
      `| ${l.level} | ${l.remainingPct.toFixed(1)} | ${(l.finalTestAccuracy * 100).toFixed(2)} | \`${l.weights.key}\` | \`${l.mask.key}\` |`,
  );
  const lineage = levels[0]?.lineageId;
  return [
    '| level | % remaining | test acc (%) | weights | mask |',
    '| ---: | ---: | ---: | --- | --- |',
    ...rows,
    '',
    lineage ? `Report: \`lth report <experiment>\` (stored under \`experiments/${lineage}/report/\`).` : '',
  ].join('\n');
}

/** Live state of a workflow: finished levels, progress of running ones; shared by trunk and branch. */
function trackStatus(spec: LotterySpec, kind: string, levelsPlanned: number, done: LevelResult[]) {
  const status: LotteryStatus = {
    phase: 'queued',
    experiment: spec.experiment,
    kind,
    levelsPlanned,
    levels: [...done],
    running: [],
    branches: [],
  };
  setHandler(lotteryStatusQuery, () => status);
  setHandler(levelProgressSignal, (update) => {
    if (status.levels.some((l) => l.level === update.level)) return;
    const i = status.running.findIndex((r) => r.level === update.level);
    // Signals can arrive out of order after a retry; never go backwards.
    if (i >= 0 && (status.running[i] as LevelProgressUpdate).step > update.step) return;
    if (i >= 0) status.running[i] = update;
    else status.running.push(update);
    if (status.phase === 'queued') {
      status.phase = 'training';
      upsertSearchAttributes([{ key: sa.PHASE, value: 'training' }]);
    }
  });
  const finish = (r: LevelResult) => {
    status.running = status.running.filter((p) => p.level !== r.level);
    status.levels = [...status.levels.filter((l) => l.level !== r.level), r].sort(
      (a, b) => a.level - b.level,
    );
    upsertSearchAttributes([
      { key: sa.LEVEL, value: r.level },
      { key: sa.REMAINING_PCT, value: r.remainingPct },
      { key: sa.TEST_ACCURACY, value: r.finalTestAccuracy },
    ]);
    setCurrentDetails(levelsDetails(status.levels));
  };
  if (done.length > 0) setCurrentDetails(levelsDetails(status.levels));
  return { status, finish };
}

/**
 * The lottery-ticket trunk: level 0 trains the dense network, each level L >= 1 prunes level L-1's final weights,
 * rewinds the survivors and retrains (activity `lotteryLevel`, one per level). Each run of this workflow trains
 * one level and continues as new with the table so far, so history stays small however many levels there are;
 * the levels are content-addressed in the store, so even a fresh start skips every finished level. When the
 * last level is done the spec's branches run as child workflows.
 */
export async function lotteryWorkflow(input: LotteryWorkflowInput): Promise<LotteryResult> {
  const spec = parseInput(parseLotterySpec, input.spec);
  const done = [...(input.completed ?? [])].sort((a, b) => a.level - b.level);
  const { status, finish } = trackStatus(spec, 'trunk', spec.levels, done);
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: input.role === 'rewind-branch' ? 'lottery-rewind-trunk' : 'lottery' },
    { key: sa.PHASE, value: done.length > 0 ? 'training' : 'queued' },
  ]);
  const { lotteryLevel } = computeActivities(spec.heartbeatTimeoutSeconds);
  const { workflowId } = workflowInfo();
  status.paused = Boolean(input.paused);
  const control = pauseControl(status.paused, (p) => (status.paused = p));

  try {
    const next = done.length;
    if (next <= spec.levels) {
      // `lth pause` holds the next level back; the level that was running when it came has finished.
      await control.untilResumed(next > 0 ? 'training' : 'queued');
      const r = await lotteryLevel({ spec, level: next, progressWorkflowId: workflowId });
      finish(r);
      // A rewind branch's IMP lineage is measured under the branch's label.
      const label = input.role === 'rewind-branch' ? `rewind-${rewindName(spec.rewind)}` : 'trunk';
      await analyzeLevel(spec, label, r, done[next - 1] ?? null);
      if (next < spec.levels) {
        // One level per run: history stays bounded; the next run starts with the table so far.
        await continueAsNew<typeof lotteryWorkflow>({
          ...input,
          completed: status.levels,
          paused: control.paused(),
        });
      }
    }
    const lineageId = status.levels[0]?.lineageId ?? '';
    status.phase = spec.branches.length > 0 ? 'branches' : 'done';
    upsertSearchAttributes([{ key: sa.PHASE, value: status.phase }]);
    if (spec.branches.length > 0) {
      status.branches = spec.branches.map((b) => ({
        label: branchLabel(b),
        branch: b,
        workflowId: branchWorkflowId(workflowId, b),
        levels: [],
      }));
      const results = await Promise.all(
        spec.branches.map((b) =>
          executeChild(lotteryBranchWorkflow, {
            args: [{ spec: input.spec, branch: b }],
            workflowId: branchWorkflowId(workflowId, b),
          }),
        ),
      );
      status.branches = results;
      status.phase = 'done';
      upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
    }
    return { experiment: spec.experiment, lineageId, levels: status.levels, branches: status.branches };
  } catch (err) {
    if (!isContinueAsNew(err)) {
      status.phase = isCancellation(err) ? 'cancelled' : 'failed';
      upsertSearchAttributes([{ key: sa.PHASE, value: status.phase }]);
    }
    throw err;
  }
}

/**
 * With an `analysis` section, a finished level's geometry as a child analyzeWorkflow: started, not awaited, and
 * abandoned rather than cancelled when this workflow continues as new or ends, so training never waits for it.
 * Its id names the level, so a replayed or restarted trunk attaches instead of measuring twice.
 */
async function analyzeLevel(
  spec: LotterySpec,
  label: string,
  level: LevelResult,
  previous: LevelResult | null,
) {
  if (!spec.analysis) return;
  const target: AnalysisTarget = {
    label,
    level: level.level,
    remainingPct: level.remainingPct,
    model: spec.train.model,
    dataset: spec.train.dataset,
    weights: level.weights,
    mask: level.mask,
    rewind: level.rewind,
    previous: previous ? { weights: previous.weights, mask: previous.mask } : null,
    // A twin trains after the trunk, as a branch: `lth analyze` pairs them once both are stored.
    twin: null,
  };
  try {
    await startChild(analyzeWorkflow, {
      args: [
        {
          experiment: spec.experiment,
          targets: [target],
          config: spec.analysis,
          heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
        },
      ],
      workflowId: `${workflowInfo().workflowId}.analysis-level-${level.level}`,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
  } catch (err) {
    // A level reused from the store by a fresh run of this trunk: its analysis exists (running or done).
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

function isContinueAsNew(err: unknown): boolean {
  return err instanceof ContinueAsNew;
}

/**
 * A control branch of a finished trunk. Reinit, random-prune and one-shot train one level per trunk level
 * (1..levels, all started at once; compute workers take them as they have slots) from the trunk's stored masks
 * and rewind points. A rewind branch is IMP again with another rewind point, as a child trunk that shares the
 * dense level 0.
 */
export async function lotteryBranchWorkflow(input: BranchWorkflowInput): Promise<BranchSummary> {
  const spec = parseInput(parseLotterySpec, input.spec);
  const branch = parseInput(parseBranchSpec, input.branch);
  const label = branchLabel(branch);
  const { workflowId } = workflowInfo();
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: `lottery-branch` },
    { key: sa.PHASE, value: 'queued' },
  ]);
  const kind = branchKind(branch);
  if (kind.runs === 'trunk') {
    const { status } = trackStatus(spec, label, spec.levels, []);
    status.phase = 'training';
    const trunk = await executeChild(lotteryWorkflow, {
      args: [{ spec: { ...spec, rewind: kind.rewind(branch), branches: [] }, role: 'rewind-branch' }],
      workflowId: branchTrunkWorkflowId(workflowId),
    });
    status.levels = trunk.levels;
    status.phase = 'done';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
    return { label, branch, workflowId, levels: trunk.levels };
  }
  const { status, finish } = trackStatus(spec, label, spec.levels, []);
  const { lotteryLevel } = computeActivities(spec.heartbeatTimeoutSeconds);
  const levels = Array.from({ length: spec.levels }, (_, i) => i + 1);
  try {
    await Promise.all(
      levels.map(async (level) => {
        const r = await lotteryLevel({ spec, level, branch, progressWorkflowId: workflowId });
        finish(r);
        // Branch levels train in parallel: no level before them to compare with yet.
        await analyzeLevel(spec, label, r, null);
      }),
    );
  } catch (err) {
    status.phase = 'failed';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'failed' }]);
    throw err;
  }
  status.phase = 'done';
  upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
  return { label, branch, workflowId, levels: status.levels };
}
