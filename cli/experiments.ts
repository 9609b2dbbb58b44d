// What `lth status`, `lth report` and `lth branch` know about a lottery-ticket experiment: its workflows, found
// through Temporal's visibility by the Experiment search attribute, and each one's levels.
//
// Where the levels come from:
// - a completed workflow: its result (read from history, so no worker is needed);
// - a running (or failed) one: its `status` query, answered by a light worker; without one, a trunk's finished
//   levels are still in the input of its latest run (continue-as-new carries them), so those are shown.
// A trunk's workflow id names its branches: `<trunk>.<label>`; a rewind branch trains a whole IMP lineage as
// the child `<trunk>.<label>.trunk`, whose levels and progress are the branch's.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';

import { branchTrunkWorkflowId, isBranchTrunkWorkflowId } from '../contract/branches';
import { nameSchema } from '../contract/spec';
import {
  type BranchSummary,
  type LevelProgressUpdate,
  type LevelResult,
  type LotteryResult,
  type LotteryStatus,
} from '../contract/lottery';
import { QUERY_TIMEOUT_MS } from './workflow-query';
import { failureCause, inWorkflow, type FailureCause } from './failure-text';

export function parseExperimentName(value: string, what = 'EXPERIMENT'): string {
  // As the specs allow it: it goes into a visibility query.
  const r = nameSchema.safeParse(value);
  if (!r.success)
    throw new Error(`${what}: "${value}" is not an experiment name (${r.error.issues[0]?.message})`);
  return r.data;
}

/** One workflow of the experiment: the trunk or a branch. */
export interface RunView {
  workflowId: string;
  /** 'trunk' or the branch label (reinit-s1, random-prune-s1, one-shot, rewind-step500, ...). */
  label: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, TERMINATED, ... */
  execution: string;
  /** The workflow's own phase: queued, training, branches, done, failed; 'unknown' when nobody answered. */
  phase: string;
  /** True while `lth pause` holds its next level back (a trunk, or a rewind branch's IMP lineage). */
  paused: boolean;
  /** How many levels (rows) the workflow has when done: a trunk levels 0..L, a branch 1..L. */
  levelsPlanned: number | null;
  levels: LevelResult[];
  running: LevelProgressUpdate[];
  startTime: string | null;
  closeTime: string | null;
  /** Why some of the above is missing, for a person. */
  note: string | null;
  /** Why a failed (terminated, timed out, cancelled) workflow ended: its cause chain and what to do next. */
  failure?: FailureCause | null;
}

/** A trunk and the branches started from it. */
export interface TrunkView {
  workflowId: string;
  /** The trunk's lineage: its levels live under experiments/<lineageId>/ in the store. */
  lineageId: string | null;
  /** Null when only branches of this trunk were found. */
  trunk: RunView | null;
  branches: RunView[];
}

export interface ExperimentView {
  experiment: string;
  trunks: TrunkView[];
}

const RESULT_TIMEOUT_MS = 10_000;

/** The latest execution of each lottery workflow of an experiment, by workflow id. */
export async function listLotteryExecutions(
  client: Client,
  experiment: string,
): Promise<Map<string, WorkflowExecutionInfo>> {
  const query = `Experiment = ${JSON.stringify(experiment)} AND RunKind IN ("lottery", "lottery-branch", "lottery-rewind-trunk")`;
  const latest = new Map<string, WorkflowExecutionInfo>();
  for await (const info of client.workflow.list({ query })) {
    const prev = latest.get(info.workflowId);
    // A trunk continues as new once per level, and a finished one is run again to add branches: keep the newest.
    if (!prev || info.startTime.getTime() > prev.startTime.getTime()) latest.set(info.workflowId, info);
  }
  return latest;
}

function isNestedTrunk(id: string): boolean {
  return isBranchTrunkWorkflowId(id);
}

/** Top-level trunks of an experiment (not the IMP lineages that rewind branches train as children). */
export function trunkIds(executions: Map<string, WorkflowExecutionInfo>): string[] {
  return [...executions.values()]
    .filter((i) => kindOf(i) === 'lottery' && !isNestedTrunk(i.workflowId) && !i.parentExecution)
    .sort((a, b) => a.startTime.getTime() - b.startTime.getTime())
    .map((i) => i.workflowId);
}

function kindOf(info: WorkflowExecutionInfo): string | undefined {
  const v = info.typedSearchAttributes.getAll().find((p) => p.key.name === 'RunKind')?.value;
  return typeof v === 'string' ? v : undefined;
}

/** The decoded first argument a workflow's latest run was started with. */
export async function startInput(client: Client, workflowId: string): Promise<unknown> {
  const res = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId },
    maximumPageSize: 1,
  });
  const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error(`workflow ${workflowId} has no start input in its history`);
  const dc = client.options.loadedDataConverter;
  let payloads = [payload as Payload];
  for (const codec of [...dc.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return dc.payloadConverter.fromPayload(payloads[0] as Payload);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A finished level as results carry it (only the fields the views use are required). */
const levelsSchema = z.array(z.looseObject({ level: z.number().int(), remainingPct: z.number() }));

/** Reads one workflow's levels and progress; never throws for a workflow that exists. */
export async function readRun(client: Client, info: WorkflowExecutionInfo, label: string): Promise<RunView> {
  const id = info.workflowId;
  const handle = client.workflow.getHandle(id);
  // A closed run that continued as new is followed by the next one even if visibility has not shown it yet.
  const execution = info.status.name === 'CONTINUED_AS_NEW' ? 'RUNNING' : info.status.name;
  const view: RunView = {
    workflowId: id,
    label,
    execution,
    phase: 'unknown',
    paused: false,
    levelsPlanned: null,
    levels: [],
    running: [],
    startTime: info.startTime.toISOString(),
    closeTime: execution === 'RUNNING' ? null : (info.closeTime?.toISOString() ?? null),
    note: null,
    failure: null,
  };
  if (execution !== 'RUNNING' && execution !== 'COMPLETED') view.failure = await readFailure(client, id);
  if (execution === 'COMPLETED') {
    try {
      const r = await client.withDeadline(
        Date.now() + RESULT_TIMEOUT_MS,
        () => handle.result() as Promise<LotteryResult | BranchSummary>,
      );
      view.levels = sortLevels(r.levels);
      view.phase = 'done';
      view.levelsPlanned = view.levels.length;
      return view;
    } catch (err) {
      view.note = `could not read the result: ${message(err)}`;
    }
  }
  try {
    const s = await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
      handle.query<LotteryStatus>('status'),
    );
    view.phase = s.phase;
    view.paused = s.paused ?? false;
    view.levels = sortLevels(s.levels);
    view.running = [...s.running].sort((a, b) => a.level - b.level);
    view.levelsPlanned = label === 'trunk' || isNestedTrunk(id) ? s.levelsPlanned + 1 : s.levelsPlanned;
    view.note = null;
    return view;
  } catch (err) {
    view.note ??= `no answer to the status query (is a light worker running? \`lth worker\`): ${message(err)}`;
  }
  if (label === 'trunk' || isNestedTrunk(id)) {
    // Continue-as-new hands each run the levels finished so far.
    try {
      const input = (await startInput(client, id)) as { completed?: unknown };
      const done = levelsSchema.safeParse(input.completed ?? []);
      if (done.success) view.levels = sortLevels(done.data as unknown as LevelResult[]);
    } catch {
      /* the note says enough */
    }
  }
  if (execution !== 'RUNNING') view.phase = execution === 'COMPLETED' ? 'done' : 'failed';
  return view;
}

/** Why a closed workflow did not complete: the failure its result() throws, read from history (no worker needed). */
async function readFailure(client: Client, workflowId: string): Promise<FailureCause | null> {
  try {
    await client.withDeadline(Date.now() + RESULT_TIMEOUT_MS, () =>
      client.workflow.getHandle(workflowId).result(),
    );
    return null;
  } catch (err) {
    return failureCause(inWorkflow(err, workflowId));
  }
}

function sortLevels(levels: LevelResult[]): LevelResult[] {
  return [...levels].sort((a, b) => a.level - b.level);
}

/** Everything known about an experiment's lottery workflows; trunks in start order, branches by label. */
export async function readExperiment(client: Client, experiment: string): Promise<ExperimentView> {
  const executions = await listLotteryExecutions(client, experiment);
  const trunks = trunkIds(executions);
  const groups = new Map<
    string,
    { trunk: WorkflowExecutionInfo | null; branches: WorkflowExecutionInfo[] }
  >();
  for (const id of trunks) groups.set(id, { trunk: executions.get(id) ?? null, branches: [] });
  for (const info of executions.values()) {
    if (kindOf(info) !== 'lottery-branch') continue;
    // Branch labels hold no dots; trunk ids may (experiment names can).
    const trunkId = info.workflowId.slice(0, info.workflowId.lastIndexOf('.'));
    const g = groups.get(trunkId) ?? { trunk: null, branches: [] };
    g.branches.push(info);
    groups.set(trunkId, g);
  }
  const views = await Promise.all(
    [...groups.entries()].map(async ([workflowId, g]): Promise<TrunkView> => {
      const [trunk, ...branches] = await Promise.all([
        g.trunk ? readRun(client, g.trunk, 'trunk') : Promise.resolve(null),
        ...g.branches.map(async (b) => {
          const label = b.workflowId.slice(workflowId.length + 1);
          const view = await readRun(client, b, label);
          const nested = executions.get(branchTrunkWorkflowId(b.workflowId));
          if (nested) mergeNested(view, await readRun(client, nested, label));
          return view;
        }),
      ]);
      return {
        workflowId,
        lineageId: trunk?.levels[0]?.lineageId ?? null,
        trunk,
        branches: branches.sort((a, b) => a.label.localeCompare(b.label)),
      };
    }),
  );
  return { experiment, trunks: views };
}

/** A rewind branch's levels and progress are those of the IMP lineage it runs as a child. */
function mergeNested(branch: RunView, nested: RunView): void {
  if (branch.levels.length === 0) branch.levels = nested.levels;
  branch.running = nested.running;
  branch.levelsPlanned = nested.levelsPlanned ?? branch.levelsPlanned;
  if (branch.phase === 'unknown') branch.phase = nested.phase;
  branch.paused ||= nested.paused;
}

/**
 * The state a person reads in `lth status`: the execution and the workflow's phase, where a pause says what it
 * holds: `running, pausing after level 2` while that level finishes, then `running, paused after level 2 of 4`.
 */
export function runState(r: RunView): string {
  const execution = r.execution.toLowerCase();
  // A pause holds only IMP levels back (not branches), and only while the workflow runs.
  if (!r.paused || r.execution !== 'RUNNING' || (r.phase !== 'training' && r.phase !== 'queued'))
    return `${execution}, ${r.phase}`;
  const training = r.running.map((p) => p.level);
  if (training.length > 0) return `${execution}, pausing after level ${Math.max(...training)}`;
  // Only IMP lineages pause: their levels are 0..L, levelsPlanned rows.
  const of = r.levelsPlanned === null ? '' : ` of ${r.levelsPlanned - 1}`;
  const last = r.levels.at(-1);
  return last
    ? `${execution}, paused after level ${last.level}${of}`
    : `${execution}, paused before level 0${of}`;
}

/** True while any workflow of the view may still change. */
export function anyRunning(view: ExperimentView): boolean {
  return view.trunks.some(
    (t) => t.trunk?.execution === 'RUNNING' || t.branches.some((b) => b.execution === 'RUNNING'),
  );
}

/**
 * The one trunk a command acts on: the one given with --trunk, or the experiment's only one. Several trunks
 * (the same label used for different specs) must be told apart by workflow id.
 */
export function pickTrunk(view: ExperimentView, trunkId: string | undefined): TrunkView {
  if (view.trunks.length === 0) throw noExperiment(view.experiment);
  if (trunkId !== undefined) {
    const t = view.trunks.find((x) => x.workflowId === trunkId);
    if (!t) {
      throw new Error(
        `--trunk: no trunk ${trunkId} in experiment ${view.experiment}; it has ${view.trunks.map((x) => x.workflowId).join(', ')}`,
      );
    }
    return t;
  }
  if (view.trunks.length > 1) {
    throw new Error(
      `experiment ${view.experiment} has ${view.trunks.length} trunks (specs that differ under the same label); ` +
        `choose one with --trunk: ${view.trunks.map((x) => x.workflowId).join(', ')}`,
    );
  }
  return view.trunks[0] as TrunkView;
}

export function noExperiment(experiment: string): Error {
  return new Error(
    `no lottery experiment "${experiment}": no workflow has Experiment = "${experiment}" and RunKind lottery or ` +
      'lottery-branch (start one with `lth lottery --config <spec>`)',
  );
}
