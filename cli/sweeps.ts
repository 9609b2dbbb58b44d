// The sweeps named NAME (search attribute Sweep), as `lth status` and `lth report` show them: each sweep's latest
// run with its trials so far (its `status` query while it runs, its result once it has finished) and its spec.
import type { Client } from '@temporalio/client';

import { parseSweepSpec, type SweepResult, type SweepSpec, type SweepStatus } from '../contract/sweep';
import type { SweepWorkflowInput } from '../contract/sweep';
import { formatSweepText } from '../report/sweep';
import { startInput } from './experiments';
import { queryStatus } from './workflow-query';

export interface SweepView {
  workflowId: string;
  execution: string;
  spec: SweepSpec;
  /** The trials so far: from the result when the sweep finished, else from its status query (null if unanswered). */
  table: SweepResult | null;
  running: SweepStatus['running'];
}

export async function readSweeps(client: Client, name: string): Promise<SweepView[]> {
  const ids = new Map<string, string>();
  // Every run of a sweep is listed (it continues as new); the one that has not continued is the current one.
  for await (const w of client.workflow.list({ query: `Sweep = '${name}' AND RunKind = 'sweep'` })) {
    if (w.status.name !== 'CONTINUED_AS_NEW') ids.set(w.workflowId, w.status.name);
  }
  const views: SweepView[] = [];
  for (const [workflowId, execution] of ids) {
    const input = (await startInput(client, workflowId)) as SweepWorkflowInput;
    const spec = parseSweepSpec(input.spec);
    const handle = client.workflow.getHandle(workflowId);
    let table: SweepResult | null = null;
    let running: SweepStatus['running'] = [];
    if (execution === 'COMPLETED') table = (await handle.result()) as SweepResult;
    else if (execution === 'RUNNING') {
      const s = await queryStatus<SweepStatus>(client, workflowId);
      if (s) {
        table = {
          sweep: s.sweep,
          kind: s.kind ?? '?',
          total: s.total ?? 0,
          rows: [...s.rows].sort((a, b) => a.index - b.index),
        };
        running = s.running;
      }
    }
    views.push({ workflowId, execution, spec, table, running });
  }
  return views;
}

export function formatSweepViews(views: SweepView[]): string {
  return `${views
    .map((v) => {
      const head = `sweep ${v.spec.sweep} ${v.workflowId}  (${v.execution.toLowerCase()})`;
      const lines = [head];
      if (v.table) lines.push(formatSweepText(v.table));
      else lines.push('  (no answer from its workflow yet: is a light worker running?)');
      if (v.running.length > 0)
        lines.push('running now:', ...v.running.map((r) => `  ${r.index}  ${r.label}  ${r.workflowId}`));
      return lines.join('\n');
    })
    .join('\n\n')}\n`;
}
