// What `lth status` and `lth report` know about the distillation runs of an experiment: each distillWorkflow found
// by the Experiment and RunKind search attributes, its spec (from its start input), and its result or, while it
// runs, its progress (the `status` query, when a light worker answers).
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';

import { parseDistillSpec, type DistillResult, type DistillStatus } from '../contract/distill';
import type { DistillRunRow } from '../report/distill';
import { distillVariant } from '../report/distill';
import { startInput } from './experiments';
import { QUERY_TIMEOUT_MS } from './workflow-query';

export interface DistillRunView extends DistillRunRow {
  workflowId: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, ... */
  execution: string;
  phase: string;
  step: number | null;
  totalSteps: number | null;
  note: string | null;
}

/** Training-split sizes: epochs are steps over ceil(n / batch). */
const TRAIN_SIZE = 60_000;

export async function readDistillRuns(client: Client, experiment: string): Promise<DistillRunView[]> {
  const query = `Experiment = ${JSON.stringify(experiment)} AND RunKind = "distill"`;
  const latest = new Map<string, WorkflowExecutionInfo>();
  for await (const info of client.workflow.list({ query })) {
    const prev = latest.get(info.workflowId);
    if (!prev || info.startTime.getTime() > prev.startTime.getTime()) latest.set(info.workflowId, info);
  }
  const views = await Promise.all([...latest.values()].map((info) => readOne(client, info)));
  return views.sort((a, b) => a.variant.localeCompare(b.variant) || a.seed - b.seed);
}

async function readOne(client: Client, info: WorkflowExecutionInfo): Promise<DistillRunView> {
  const spec = parseDistillSpec(await startInput(client, info.workflowId));
  const perEpoch = Math.ceil((spec.train.trainLimit ?? TRAIN_SIZE) / spec.train.batchSize);
  const base: DistillRunView = {
    workflowId: info.workflowId,
    execution: info.status.name,
    phase: 'unknown',
    variant: distillVariant(spec),
    seed: spec.train.seed,
    testAccuracy: null,
    evals: [],
    step: null,
    totalSteps: null,
    note: null,
  };
  const handle = client.workflow.getHandle(info.workflowId);
  try {
    if (info.status.name === 'COMPLETED') {
      const r = (await handle.result()) as DistillResult;
      return {
        ...base,
        phase: 'done',
        testAccuracy: r.final.testAccuracy,
        evals: r.evals.map((e) => ({ epoch: e.step / perEpoch, testAccuracy: e.testAccuracy })),
        step: r.steps,
        totalSteps: r.steps,
      };
    }
    const s = await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
      handle.query<DistillStatus>('status'),
    );
    return {
      ...base,
      phase: s.phase,
      step: s.progress?.step ?? null,
      totalSteps: s.progress?.totalSteps ?? null,
    };
  } catch (err) {
    return { ...base, note: err instanceof Error ? (err.message.split('\n')[0] ?? null) : String(err) };
  }
}

/** The runs as a table: one line each. */
export function formatDistillRuns(experiment: string, runs: DistillRunView[]): string {
  const width = Math.max(7, ...runs.map((r) => r.variant.length));
  const lines = [`experiment ${experiment}: ${runs.length} distillation run${runs.length === 1 ? '' : 's'}`];
  lines.push(`  ${'variant'.padEnd(width)}  seed  state                step        test acc  workflow`);
  for (const r of runs) {
    const state = `${r.execution.toLowerCase()}, ${r.phase}`.padEnd(19);
    const step = r.step === null ? '-' : `${r.step}/${r.totalSteps ?? '?'}`;
    const acc = r.testAccuracy === null ? '-' : `${(100 * r.testAccuracy).toFixed(2)}%`;
    lines.push(
      `  ${r.variant.padEnd(width)}  ${String(r.seed).padStart(4)}  ${state}  ${step.padEnd(10)}  ${acc.padStart(8)}  ${r.workflowId}`,
    );
    if (r.note) lines.push(`    note: ${r.note}`);
  }
  return `${lines.join('\n')}\n`;
}
