// `lth sweep --config FILE`: one spec of any kind and axes over its fields (a grid, or seeded random draws), run as
// one durable sweepWorkflow of child trials. Every axis and value is checked before anything starts; re-running the
// same sweep recomputes nothing (finished trials are attached to), and one with failed trials retries only those.
import fs from 'node:fs';
import path from 'node:path';

import { Command } from 'commander';

import { startOrAttachSweep } from '../../client/runs';
import {
  parseSweepSpec,
  trialCount,
  trialLabel,
  trialAssignments,
  type SweepResult,
  type SweepSpec,
  type SweepStatus,
} from '../../contract/sweep';
import { validateSweep } from '../../contract/sweep-trials';
import { renderSpec } from '../../report/plot';
import { formatSweepMarkdown, formatSweepText, metricNames, sweepPlotSpec } from '../../report/sweep';
import { connectClient, endpoints } from '../../workers/connection';
import { followWithBar } from '../follow';
import { readSpecFile } from '../spec-file';
import { workflowLink } from './lottery';

interface SweepFlags {
  config: string;
  follow: boolean;
  json?: boolean;
  dryRun?: boolean;
  out?: string;
}

/** The sweep file, checked through to every trial it can (contract/sweep-trials validateSweep). */
export function readSweep(file: string): { spec: SweepSpec; experiment: string } {
  const spec = parseSweepSpec(readSpecFile(file));
  const kind = validateSweep(spec);
  const base = (kind.parse as (s: unknown) => unknown)(spec.base);
  return { spec, experiment: (kind.experiment as (s: unknown) => string)(base) };
}

/** report.md and the plot of a finished sweep, under `dir`. */
export async function writeSweepReport(result: SweepResult, spec: SweepSpec, dir: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const metric = spec.metric ?? metricNames(result.rows)[0];
  const written: string[] = [];
  const md = [
    `# Sweep ${result.sweep}`,
    '',
    `${result.kind} trials: ${result.rows.length} of ${result.total}`,
    '',
  ];
  const plot = metric ? sweepPlotSpec(result, metric) : null;
  if (plot) {
    const file = path.join(dir, 'sweep.svg');
    fs.writeFileSync(file, await renderSpec(plot, 'svg'));
    written.push(file);
    md.push('![sweep](sweep.svg)', '');
  }
  md.push(formatSweepMarkdown(result));
  const report = path.join(dir, 'report.md');
  fs.writeFileSync(report, md.join('\n'));
  return [report, ...written];
}

async function sweepAction(flags: SweepFlags): Promise<void> {
  const { spec, experiment } = readSweep(flags.config);
  const total = trialCount(spec);
  if (flags.dryRun) {
    const shown = Math.min(total, 50);
    const lines = Array.from({ length: shown }, (_, i) => `  ${i}  ${trialLabel(trialAssignments(spec, i))}`);
    process.stdout.write(
      `sweep ${spec.sweep}: ${total} trials, ${spec.maxParallel} at once\n${lines.join('\n')}\n` +
        (total > shown ? `  ... ${total - shown} more\n` : ''),
    );
    return;
  }
  const e = endpoints();
  const client = await connectClient(e);
  try {
    const run = await startOrAttachSweep(client, spec, experiment);
    process.stderr.write(
      `${run.started ? 'started' : 'attached to'} ${run.workflowId}: ${total} trials, ${spec.maxParallel} at once\n`,
    );
    const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
    if (link) process.stderr.write(`  ${link}\n`);
    if (!flags.follow) return;
    const result = await followWithBar<SweepStatus, SweepResult>(run.handle, {
      format: ' {bar} {percentage}% | trial {value}/{total} | running {running} | failed {failed}',
      position: (s) =>
        s.total === null
          ? null
          : {
              value: s.rows.length,
              total: s.total,
              payload: {
                running: s.running.length,
                failed: s.rows.filter((r) => r.status === 'failed').length,
              },
            },
      final: (r) => ({
        value: r.rows.length,
        total: r.total,
        payload: { running: 0, failed: r.rows.filter((x) => x.status === 'failed').length },
      }),
      showFinalIfNeverStarted: true,
    });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ workflowId: run.workflowId, ...result }, null, 2)}\n`);
      return;
    }
    process.stdout.write(`${formatSweepText(result)}\n`);
    const files = await writeSweepReport(
      result,
      spec,
      flags.out ?? path.join('reports', `sweep-${spec.sweep}`),
    );
    process.stderr.write(`wrote ${files.join(', ')}\n`);
  } finally {
    await client.connection.close();
  }
}

export function registerSweepCommand(program: Command): void {
  program
    .command('sweep')
    .description(
      'run a spec of any kind over axes of its fields (grid or seeded random draws), each trial a durable child ' +
        'workflow; finished trials are reused, failed ones listed',
    )
    .requiredOption('-c, --config <file>', 'sweep spec, JSON or YAML (examples/sweeps/)')
    .option('--dry-run', 'check the sweep and list its trials without starting anything')
    .option('-o, --out <dir>', 'folder for report.md and the plot (default reports/sweep-<name>)')
    .option('--no-follow', 'start the sweep and return without waiting')
    .option('--json', 'print the result as JSON')
    .action(sweepAction);
}
