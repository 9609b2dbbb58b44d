/**
 * The geometry of the lottery-ticket solutions: the LeNet-300-100 / MNIST experiments of bench:imp (seeds 0, 1, 2;
 * their stored levels are reused when present), with the random re-initialisation, random pruning, one-shot and
 * twin branches, and every measure of ml/geometry at the default configuration (curvature and flatness over 2 data
 * subsets × 3 probe seeds) on every level of the ticket and of the three controls. Runs the real system (embedded
 * stack, one light and several compute workers) and writes bench/results/geometry-lenet-mnist.json (per series,
 * level and value: mean, std and n over the IMP seeds, each seed's value and its replicates' std) and a plot per
 * measure (the first seed) next to it.
 *
 *   npm run bench:geometry                      # 3 seeds, 14 levels (4.4% remaining), 10 epochs per level
 *   npm run bench:geometry -- --only-seeds 1    # run (or resume) seed 1 alone, then rebuild the summary
 *   npm run bench:geometry -- --levels 4        # fewer levels
 *   npm run bench:geometry -- --quick           # a few-minute smoke run of this script (tiny data, small options,
 *                                               # written to .data/bench-geometry-quick/, not bench/results)
 *   npm run bench:geometry -- --check-torch     # only: our curvature against PyTorch's autograd on pruned levels of
 *                                               # lenet-300-100 and conv-2 (bench/geometry-check.ts)
 *
 * The stack lives in .data/bench-imp/ (bench:imp's, so its levels are reused); an interrupted run started again
 * reuses every stored level and every stored measure. Each seed's values are written to
 * bench/results/geometry-lenet-mnist/seed-<s>.json as soon as that seed is measured, and the summary is rebuilt from
 * every seed file present: a campaign longer than one sitting (about two hours per seed on 2 cores) is run a seed
 * at a time with --only-seeds, on the same or another machine of the same kind.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { z } from 'zod';
import type { Client } from '@temporalio/client';

import { startOrAttachAnalysis, startOrAttachBranch, startOrAttachLottery } from '../client/runs';
import {
  analysisConfigSchema,
  levelTargets,
  parseAnalysisSpec,
  type AnalysisResult,
} from '../contract/analysis';
import type { BranchSpec } from '../contract/branches';
import { parseLotterySpec, type LotterySpec, type LotterySpecInput } from '../contract/lottery';
import { REPO_ROOT } from '../infra/paths';
import { geometryRows, measurePlotSpec, GEOMETRY_COLUMNS, type GeometryRow } from '../report/geometry';
import { renderSpec } from '../report/plot';
import { connectClient, openStore } from '../workers/connection';
import { currentBackend, selectBackend } from '../ml/backend';
import type { MeasureName } from '../ml/geometry';
import { checkAgainstTorch } from './geometry-check';
import { timeGeometryEngines } from './geometry-engines';
import {
  benchCommand,
  impBenchTrain,
  machineInfo,
  startBenchStack,
  startBenchWorkers,
  stopBench,
  writeFileAtomic,
  writeResult,
} from './support';

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

/** The value of `key` per seed, and their mean, sample standard deviation and number (seeds that measured it). */
interface AcrossSeeds {
  mean: number | null;
  std: number | null;
  n: number;
  perSeed: (number | null)[];
}

function acrossSeeds(values: (number | null)[]): AcrossSeeds {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  const mean = n > 0 ? xs.reduce((a, b) => a + b, 0) / n : null;
  const std =
    n > 1 && mean !== null ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, std, n, perSeed: values };
}

/** The summary values a level reports, by the JSON name the result has always used. */
const KEYS: Record<string, string> = {
  topEigenvalue: 'hessian.topEigenvalue',
  trace: 'trace.trace',
  epsSharpness: 'sharpness.epsSharpness',
  pacBayesSigma: 'pac-bayes.pacBayesSigma',
  logVolume: 'basin.logVolume',
  meanLogRadius: 'basin.meanLogRadius',
  barrierTwin: 'twin-path.testErrorBarrier',
  barrierPrevLevel: 'path.testErrorBarrier',
  barrierRewindInterpolated: 'rewind-path.testErrorBarrierInterpolated',
  trainLoss: 'loss.trainLoss',
  testLoss: 'loss.testLoss',
  testError: 'loss.testError',
};

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/geometry',
    'the geometry of the lottery-ticket solutions (LeNet-300-100 / MNIST, every measure, every level and control)',
  )
    .option('--epochs <n>', 'training epochs per level (bench:imp uses 10)', '10')
    .option('--levels <n>', 'pruning levels after the dense level 0 (14: 4.4% of weights remain)', '14')
    .option('--seeds <n>', 'IMP seeds (bench:imp lineages 0, 1, …)', '3')
    .option(
      '--only-seeds <list>',
      'run only these of the seeds (e.g. 1,2); the summary takes every seed file present',
    )
    .option('--workers <n>', 'compute workers (each on one thread)', String(Math.max(1, os.cpus().length)))
    .option('--quick', 'tiny data and small options: checks the script, not the science')
    .option('--check-torch', "only check the Hessian's eigenvalues and trace against PyTorch's autograd")
    .option('--threads <n>', 'threads for --check-torch (both sides)', String(os.cpus().length))
    .option('--check-models <list>', 'models --check-torch checks (lenet-300-100,conv-2)')
    .option('--check-images <n>', 'training images --check-torch takes the Hessian on', '1000')
    .option(
      '--time-engines <level>',
      "only: every measure of seed 0's trunk at this level, on the tape and as graphs, in this process on --threads " +
        'threads (bench/results/geometry-engines.json)',
    )
    .parse(process.argv);
  const o = cli.opts<{
    epochs: string;
    levels: string;
    seeds: string;
    onlySeeds?: string;
    workers: string;
    quick?: boolean;
    checkTorch?: boolean;
    threads: string;
    checkModels?: string;
    checkImages: string;
    timeEngines?: string;
  }>();
  if (o.checkTorch) {
    await checkAgainstTorch({
      threads: Number(o.threads),
      models: o.checkModels?.split(','),
      images: Number(o.checkImages),
    });
    return;
  }
  const [epochs, levels, seedCount, workerCount] = [
    Number(o.epochs),
    Number(o.levels),
    Number(o.seeds),
    Number(o.workers),
  ];
  for (const [name, v] of Object.entries({ epochs, levels, seeds: seedCount, workers: workerCount })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  }
  const seeds = Array.from({ length: seedCount }, (_, i) => i);
  const toRun = o.onlySeeds === undefined ? seeds : o.onlySeeds.split(',').map(Number);
  for (const s of toRun)
    if (!seeds.includes(s)) throw new Error(`--only-seeds: ${s} is not one of the seeds 0-${seedCount - 1}`);
  // bench:imp's experiments, written the same way, so that they are the same lineages.
  const baseFor = (seed: number): LotterySpecInput => ({
    experiment: o.quick ? `bench-geometry-quick-s${seed}` : `bench-imp-s${seed}`,
    train: { ...impBenchTrain(Boolean(o.quick), epochs), seed },
    levels: o.quick ? 2 : levels,
    pruning: { kind: 'global-magnitude', fraction: 0.2 },
    rewind: 'init',
    checkpointEvery: 1000,
    heartbeatTimeoutSeconds: 120,
    branches: [
      { kind: 'reinit', seed: 1 },
      { kind: 'random-prune', seed: 1 },
    ],
  });
  const config = o.quick
    ? {
        subset: { train: 100, test: 100 },
        batchSize: 100,
        replicates: { seeds: 2, subsets: 2 },
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
  // --time-engines times in this process alone: no compute worker may take up a pending analysis beside it.
  const workers = startBenchWorkers(home, endpoints, o.timeEngines !== undefined ? 0 : workerCount);
  // Ctrl-C or SIGTERM: the workers drain (running levels and measures checkpoint), the stack stops; the next
  // invocation attaches to every started workflow and resumes it.
  const stop = (signal: string) => {
    log(`${signal}: stopping the workers and the stack; run the bench again to resume`);
    void stopBench(workers, opts).finally(() => process.exit(130));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const resultFile = o.quick
    ? path.join(home, 'geometry-lenet-mnist-quick.json')
    : path.join(REPO_ROOT, 'bench', 'results', 'geometry-lenet-mnist.json');
  const seedFile = (seed: number) => path.join(resultFile.replace(/\.json$/, ''), `seed-${seed}.json`);
  try {
    await Promise.all(workers.map((w) => w.ready));
    const client = await connectClient(endpoints);
    try {
      if (o.timeEngines !== undefined) {
        const level = Number(o.timeEngines);
        const trunk = await (
          await startOrAttachLottery(client, parseLotterySpec(baseFor(0)))
        ).handle.result();
        const target = levelTargets([{ label: 'trunk', levels: trunk.levels }], {
          model: 'lenet-300-100',
          dataset: 'mnist',
        }).find((t) => t.level === level);
        if (!target) throw new Error(`--time-engines: seed 0's trunk has no level ${level}`);
        await selectBackend({ prefer: 'auto', threads: Number(o.threads), log });
        const timed = await timeGeometryEngines(openStore(endpoints), target, log);
        const [tape, graph] = timed.engines;
        const differ = Object.keys(tape?.summaries ?? {}).filter(
          (m) =>
            JSON.stringify(tape?.summaries[m as MeasureName]) !==
            JSON.stringify(graph?.summaries[m as MeasureName]),
        );
        writeResult(
          path.join(REPO_ROOT, 'bench', 'results', 'geometry-engines.json'),
          {
            machine: machineInfo(),
            backend: currentBackend(),
            ...timed,
            speedup: tape && graph ? tape.totalSeconds / graph.totalSeconds : null,
            summariesDiffer: differ,
            notes: [
              'every measure but twin-path at the analysis defaults, one replicate (training subset 0, probe seed 0), in one process; per measure the median of 2 rounds, the engines in alternation',
              'the worker analyses run each replicated measure over 2 subsets x 3 probe seeds: a level there costs about 6x this for those measures',
            ],
          },
          { isEmpty: (r) => r.engines.length === 0 },
        );
        log(
          `one level: tape ${tape?.totalSeconds.toFixed(0)} s, graph ${graph?.totalSeconds.toFixed(0)} s; ` +
            `summaries differ: ${differ.length === 0 ? 'none' : differ.join(', ')}`,
        );
        return;
      }
      for (const seed of toRun) {
        const seedStarted = performance.now();
        const analysis = await measureSeed(
          client,
          parseLotterySpec(baseFor(seed)),
          config,
          workerCount,
          started,
        );
        const file = seedFile(seed);
        mkdirSync(path.dirname(file), { recursive: true });
        const record = seedRecord(seed, analysis, (performance.now() - seedStarted) / 1000, workerCount);
        writeResult(
          file,
          { ...record, spec: { lottery: baseFor(seed) } },
          { isEmpty: (r) => r.rows.length === 0 },
        );
        log(`seed ${seed}: wrote ${path.relative(process.cwd(), file)}`);
      }
    } finally {
      await client.connection.close();
    }
  } finally {
    await stopBench(workers, opts);
  }

  const records = seeds
    .filter((seed) => existsSync(seedFile(seed)))
    .map((seed) => seedRecordSchema.parse(JSON.parse(readFileSync(seedFile(seed), 'utf8'))));
  const rowsBySeed = records.map((r) => r.rows.map(rowFromJson));
  const value = (rows: GeometryRow[], run: string, level: number, key: string) =>
    rows.find((r) => r.run === run && r.level === level)?.values.get(key) ?? null;
  const series = SERIES.map((s) => {
    // Level 0 is the trunk's dense network for every control.
    const runOf = (level: number) => (level === 0 ? 'trunk' : s.label);
    const levelList = [
      ...new Set(
        rowsBySeed.flatMap((rows) =>
          rows.filter((r) => r.run === s.label || (r.run === 'trunk' && r.level === 0)).map((r) => r.level),
        ),
      ),
    ].sort((a, b) => a - b);
    return {
      name: s.name,
      levels: levelList.map((level) => ({
        level,
        remainingPct:
          rowsBySeed
            .map((rows) => rows.find((r) => r.run === runOf(level) && r.level === level)?.remainingPct)
            .find((v) => v !== undefined) ?? null,
        ...Object.fromEntries(
          Object.entries(KEYS).map(([name, key]) => [
            name,
            {
              ...acrossSeeds(rowsBySeed.map((rows) => value(rows, runOf(level), level, key))),
              // The spread within each seed's solution: over its data subsets × probe seeds (replicated measures).
              replicateStd: rowsBySeed.map((rows) => value(rows, runOf(level), level, `${key}.std`)),
              replicateN: rowsBySeed.map((rows) => value(rows, runOf(level), level, `${key}.n`)),
            },
          ]),
        ),
      })),
    };
  });
  const out = {
    machine: machineInfo(),
    backend: 'compute workers: native TensorFlow when installed, else WASM (see the workers logs)',
    hessianMethod:
      "exact: double backward (ml/second-order.ts); on native TensorFlow as traced graphs (ml/geometry/objective.ts), which give the tape's bytes on LeNet-300-100",
    seeds: records.map((r) => r.seed),
    seedsPlanned: seeds,
    spec: { lottery: baseFor(0), analysis: analysisConfigSchema.parse(config) },
    series,
    // Activity seconds of all measures of one solution (those measured by the invocation that wrote the seed's
    // file), each on one worker; the machine each seed ran on is in its file.
    secondsPerLevel: Object.fromEntries(records.flatMap((r) => Object.entries(r.secondsPerLevel))),
    computeWorkers: workerCount,
    measures: {
      computed: records.reduce((a, r) => a + r.measures.computed, 0),
      reused: records.reduce((a, r) => a + r.measures.reused, 0),
    },
    // Wall seconds of the invocations that wrote the seed files (training of the seed's lineage included).
    wallSecondsPerSeed: Object.fromEntries(records.map((r) => [r.seed, r.wallSeconds])),
    wallSeconds: records.reduce((a, r) => a + r.wallSeconds, 0),
  };
  writeResult(resultFile, out, { isEmpty: (r) => r.seeds.length === 0 });
  // Plots: the first seed's levels, a line per series.
  const named = (rowsBySeed[0] ?? []).map((r) => ({
    ...r,
    run: SERIES.find((x) => x.label === r.run)?.name ?? r.run,
  }));
  for (const c of GEOMETRY_COLUMNS) {
    if (named.filter((r) => r.values.has(`${c.measure}.${c.key}`)).length < 2) continue;
    const svg = await renderSpec(measurePlotSpec(named, c), 'svg');
    writeFileAtomic(resultFile.replace(/\.json$/, `-${c.measure}-${c.key}.svg`), svg);
  }
  log(
    `wrote ${path.relative(process.cwd(), resultFile)} from seeds ${out.seeds.join(', ')} ` +
      `(this invocation ${((performance.now() - started) / 60_000).toFixed(1)} min)`,
  );
}

/** What one seed's file holds: every value of every (run, level) it measured, and what it cost. */
const seedRecordSchema = z.object({
  seed: z.number().int(),
  machine: z.unknown(),
  date: z.string(),
  rows: z.array(
    z.object({
      run: z.string(),
      level: z.number().int(),
      remainingPct: z.number(),
      values: z.record(z.string(), z.number().nullable()),
    }),
  ),
  secondsPerLevel: z.record(z.string(), z.number()),
  measures: z.object({ computed: z.number().int(), reused: z.number().int() }),
  computeWorkers: z.number().int(),
  wallSeconds: z.number(),
});
type SeedRecord = z.infer<typeof seedRecordSchema>;

function seedRecord(seed: number, a: AnalysisResult, wallSeconds: number, workerCount: number): SeedRecord {
  const measured = a.targets.flatMap((t) => t.measures.filter((m) => !m.reused));
  const secondsPerLevel: Record<string, number> = {};
  for (const t of a.targets) {
    const sec = t.measures.filter((m) => !m.reused).reduce((acc, m) => acc + m.seconds, 0);
    if (sec > 0) secondsPerLevel[`seed ${seed} ${t.label} ${t.level}`] = sec;
  }
  return {
    seed,
    machine: machineInfo(),
    date: new Date().toISOString(),
    // JSON has no NaN or Infinity: a non-finite value is written as null and read back as absent.
    rows: geometryRows([a]).map((r) => ({
      run: r.run,
      level: r.level,
      remainingPct: r.remainingPct,
      values: Object.fromEntries([...r.values].map(([k, v]) => [k, Number.isFinite(v) ? v : null])),
    })),
    secondsPerLevel,
    measures: {
      computed: measured.length,
      reused: a.targets.flatMap((t) => t.measures).length - measured.length,
    },
    computeWorkers: workerCount,
    wallSeconds,
  };
}

function rowFromJson(r: SeedRecord['rows'][number]): GeometryRow {
  return {
    run: r.run,
    level: r.level,
    remainingPct: r.remainingPct,
    values: new Map(
      Object.entries(r.values).flatMap(([k, v]): [string, number][] => (v === null ? [] : [[k, v]])),
    ),
  };
}

/** One seed's lottery (trunk and the controls), its twin, and the analysis of every level of every series. */
async function measureSeed(
  client: Client,
  spec: LotterySpec,
  config: object,
  workerCount: number,
  started: number,
): Promise<AnalysisResult> {
  const trunk = await (await startOrAttachLottery(client, spec)).handle.result();
  log(
    `${spec.experiment}: trunk ${trunk.levels.length} levels (${trunk.levels.filter((l) => l.reused).length} reused)`,
  );
  // The controls bench:imp does not run are started as branches of the same trunk.
  const extra = [...SERIES.flatMap((s) => (s.branch ? [s.branch] : [])), TWIN];
  const branches = await Promise.all(
    extra.map(async (b) => (await startOrAttachBranch(client, spec, b)).handle.result()),
  );
  log(
    `${spec.experiment}: branches done (${((performance.now() - started) / 60_000).toFixed(1)} min so far)`,
  );
  const runs = [
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
    `${spec.experiment}: analysis ${a.started ? 'started' : 'attached to'} ${a.workflowId} (${analysisSpec.targets.length} solutions)`,
  );
  return a.handle.result();
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/geometry: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
