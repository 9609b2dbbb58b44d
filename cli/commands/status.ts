// `lth status EXPERIMENT`: a lottery experiment's trunk and branches, level by level, with a bar for each level
// being trained; `--watch` refreshes until every workflow has finished. `lth status` alone shows the stack.
import { Command, InvalidArgumentError } from 'commander';

import { connectClient, endpoints } from '../../workers/connection';
import { formatDistillRuns, readDistillRuns } from '../distill-experiments';
import { formatSweepViews, readSweeps } from '../sweeps';
import {
  anyRunning,
  noExperiment,
  parseExperimentName,
  readExperiment,
  runState,
  type ExperimentView,
  type RunView,
} from '../experiments';
import { progressLine } from '../progress-text';
import { formatFailureCause } from '../failure-text';
import { formatReportTable } from '../../report/table';
import { printStackStatus, withStackFlags, type StackFlags } from './stack';

interface StatusFlags extends StackFlags {
  json?: boolean;
  watch?: boolean;
  interval: number;
}

function runBlock(kind: string, r: RunView): string {
  const n = r.levels.length;
  const count =
    r.levelsPlanned !== null ? `${n} of ${r.levelsPlanned} levels` : `${n} level${n === 1 ? '' : 's'}`;
  const head = `${kind} ${r.label === 'trunk' ? '' : `${r.label} `}${r.workflowId}  (${runState(r)}; ${count})`;
  const lines = [formatReportTable([{ name: head, rows: r.levels }]).trimEnd()];
  if (r.running.length > 0) lines.push('  training now:', ...r.running.map((p) => `  ${progressLine(p)}`));
  if (r.note) lines.push(`  note: ${r.note}`);
  if (r.failure) lines.push(...formatFailureCause(r.failure, '  '));
  return lines.join('\n');
}

export function formatExperimentStatus(view: ExperimentView): string {
  const blocks = [
    `experiment ${view.experiment}: ${view.trunks.length} trunk${view.trunks.length === 1 ? '' : 's'}`,
  ];
  for (const t of view.trunks) {
    if (t.trunk) blocks.push(runBlock('trunk', t.trunk) + (t.lineageId ? `\n  lineage ${t.lineageId}` : ''));
    else blocks.push(`trunk ${t.workflowId}  (not found; only its branches are)`);
    for (const b of t.branches) blocks.push(runBlock('branch', b));
  }
  return `${blocks.join('\n\n')}\n`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function experimentStatus(experiment: string, f: StatusFlags): Promise<void> {
  const out = process.stdout;
  const client = await connectClient(endpoints());
  try {
    for (let first = true; ; first = false) {
      const [view, distill, sweeps] = await Promise.all([
        readExperiment(client, experiment),
        readDistillRuns(client, experiment),
        readSweeps(client, experiment),
      ]);
      if (view.trunks.length === 0 && distill.length === 0 && sweeps.length === 0)
        throw noExperiment(experiment);
      const json = { ...view, distill, sweeps };
      if (f.json) out.write(f.watch ? `${JSON.stringify(json)}\n` : `${JSON.stringify(json, null, 2)}\n`);
      else {
        // On a terminal each refresh replaces the last; in a log they follow each other.
        if (f.watch && out.isTTY) out.write('\x1b[H\x1b[2J');
        else if (!first) out.write(`\n--- ${new Date().toISOString()}\n`);
        if (sweeps.length > 0) out.write(formatSweepViews(sweeps));
        // A sweep's trials share its experiment label: the sweep's table already lists them.
        if (view.trunks.length > 0 && sweeps.length === 0) out.write(formatExperimentStatus(view));
        if (distill.length > 0) out.write(formatDistillRuns(experiment, distill));
      }
      const running =
        anyRunning(view) ||
        distill.some((r) => r.execution === 'RUNNING') ||
        sweeps.some((s) => s.execution === 'RUNNING');
      if (!f.watch || !running) return;
      await sleep(f.interval * 1000);
    }
  } finally {
    await client.connection.close();
  }
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number of seconds, got "${v}"`);
  return n;
}

export function registerStatusCommand(program: Command): void {
  withStackFlags(program.command('status'))
    .description(
      "a lottery experiment's trunk and branches, level by level, its distillation runs, or a sweep's trials (or, without EXPERIMENT, whether the embedded stack runs)",
    )
    .argument('[experiment]', 'experiment label (search attribute Experiment) or sweep name (Sweep)')
    .option('--json', 'print machine-readable JSON (with --watch: one line per refresh)')
    .option('--watch', 'refresh until every workflow of the experiment has finished')
    .option('--interval <seconds>', 'seconds between refreshes with --watch', seconds, 2)
    .action(async (experiment: string | undefined, f: StatusFlags) => {
      if (experiment === undefined) return printStackStatus(f);
      await experimentStatus(parseExperimentName(experiment), f);
    });
}
