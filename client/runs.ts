// Starting runs idempotently: the workflow id is derived from the spec, so the same spec attaches
// to the run that exists instead of starting a second one.
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair, Workflow, WorkflowResultType } from '@temporalio/common';

import { branchLabel, branchWorkflowId, type BranchSpec } from '../contract/branches';
import type { AnalysisSpec } from '../contract/analysis';
import { analysisWorkflowId, lotteryWorkflowId, specHash } from '../contract/ids';
import type { DistillSpec } from '../contract/distill';
import type { LotterySpec } from '../contract/lottery';
import type { PrecomputeSpec } from '../contract/precompute';
import * as sa from '../contract/search-attributes';
import { distillKind, lotteryKind, precomputeKind, trainKind, type SpecKind } from '../contract/spec-kinds';
import { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE } from '../contract/task-queues';
import type { SweepSpec } from '../contract/sweep';
import { describeSweep, sweepWorkflowId } from '../contract/sweep-trials';
import type { TrainSpec } from '../contract/train';
import type { analyzeWorkflow } from '../workflows/analysis';
import type { distillWorkflow } from '../workflows/distill';
import type { precomputeLogitsWorkflow } from '../workflows/logits';
import type { lotteryBranchWorkflow, lotteryWorkflow } from '../workflows/lottery';
import type { sweepWorkflow } from '../workflows/sweep';
import type { trainWorkflow } from '../workflows/train';

/** A started or attached run; `started` is false when one with this spec was found and attached to. */
export interface StartedWorkflow<W extends Workflow> {
  handle: WorkflowHandle<W>;
  workflowId: string;
  started: boolean;
}

/** The spec a run was started with, as the workflow's details in the UI (Markdown). */
function staticDetails(spec: unknown): string {
  return `spec (with defaults):\n\n\`\`\`json\n${JSON.stringify(spec, null, 2)}\n\`\`\`\n`;
}

export interface StartOptions {
  /**
   * Start a completed run again instead of attaching to it (a running one is still attached to). Its activities
   * reuse what the earlier run stored and still verifies, and recompute what is missing or damaged: what to do
   * after `lth fsck --repair` removed objects of a finished run.
   */
  rerun?: boolean;
}

/**
 * The shared start-or-attach: a running or completed execution with this id is attached to; a failed or
 * cancelled one (or, with `rerun`, a completed one) is started afresh (its stored, content-addressed work is
 * reused by the activities).
 */
async function startOrAttach<W extends Workflow>(
  client: Client,
  workflowType: string,
  workflowId: string,
  args: unknown[],
  searchAttributes: { experiment: string; runKind: string; specHash?: string },
  summary?: string,
  options: StartOptions = {},
): Promise<StartedWorkflow<W>> {
  const existing = client.workflow.getHandle<W>(workflowId);
  const status = await existing
    .describe()
    .then((d) => d.status.name)
    .catch(() => null);
  if (status === 'RUNNING' || (status === 'COMPLETED' && !options.rerun))
    return { handle: existing, workflowId, started: false };
  try {
    await client.workflow.start(workflowType, {
      args,
      taskQueue: LIGHT_TASK_QUEUE,
      workflowId,
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: options.rerun ? 'ALLOW_DUPLICATE' : 'ALLOW_DUPLICATE_FAILED_ONLY',
      ...(summary ? { staticSummary: summary, staticDetails: staticDetails(args[0]) } : {}),
      typedSearchAttributes: [
        { key: sa.EXPERIMENT, value: searchAttributes.experiment },
        { key: sa.RUN_KIND, value: searchAttributes.runKind },
        ...(searchAttributes.specHash ? [{ key: sa.SPEC_HASH, value: searchAttributes.specHash }] : []),
      ],
    });
    return { handle: existing, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      return { handle: existing, workflowId, started: false };
    throw err;
  }
}

/** A spec of a registered kind, started as that kind's workflow under the id the kind derives from it. */
function startOrAttachSpec<W extends Workflow, S extends TrainSpec | PrecomputeSpec | DistillSpec>(
  client: Client,
  kind: SpecKind<S>,
  spec: S,
  options: StartOptions,
): Promise<StartedWorkflow<W>> {
  return startOrAttach<W>(
    client,
    kind.workflowType,
    kind.workflowId(spec),
    [spec],
    { experiment: kind.experiment(spec), runKind: kind.runKind, specHash: specHash(spec) },
    kind.describe(spec),
    options,
  );
}

export type StartedLottery = StartedWorkflow<typeof lotteryWorkflow>;

/**
 * Start-or-attach for a workflow whose completed run may have done less than a spec now asks: a running execution
 * is attached to, and so is a completed one unless `needsRestart(its result)`; otherwise (none yet, failed,
 * cancelled, or completed short) a run is started under the same id, and reuses what the earlier ones stored.
 */
async function startOrRestart<W extends Workflow>(
  client: Client,
  run: {
    workflowType: string;
    workflowId: string;
    args: Parameters<W>;
    spec: unknown;
    summary: string;
    searchAttributes: SearchAttributePair[];
    needsRestart: (result: WorkflowResultType<W>) => boolean;
  },
  options: StartOptions = {},
): Promise<StartedWorkflow<W>> {
  const { workflowId } = run;
  const existing = client.workflow.getHandle<W>(workflowId);
  const desc = await existing.describe().catch(() => null);
  if (desc?.status.name === 'RUNNING') return { handle: existing, workflowId, started: false };
  if (desc?.status.name === 'COMPLETED' && !options.rerun && !run.needsRestart(await existing.result()))
    return { handle: existing, workflowId, started: false };
  const handle = await client.workflow.start(run.workflowType, {
    args: run.args as unknown[],
    staticSummary: run.summary,
    staticDetails: staticDetails(run.spec),
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId,
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: run.searchAttributes,
  });
  return { handle: handle as WorkflowHandle<W>, workflowId, started: true };
}

/**
 * Starts the trunk, or attaches to the one this spec already has. A trunk that completed without some of the
 * spec's branches is started again: its levels are all in the store, so the new run goes straight to them.
 */
export async function startOrAttachLottery(
  client: Client,
  spec: LotterySpec,
  options: StartOptions = {},
): Promise<StartedLottery> {
  return startOrRestart<typeof lotteryWorkflow>(
    client,
    {
      workflowType: lotteryKind.workflowType,
      workflowId: lotteryKind.workflowId(spec),
      args: [{ spec }],
      spec,
      summary: lotteryKind.describe(spec),
      searchAttributes: [
        { key: sa.EXPERIMENT, value: spec.experiment },
        { key: sa.RUN_KIND, value: lotteryKind.runKind },
        { key: sa.SPEC_HASH, value: specHash(spec) },
      ],
      needsRestart: (result) => {
        const have = new Set(result.branches.map((b) => b.label));
        return !spec.branches.every((b) => have.has(branchLabel(b)));
      },
    },
    options,
  );
}

/**
 * Starts one branch of a trunk on its own (per-level branches need the trunk's levels in the store), or attaches
 * to it: the id is the one the trunk gives the branch as its child, so a branch the trunk ran or runs is found.
 */
export async function startOrAttachBranch(
  client: Client,
  spec: LotterySpec,
  branch: BranchSpec,
  options: StartOptions = {},
): Promise<StartedWorkflow<typeof lotteryBranchWorkflow>> {
  return startOrAttach<typeof lotteryBranchWorkflow>(
    client,
    'lotteryBranchWorkflow',
    branchWorkflowId(lotteryWorkflowId(spec), branch),
    [{ spec, branch }],
    { experiment: spec.experiment, runKind: 'lottery-branch' },
    undefined,
    options,
  );
}

export type StartedRun = StartedWorkflow<typeof trainWorkflow>;

export async function startOrAttachTrain(
  client: Client,
  spec: TrainSpec,
  options: StartOptions = {},
): Promise<StartedRun> {
  return startOrAttachSpec<typeof trainWorkflow, TrainSpec>(client, trainKind, spec, options);
}

export type StartedPrecompute = StartedWorkflow<typeof precomputeLogitsWorkflow>;

/**
 * Starts a teacher-logit precompute, or attaches to the one this spec already has (running or completed); a
 * failed or cancelled one is started afresh, and reuses every shard that was stored and verifies.
 */
export async function startOrAttachPrecompute(
  client: Client,
  spec: PrecomputeSpec,
  options: StartOptions = {},
): Promise<StartedPrecompute> {
  return startOrAttachSpec<typeof precomputeLogitsWorkflow, PrecomputeSpec>(
    client,
    precomputeKind,
    spec,
    options,
  );
}

/** Number of workers polling a task queue right now (for "no worker is running" hints). */
export async function pollerCount(
  client: Client,
  taskQueue: string,
  kind: 'workflow' | 'activity',
): Promise<number> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: kind === 'workflow' ? 1 : 2,
  });
  return res.pollers?.length ?? 0;
}

export { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE };

export type StartedDistill = StartedWorkflow<typeof distillWorkflow>;

/**
 * Starts a distillation, or attaches to the one this spec already has (running or completed); a failed one is
 * started afresh and reuses the teachers' runs and logit sets and the student's checkpoints.
 */
export async function startOrAttachDistill(
  client: Client,
  spec: DistillSpec,
  options: StartOptions = {},
): Promise<StartedDistill> {
  return startOrAttachSpec<typeof distillWorkflow, DistillSpec>(client, distillKind, spec, options);
}

export type StartedSweep = StartedWorkflow<typeof sweepWorkflow>;

/**
 * Starts a sweep, or attaches to the one this spec already has. A sweep that finished with failed trials is
 * started again: its finished trials are attached to (nothing recomputed) and the failed ones run afresh.
 */
export async function startOrAttachSweep(
  client: Client,
  spec: SweepSpec,
  experiment: string,
): Promise<StartedSweep> {
  const summary = describeSweep(spec);
  return startOrRestart<typeof sweepWorkflow>(client, {
    workflowType: 'sweepWorkflow',
    workflowId: sweepWorkflowId(spec),
    args: [{ spec, summary }],
    spec,
    summary,
    searchAttributes: [
      { key: sa.EXPERIMENT, value: experiment },
      { key: sa.RUN_KIND, value: 'sweep' },
      { key: sa.SWEEP, value: spec.sweep },
      { key: sa.SPEC_HASH, value: specHash(spec) },
    ],
    needsRestart: (result) => result.rows.some((r) => r.status !== 'done'),
  });
}

export type StartedAnalysis = StartedWorkflow<typeof analyzeWorkflow>;

/** Starts the geometry analysis of stored solutions, or attaches to the one this spec already has. */
export async function startOrAttachAnalysis(
  client: Client,
  spec: AnalysisSpec,
  options: StartOptions = {},
): Promise<StartedAnalysis> {
  return startOrAttach<typeof analyzeWorkflow>(
    client,
    'analyzeWorkflow',
    analysisWorkflowId(spec),
    [spec],
    { experiment: spec.experiment, runKind: 'analysis' },
    `geometry of ${spec.targets.length} stored solutions of ${spec.experiment}: ${spec.config.measures.join(', ')}`,
    options,
  );
}
