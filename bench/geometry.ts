/**
 * The geometry of the lottery-ticket solutions: the LeNet-300-100 / MNIST experiment of bench:imp (seed 0; its
 * stored levels are reused when present), with the random re-initialisation, random pruning, one-shot and twin
 * branches, and every measure of ml/geometry at the default configuration on every level of the ticket and of the
 * three controls. Runs the real system (embedded stack, one light and several compute workers) and writes
 * bench/results/geometry-lenet-mnist.json and a plot per measure next to it.
 *
 *   npm run bench:geometry                      # 8 levels, 10 epochs per level (bench:imp's), all measures
 *   npm run bench:geometry -- --levels 4        # fewer levels
 *   npm run bench:geometry -- --quick           # a few-minute smoke run of this script (tiny data, small options,
 *                                               # written to .data/bench-geometry-quick/, not bench/results)
 *   npm run bench:geometry -- --check-torch     # only: our curvature against PyTorch's autograd on pruned levels of
 *                                               # lenet-300-100 and conv-2 (bench/geometry-check.ts)
 *
 * The stack lives in .data/bench-imp/ (bench:imp's, so its levels are reused); an interrupted run started again
 * reuses every stored level and every stored measure.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Command } from 'commander';

import { startOrAttachAnalysis, startOrAttachBranch, startOrAttachLottery } from '../client/runs';
import {
  analysisConfigSchema,
  levelTargets,
  parseAnalysisSpec,
  type AnalysisResult,
} from '../contract/analysis';
import type { BranchSpec } from '../contract/branches';
import { parseLotterySpec, type LevelResult, type LotterySpecInput } from '../contract/lottery';
import { REPO_ROOT } from '../infra/paths';
import { geometryRows, measurePlotSpec, GEOMETRY_COLUMNS } from '../report/geometry';
import { renderSpec } from '../report/plot';
import { connectClient } from '../workers/connection';
import { checkAgainstTorch } from './geometry-check';
import { impBenchTrain, machineInfo, startBenchStack, startBenchWorkers, stopBench } from './support';

function log(msg: string): void {
  process.stderr.write(`[bench/geometry] ${msg}\n`);
}

/** The series of the result, by the run label their levels carry. */
const SERIES: { name: string; label: string; branch?: BranchSpec }[] = [
  { name: 'ticket', label: 'trunk' },
  { name: 'reinit', label: 'reinit-s1', branch: { kind: 'reinit', seed: 1 } },
  { name: 'random-prune', label: 'random-prune-s1', branch: { kind: 'random-prune', seed: 1 } },
  { name: 'one-shot', label: 'one-shot', branch: { kind: 'one-shot' } },
];
const TWIN: BranchSpec = { kind: 'twin', seed: 1 };

async function main(): Promise<void> {
  const cli = new Command('bench/geometry')
    .option('--epochs <n>', 'training epochs per level (bench:imp uses 10)', '10')
    .option('--levels <n>', 'pruning levels after the dense level 0', '8')
    .option('--workers <n>', 'compute workers (each on one thread)', String(Math.max(1, os.cpus().length)))
    .option('--quick', 'tiny data and small options: checks the script, not the science')
    .option('--check-torch', "only check the Hessian's eigenvalues and trace against PyTorch's autograd")
    .option('--threads <n>', 'threads for --check-torch (both sides)', String(os.cpus().length))
    .parse(process.argv);
  const o = cli.opts<{
    epochs: string;
    levels: string;
    workers: string;
    quick?: boolean;
    checkTorch?: boolean;
    threads: string;
  }>();
  if (o.checkTorch) {
    await checkAgainstTorch({ threads: Number(o.threads) });
    return;
  }
  const [epochs, levels, workerCount] = [Number(o.epochs), Number(o.levels), Number(o.workers)];
  for (const [name, v] of Object.entries({ epochs, levels, workers: workerCount })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  }
  // bench:imp's seed-0 experiment, written the same way, so that it is the same lineage.
  const base: LotterySpecInput = {
    experiment: o.quick ? 'bench-geometry-quick' : 'bench-imp-s0',
    train: { ...impBenchTrain(Boolean(o.quick), epochs), seed: 0 },
    levels: o.quick ? 2 : levels,
    pruning: { kind: 'global-magnitude', fraction: 0.2 },
    rewind: 'init',
    checkpointEvery: 1000,
    heartbeatTimeoutSeconds: 120,
    branches: [
      { kind: 'reinit', seed: 1 },
      { kind: 'random-prune', seed: 1 },
    ],
  };
  const spec = parseLotterySpec(base);
  const config = o.quick
    ? {
        subset: { train: 100, test: 100 },
        batchSize: 100,
        options: {
          slice1d: { points: 5 },
          slice2d: { points: 3 },
          path: { points: 5 },
          'twin-path': { points: 5 },
          'rewind-path': { points: 5 },
          hessian: { k: 2, maxIterations: 10 },
          trace: { samples: 4 },
          'pac-bayes': { samples: 2 },
          basin: { directions: 2 },
        },
      }
    : {};

  const home = path.join(REPO_ROOT, '.data', o.quick ? 'bench-geometry-quick' : 'bench-imp');
  const started = performance.now();
  const { opts, endpoints } = await startBenchStack(home, log);
  const workers = startBenchWorkers(home, endpoints, workerCount);
  // Ctrl-C or SIGTERM: the workers drain (running levels and measures checkpoint), the stack stops; the next
  // invocation attaches to every started workflow and resumes it.
  const stop = (signal: string) => {
    log(`${signal}: stopping the workers and the stack; run the bench again to resume`);
    void stopBench(workers, opts).finally(() => process.exit(130));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  let analysis: AnalysisResult;
  let runs: { label: string; levels: LevelResult[] }[];
  try {
    await Promise.all(workers.map((w) => w.ready));
    const client = await connectClient(endpoints);
    try {
      const trunk = await (await startOrAttachLottery(client, spec)).handle.result();
      log(`trunk: ${trunk.levels.length} levels (${trunk.levels.filter((l) => l.reused).length} reused)`);
      // The controls bench:imp does not run are started as branches of the same trunk.
      const extra = [...SERIES.flatMap((s) => (s.branch ? [s.branch] : [])), TWIN];
      const branches = await Promise.all(
        extra.map(async (b) => (await startOrAttachBranch(client, spec, b)).handle.result()),
      );
      log(`branches done (${((performance.now() - started) / 60_000).toFixed(1)} min so far)`);
      runs = [
        { label: 'trunk', levels: trunk.levels },
        ...branches.map((b) => ({ label: b.label, levels: b.levels })),
      ];
      const twin = runs.find((r) => r.label === 'twin-s1');
      const analysisSpec = parseAnalysisSpec({
        experiment: spec.experiment,
        targets: levelTargets(
          runs.filter((r) => SERIES.some((s) => s.label === r.label)),
          { model: spec.train.model, dataset: spec.train.dataset },
          twin ? { twin } : {},
        ),
        config,
        parallelism: workerCount,
        heartbeatTimeoutSeconds: 120,
      });
      const a = await startOrAttachAnalysis(client, analysisSpec);
      log(
        `analysis: ${a.started ? 'started' : 'attached to'} ${a.workflowId} (${analysisSpec.targets.length} solutions)`,
      );
      analysis = await a.handle.result();
    } finally {
      await client.connection.close();
    }
  } finally {
    await stopBench(workers, opts);
  }
  const wallSeconds = (performance.now() - started) / 1000;

  const rows = geometryRows([analysis]);
  const value = (run: string, level: number, key: string) =>
    rows.find((r) => r.run === run && r.level === level)?.values.get(key) ?? null;
  const series = SERIES.map((s) => {
    // Level 0 is the trunk's dense network for every control.
    const own = rows.filter((r) => r.run === s.label || (r.run === 'trunk' && r.level === 0));
    return {
      name: s.name,
      levels: own.map((r) => ({
        level: r.level,
        remainingPct: r.remainingPct,
        topEigenvalue: value(r.run, r.level, 'hessian.topEigenvalue'),
        trace: value(r.run, r.level, 'trace.trace'),
        epsSharpness: value(r.run, r.level, 'sharpness.epsSharpness'),
        pacBayesSigma: value(r.run, r.level, 'pac-bayes.pacBayesSigma'),
        logVolume: value(r.run, r.level, 'basin.logVolume'),
        meanLogRadius: value(r.run, r.level, 'basin.meanLogRadius'),
        barrierTwin: value(r.run, r.level, 'twin-path.testErrorBarrier'),
        barrierPrevLevel: value(r.run, r.level, 'path.testErrorBarrier'),
        trainLoss: value(r.run, r.level, 'loss.trainLoss'),
        testLoss: value(r.run, r.level, 'loss.testLoss'),
        testError: value(r.run, r.level, 'loss.testError'),
      })),
    };
  });
  const measured = analysis.targets.flatMap((t) => t.measures.filter((m) => !m.reused));
  const perSolution = new Map<string, number>();
  for (const t of analysis.targets) {
    const s = t.measures.filter((m) => !m.reused).reduce((a, m) => a + m.seconds, 0);
    if (s > 0) perSolution.set(`${t.label} ${t.level}`, s);
  }
  const out = {
    machine: machineInfo(),
    backend: 'compute workers: native TensorFlow when installed, else WASM (see the workers logs)',
    spec: { lottery: base, analysis: analysisConfigSchema.parse(config) },
    series,
    // Activity seconds of all measures of one solution (those measured by this invocation), each on one worker.
    secondsPerLevel: Object.fromEntries(perSolution),
    computeWorkers: workerCount,
    measures: {
      computed: measured.length,
      reused: analysis.targets.flatMap((t) => t.measures).length - measured.length,
    },
    wallSeconds,
  };
  const file = o.quick
    ? path.join(home, 'geometry-lenet-mnist-quick.json')
    : path.join(REPO_ROOT, 'bench', 'results', 'geometry-lenet-mnist.json');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  const named = rows.map((r) => ({ ...r, run: SERIES.find((s) => s.label === r.run)?.name ?? r.run }));
  for (const c of GEOMETRY_COLUMNS) {
    if (named.filter((r) => r.values.has(`${c.measure}.${c.key}`)).length < 2) continue;
    const svg = await renderSpec(measurePlotSpec(named, c), 'svg');
    writeFileSync(file.replace(/\.json$/, `-${c.measure}-${c.key}.svg`), svg);
  }
  log(`wrote ${path.relative(process.cwd(), file)} (${(wallSeconds / 60).toFixed(1)} min)`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/geometry: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
