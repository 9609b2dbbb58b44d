// `lth report EXPERIMENT`: the table of a lottery experiment (the IMP ticket and its controls, level by level)
// on the terminal, and report.md plus the accuracy-vs-sparsity plot in a folder and in the store, under
// experiments/<trunk lineage>/report/.
import fs from 'node:fs';
import path from 'node:path';

import { Command, Option } from 'commander';

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
import { describeLotterySpec, validateLotterySpec } from '../lottery-spec';
import { metricLabel, plotSeries, reportSeries, TRUNK_SERIES, type ReportMetric } from '../report/lottery';
import { renderAccuracyPlot } from '../report/plot';
import { formatReportMarkdown, formatReportTable, type ReportSeries } from '../report/table';

interface ReportFlags {
  out?: string;
  format: 'svg' | 'png';
  metric: ReportMetric;
  trunk?: string;
  upload: boolean;
}

function markdown(
  view: ExperimentView,
  t: TrunkView,
  spec: string | null,
  series: ReportSeries[],
  f: ReportFlags,
  plotFile: string,
): string {
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
    `![${metricLabel(f.metric)} vs % of weights remaining](${plotFile})`,
    '',
  ].join('\n');
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description(
      'table, report.md and accuracy plot of a lottery experiment (trunk and branches), written to a folder and the store',
    )
    .argument('<experiment>', 'experiment label (search attribute Experiment)')
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
      let view: ExperimentView;
      let t: TrunkView;
      let spec: string | null = null;
      try {
        view = await readExperiment(client, experiment);
        t = pickTrunk(view, f.trunk);
        // What the trunk was started with, for the report's header; the table does not need it.
        spec = await startInput(client, t.workflowId)
          .then((input) => describeLotterySpec(validateLotterySpec((input as { spec?: unknown }).spec)))
          .catch(() => null);
      } finally {
        await client.connection.close();
      }
      const trunkLevels = t.trunk?.levels ?? [];
      if (trunkLevels.length === 0 || t.lineageId === null) {
        throw new Error(
          `experiment ${experiment}: the trunk ${t.workflowId} has no finished level yet; nothing to report`,
        );
      }
      if (anyRunning({ experiment, trunks: [t] })) {
        process.stderr.write(
          'note: some workflows are still running; the report holds the levels finished so far\n',
        );
      }
      const series = reportSeries(trunkLevels, t.branches);
      process.stdout.write(formatReportTable(series));

      const plotFile = `accuracy.${f.format}`;
      const plot = await renderAccuracyPlot(plotSeries(series, f.metric), {
        format: f.format,
        title: `${experiment}: ${f.metric} test accuracy vs weights remaining`,
        yLabel: metricLabel(f.metric),
      });
      const md = markdown(view, t, spec, series, f, plotFile);
      const dir = f.out ?? path.join('reports', experiment);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'report.md'), md);
      fs.writeFileSync(path.join(dir, plotFile), plot);
      process.stdout.write(`\nwrote ${path.join(dir, 'report.md')} and ${path.join(dir, plotFile)}\n`);
      if (!f.upload) return;
      const store = openStore(e);
      const mdRef = await store.putBytes(
        experimentReportKey(t.lineageId, 'report.md'),
        Buffer.from(md, 'utf8'),
        {
          contentType: 'text/markdown; charset=utf-8',
        },
      );
      const plotRef = await store.putBytes(experimentReportKey(t.lineageId, plotFile), plot, {
        contentType: f.format === 'svg' ? 'image/svg+xml' : 'image/png',
      });
      process.stdout.write(
        `uploaded s3://${e.s3.bucket}/${mdRef.key} and s3://${e.s3.bucket}/${plotRef.key}\n`,
      );
    });
}
