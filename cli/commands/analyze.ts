// `lth analyze EXPERIMENT`: the geometry of a lottery experiment's stored levels (ml/geometry), as one durable
// analyzeWorkflow of one activity per (level, measure); nothing is retrained, and measures already stored are reused.
import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';

import {
  levelTargets,
  parseAnalysisSpec,
  type AnalysisResult,
  type AnalysisSpec,
  type AnalysisStatus,
} from '../../contract/analysis';
import { validateLotterySpec } from '../../contract/spec-kinds';
import { MEASURE_NAMES } from '../../ml/geometry/measure-config';
import { startOrAttachAnalysis } from '../../client/runs';
import { connectClient, endpoints } from '../../workers/connection';
import { parseExperimentName, pickTrunk, readExperiment, startInput } from '../experiments';
import { formatGeometryText, geometryRows } from '../../report/geometry';
import { followWithBar } from '../follow';
import { readSpecFile } from '../spec-file';
import { int } from '../spec-flags';
import { workflowLink } from './lottery';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

interface AnalyzeFlags extends RerunFlag {
  config?: string;
  levels?: number[];
  measures?: string[];
  branches: boolean;
  trunk?: string;
  trainSubset?: number;
  testSubset?: number;
  seed?: number;
  parallelism?: number;
  follow: boolean;
  json?: boolean;
}

const intList = (v: string): number[] =>
  v.split(',').map((x) => {
    const n = Number(x.trim());
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`"${x}" is not a level number`);
    return n;
  });

async function analysisSpec(client: Client, experiment: string, flags: AnalyzeFlags): Promise<AnalysisSpec> {
  const view = await readExperiment(client, experiment);
  const trunk = pickTrunk(view, flags.trunk);
  const lottery = validateLotterySpec(
    ((await startInput(client, trunk.workflowId)) as { spec?: unknown }).spec,
  );
  const runs = [...(trunk.trunk ? [trunk.trunk] : []), ...(flags.branches ? trunk.branches : [])];
  const twin = trunk.branches.find((b) => b.label.startsWith('twin-'));
  const targets = levelTargets(
    runs,
    { model: lottery.train.model, dataset: lottery.train.dataset },
    { ...(flags.levels ? { levels: flags.levels } : {}), ...(twin ? { twin } : {}) },
  );
  if (targets.length === 0) {
    const have = runs.flatMap((r) => r.levels.map((l) => `${r.label} ${l.level}`)).join(', ') || 'none';
    throw new Error(
      `--levels: no finished level of ${experiment} matches ${flags.levels?.join(', ') ?? '(all)'}; finished: ${have}`,
    );
  }
  return parseAnalysisSpec({
    experiment,
    targets,
    config: {
      ...(flags.config ? readSpecFile(flags.config) : {}),
      ...(flags.measures ? { measures: flags.measures } : {}),
      ...(flags.trainSubset !== undefined || flags.testSubset !== undefined
        ? { subset: { train: flags.trainSubset ?? 1000, test: flags.testSubset ?? 1000 } }
        : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
    },
    ...(flags.parallelism !== undefined ? { parallelism: flags.parallelism } : {}),
  });
}

/** The result as the report's geometry table, in plain text. */
export function analysisTable(result: AnalysisResult): string {
  return formatGeometryText(geometryRows([result]));
}

async function analyzeAction(experimentArg: string, flags: AnalyzeFlags): Promise<void> {
  const experiment = parseExperimentName(experimentArg);
  const e = endpoints();
  const client = await connectClient(e);
  try {
    const spec = await analysisSpec(client, experiment, flags);
    const run = await startOrAttachAnalysis(client, spec, startOptions(flags));
    process.stderr.write(
      `${startedText(run, flags)} ${run.workflowId}: ${spec.targets.length} solutions × ` +
        `${spec.config.measures.length} measures\n`,
    );
    const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
    if (link) process.stderr.write(`  ${link}\n`);
    if (!flags.follow) return;
    const result = await followWithBar<AnalysisStatus, AnalysisResult>(run.handle, {
      format: ' {bar} {percentage}% | measure {value}/{total} | reused {reused} | {phase}',
      position: (s) => ({ value: s.done, total: s.total, payload: { reused: s.reused, phase: s.phase } }),
      final: (r) => {
        const n = r.targets.reduce((a, t) => a + t.measures.length, 0);
        const reused = r.targets.reduce((a, t) => a + t.measures.filter((m) => m.reused).length, 0);
        return { value: n, total: n, payload: { reused, phase: 'done' } };
      },
      showFinalIfNeverStarted: true,
    });
    process.stdout.write(flags.json ? `${JSON.stringify(result, null, 2)}\n` : `${analysisTable(result)}\n`);
  } finally {
    await client.connection.close();
  }
}

export function registerAnalyzeCommand(program: Command): void {
  program
    .command('analyze')
    .description(
      "the geometry of a lottery experiment's stored levels (curvature, sharpness, basin volume, slices, " +
        'connectivity), durable and reused; nothing is retrained',
    )
    .argument('<experiment>', 'the experiment name (its trunk must have finished levels)')
    .option(
      '-c, --config <file>',
      'analysis config, JSON or YAML: measures, subset, seed, batchSize, options.<measure> (examples/analysis/default.yaml)',
    )
    .option('--levels <list>', 'comma-separated level numbers (default: every finished level)', intList)
    .option(
      '--measures <list>',
      `comma-separated, of ${MEASURE_NAMES.join(', ')} (default all)`,
      (v: string) => v.split(',').map((x) => x.trim()),
    )
    .option('--branches', "the branches' levels too", false)
    .option('--trunk <workflowId>', 'which trunk, when the experiment has several')
    .option('--train-subset <n>', 'training examples the losses average over (default 1000)', int)
    .option('--test-subset <n>', 'test examples (default 1000)', int)
    .option('--seed <n>', 'seed of every random direction and draw (default 0)', int)
    .option('--parallelism <n>', 'measures at once (default 2)', int)
    .option('--no-follow', 'start the analysis and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(analyzeAction);
}
