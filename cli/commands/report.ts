// `lth report EXPERIMENT`: the table of a lottery experiment (the IMP ticket and its controls, level by level)
// on the terminal, and report.md plus the accuracy-vs-sparsity plot in a folder and in the store, under
// experiments/<trunk lineage>/report/. `lth demo` produces the same report through readReport/writeReport.
import fs from 'node:fs';
import path from 'node:path';

import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { Command, Option } from 'commander';

import type { StackEndpoints } from '../../infra/endpoints';
import { experimentReportKey } from '../../store';
import { connectClient, endpoints, openStore } from '../../workers/connection';
import {
  anyRunning,
  parseExperimentName,
  pickTrunk,
  readExperiment,
  startInput,
  type ExperimentView,
  type TrunkView,
} from '../experiments';
import { describeLotterySpec } from '../lottery-spec';
import { readSweeps, type SweepView } from '../sweeps';
import { formatSweepText } from '../../report/sweep';
import { writeSweepReport } from './sweep';
import { validateLotterySpec } from '../../contract/spec-kinds';
import { metricLabel, plotSeries, reportSeries, TRUNK_SERIES, type ReportMetric } from '../../report/lottery';
import type { AnalysisResult } from '../../contract/analysis';
import {
  chosenLevels,
  contourPlotSpec,
  formatGeometryMarkdown,
  geometryPlots,
  geometryRows,
  latestRecords,
  slicesPlotSpec,
  type GeometryRow,
  type SliceCurve,
} from '../../report/geometry';
import { renderAccuracyPlot, renderSpec } from '../../report/plot';
import {
  formatDistillMarkdown,
  formatDistillTable,
  renderEpochPlot,
  summariseVariants,
} from '../../report/distill';
import { formatReportMarkdown, formatReportTable, type ReportSeries } from '../../report/table';
import { readDistillRuns, type DistillRunView } from '../distill-experiments';

export interface ReportOptions {
  /** Folder for report.md and the plot; default reports/<experiment>. */
  out?: string;
  format: 'svg' | 'png';
  metric: ReportMetric;
  /** Copy both files to the store too. */
  upload: boolean;
}

interface ReportFlags extends ReportOptions {
  trunk?: string;
}

/** What a report is made of: one trunk of an experiment, with its branches, read from Temporal. */
export interface ReportData {
  view: ExperimentView;
  trunk: TrunkView;
  /** What the trunk was started with, in one line; null when its input could not be read. */
  spec: string | null;
  series: ReportSeries[];
  /** True while some workflow of the trunk still runs: the report then holds the levels finished so far. */
  running: boolean;
  /** The geometry of the measured levels (`lth analyze`, the spec's analysis section); empty when none. */
  geometry: GeometryRow[];
  /** The trunk's measured 1D slices, and the 2D slices of a few levels (first, middle, last). */
  slices: { oneD: SliceCurve[]; twoD: SliceCurve[] };
}

/** The slices' training-loss curves, read from the store (the arrays beside each measure's result). */
async function readSlices(results: AnalysisResult[]): Promise<ReportData['slices']> {
  const store = openStore();
  const curves = async (
    measure: 'slice1d' | 'slice2d',
    axisName: string,
    levels: (x: unknown[]) => unknown[],
  ) => {
    const found = latestRecords(results, measure).filter((r) => r.run === 'trunk');
    const out: SliceCurve[] = [];
    for (const r of levels(found) as typeof found) {
      try {
        const { tensors } = await store.getTensors(r.record.arraysKey);
        const axis = tensors[axisName];
        const loss = tensors.trainLoss;
        if (!axis || !loss) continue;
        out.push({
          run: r.run,
          level: r.level,
          remainingPct: r.remainingPct,
          axis: [...axis.data],
          loss: [...loss.data],
        });
      } catch {
        // A missing or unreadable array leaves that curve out of the plots, not the report.
      }
    }
    return out;
  };
  return {
    oneD: await curves('slice1d', 'alphas', (x) => x),
    twoD: await curves('slice2d', 'axis', (x) => chosenLevels(x)),
  };
}

/** The results of the experiment's finished analyses, oldest first (a later one's values win). */
export async function readAnalyses(client: Client, experiment: string): Promise<AnalysisResult[]> {
  const query = `Experiment = ${JSON.stringify(experiment)} AND RunKind = "analysis" AND ExecutionStatus = "Completed"`;
  const infos: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query })) infos.push(info);
  infos.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  const results: AnalysisResult[] = [];
  for (const info of infos) {
    try {
      results.push((await client.workflow.getHandle(info.workflowId, info.runId).result()) as AnalysisResult);
    } catch {
      // One unreadable analysis leaves the others in the report.
    }
  }
  return results;
}

/** Where writeReport put the report. */
export interface WrittenReport {
  files: string[];
  /** s3:// URLs, empty without upload. */
  uploaded: string[];
}

function geometrySection(rows: GeometryRow[], plotFiles: string[]): string[] {
  if (rows.length === 0) return [];
  return [
    '## Geometry',
    '',
    'Measured in the subspace each mask leaves free, on fixed subsets of the training and test splits ' +
      '(`lth analyze`; definitions in ml/geometry/README.md). Barriers are of the test error, as fractions.',
    '',
    formatGeometryMarkdown(rows).trimEnd(),
    '',
    ...plotFiles.flatMap((f) => [`![${f}](${f})`, '']),
  ];
}

function markdown(
  data: ReportData,
  metric: ReportMetric,
  plotFile: string,
  geometryFiles: string[] = [],
): string {
  const { view, trunk: t, spec, series } = data;
  const unfinished = [...(t.trunk ? [t.trunk] : []), ...t.branches]
    .filter((r) => r.execution === 'RUNNING')
    .map((r) => r.label);
  return [
    `# Lottery-ticket report: ${view.experiment}`,
    '',
    `- trunk workflow: \`${t.workflowId}\``,
    ...(spec ? [`- spec: ${spec}`] : []),
    `- lineage: \`${t.lineageId ?? '-'}\` (levels under \`experiments/${t.lineageId ?? '<lineage>'}/\` in the store)`,
    `- series: **${TRUNK_SERIES}** is iterative magnitude pruning with rewinding; the others are its control branches, ` +
      "each starting from the trunk's dense level 0",
    `- generated ${new Date().toISOString()}${unfinished.length > 0 ? `, while ${unfinished.join(', ')} still ran` : ''}`,
    '',
    formatReportMarkdown(series).trimEnd(),
    '',
    `![${metricLabel(metric)} vs % of weights remaining](${plotFile})`,
    '',
    ...geometrySection(data.geometry, geometryFiles),
  ].join('\n');
}

/**
 * Reads one trunk of an experiment (the one given, or the experiment's only one) and its branches, and turns
 * their levels into the report's series. Throws when the trunk has no finished level yet.
 */
export async function readReport(
  client: Client,
  experiment: string,
  trunkId: string | undefined,
): Promise<ReportData> {
  const view = await readExperiment(client, experiment);
  const t = pickTrunk(view, trunkId);
  // What the trunk was started with, for the report's header; the table does not need it.
  const spec = await startInput(client, t.workflowId)
    .then((input) => describeLotterySpec(validateLotterySpec((input as { spec?: unknown }).spec)))
    .catch(() => null);
  const trunkLevels = t.trunk?.levels ?? [];
  if (trunkLevels.length === 0 || t.lineageId === null) {
    throw new Error(
      `experiment ${experiment}: the trunk ${t.workflowId} has no finished level yet; nothing to report`,
    );
  }
  return {
    view,
    trunk: t,
    spec,
    series: reportSeries(trunkLevels, t.branches),
    running: anyRunning({ experiment, trunks: [t] }),
    ...(await readAnalyses(client, experiment).then(async (analyses) => ({
      geometry: geometryRows(analyses),
      slices: await readSlices(analyses),
    }))),
  };
}

/** Renders the plot and report.md, writes both to a folder and, with `upload`, to the store. */
export async function writeReport(
  e: StackEndpoints,
  data: ReportData,
  o: ReportOptions,
): Promise<WrittenReport> {
  const experiment = data.view.experiment;
  const plotFile = `accuracy.${o.format}`;
  const plot = await renderAccuracyPlot(plotSeries(data.series, o.metric), {
    format: o.format,
    title: `${experiment}: ${o.metric} test accuracy vs weights remaining`,
    yLabel: metricLabel(o.metric),
  });
  const specs = [
    ...geometryPlots(data.geometry),
    ...(data.slices.oneD.length > 0 ? [{ file: 'slices-1d', spec: slicesPlotSpec(data.slices.oneD) }] : []),
    ...data.slices.twoD.map((c) => ({ file: `contour-${c.run}-L${c.level}`, spec: contourPlotSpec(c) })),
  ];
  const geometry = await Promise.all(
    specs.map(async (p) => ({
      file: `${p.file}.${o.format}`,
      bytes: await renderSpec(p.spec, o.format),
    })),
  );
  const md = markdown(
    data,
    o.metric,
    plotFile,
    geometry.map((g) => g.file),
  );
  const dir = o.out ?? path.join('reports', experiment);
  fs.mkdirSync(dir, { recursive: true });
  const outputs: { file: string; bytes: Buffer; contentType: string }[] = [
    { file: 'report.md', bytes: Buffer.from(md, 'utf8'), contentType: 'text/markdown; charset=utf-8' },
    ...[{ file: plotFile, bytes: plot }, ...geometry].map((g) => ({
      ...g,
      contentType: o.format === 'svg' ? 'image/svg+xml' : 'image/png',
    })),
  ];
  const files = outputs.map((f) => path.join(dir, f.file));
  outputs.forEach((f, i) => fs.writeFileSync(files[i] as string, f.bytes));
  const lineageId = data.trunk.lineageId;
  if (!o.upload || lineageId === null) return { files, uploaded: [] };
  const store = openStore(e);
  const uploaded: string[] = [];
  for (const f of outputs) {
    const ref = await store.putBytes(experimentReportKey(lineageId, f.file), f.bytes, {
      contentType: f.contentType,
    });
    uploaded.push(`s3://${e.s3.bucket}/${ref.key}`);
  }
  return { files, uploaded };
}

/** The lines that say where writeReport put the files. */
export function describeWrittenReport(w: WrittenReport): string {
  return (
    `wrote ${w.files.join(' and ')}\n` +
    (w.uploaded.length > 0 ? `uploaded ${w.uploaded.join(' and ')}\n` : '')
  );
}

/**
 * The report of an experiment's distillation runs: per variant the final test accuracy over seeds, report.md and
 * the accuracy-vs-epoch plot, in a folder and in the store (under experiments/distill-<experiment>/report/).
 */
async function distillReport(
  e: StackEndpoints,
  experiment: string,
  runs: DistillRunView[],
  o: ReportOptions,
): Promise<void> {
  const summary = summariseVariants(runs);
  if (summary.length === 0)
    throw new Error(`experiment ${experiment}: no distillation run has finished yet; nothing to report`);
  if (runs.some((r) => r.testAccuracy === null)) {
    process.stderr.write('note: some runs have not finished; the report holds the finished ones\n');
  }
  process.stdout.write(formatDistillTable(summary));
  const plotFile = `accuracy-epochs.${o.format}`;
  const finished = runs.filter((r) => r.testAccuracy !== null);
  const plot = await renderEpochPlot(finished, o.format, `${experiment}: test accuracy by epoch`);
  const md = [
    `# Distillation report: ${experiment}`,
    '',
    'Final test accuracy of the student (its heads averaged), mean ± sample std over seeds, best first.',
    '',
    formatDistillMarkdown(summary),
    '',
    `![test accuracy by epoch](${plotFile})`,
    '',
    ...finished.map((r) => `- ${r.variant}, seed ${r.seed}: \`${r.workflowId}\``),
    '',
  ].join('\n');
  const dir = o.out ?? path.join('reports', experiment);
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, 'report.md'), path.join(dir, plotFile)];
  fs.writeFileSync(files[0] as string, md);
  fs.writeFileSync(files[1] as string, plot);
  const uploaded: string[] = [];
  if (o.upload) {
    const store = openStore(e);
    const id = `distill-${experiment}`;
    const mdRef = await store.putBytes(experimentReportKey(id, 'report.md'), Buffer.from(md, 'utf8'), {
      contentType: 'text/markdown; charset=utf-8',
    });
    const plotRef = await store.putBytes(experimentReportKey(id, plotFile), plot, {
      contentType: o.format === 'svg' ? 'image/svg+xml' : 'image/png',
    });
    uploaded.push(...[mdRef.key, plotRef.key].map((k) => `s3://${e.s3.bucket}/${k}`));
  }
  process.stdout.write(`\n${describeWrittenReport({ files, uploaded })}`);
}

/** A sweep's table and plot (report.md under reports/sweep-<name>, or --out). */
async function sweepReports(sweeps: SweepView[], f: ReportFlags): Promise<void> {
  for (const v of sweeps) {
    if (!v.table)
      throw new Error(`sweep ${v.workflowId} has no trials to report yet (no answer from its workflow)`);
    if (v.execution === 'RUNNING')
      process.stderr.write('note: the sweep is still running; the report holds the trials finished so far\n');
    process.stdout.write(`${formatSweepText(v.table)}\n`);
    const dir = f.out ?? path.join('reports', `sweep-${v.spec.sweep}`);
    const files = await writeSweepReport(
      v.table,
      v.spec,
      sweeps.length > 1 ? path.join(dir, v.workflowId) : dir,
    );
    process.stdout.write(`\n${describeWrittenReport({ files, uploaded: [] })}`);
  }
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'table, report.md and plot of a lottery experiment (trunk and branches), of its distillation runs (variants over seeds), or of a sweep (its trials), written to a folder and the store',
    )
    .argument('<experiment>', 'experiment label (search attribute Experiment) or sweep name (Sweep)')
    .option('-o, --out <dir>', 'folder for report.md and the plot (default reports/<experiment>)')
    .addOption(new Option('--format <format>', 'plot format').choices(['png', 'svg']).default('png'))
    .addOption(
      new Option('--metric <which>', 'accuracy to plot: at the end of training, or the best evaluation')
        .choices(['final', 'best'])
        .default('final'),
    )
    .option('--trunk <workflowId>', 'which trunk, when the experiment has several')
    .option('--no-upload', 'do not copy the report to the store')
    .action(async (name: string, f: ReportFlags) => {
      const experiment = parseExperimentName(name);
      const e = endpoints();
      const client = await connectClient(e);
      let data: ReportData;
      try {
        const sweeps = await readSweeps(client, experiment);
        if (sweeps.length > 0) {
          await sweepReports(sweeps, f);
          return;
        }
        const view = await readExperiment(client, experiment);
        if (view.trunks.length === 0) {
          const runs = await readDistillRuns(client, experiment);
          if (runs.length > 0) {
            await distillReport(e, experiment, runs, f);
            return;
          }
        }
        data = await readReport(client, experiment, f.trunk);
      } finally {
        await client.connection.close();
      }
      if (data.running) {
        process.stderr.write(
          'note: some workflows are still running; the report holds the levels finished so far\n',
        );
      }
      process.stdout.write(formatReportTable(data.series));
      const written = await writeReport(e, data, f);
      process.stdout.write(`\n${describeWrittenReport(written)}`);
    });
}
