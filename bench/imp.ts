/**
 * The lottery-ticket result: LeNet-300-100 on full MNIST, IMP with global magnitude pruning of 20% per level
 * (output layer excluded, open_lth), rewinding to initialisation, with the random re-initialisation and random
 * pruning branches, over several seeds. It runs the real system: a private embedded stack, one light worker and
 * several compute workers, one lotteryWorkflow per seed. Writes bench/results/imp-lenet-mnist.json and an SVG
 * plot next to it.
 *
 *   node --import tsx bench/imp.ts                        # 3 seeds, 10 epochs per level, 8 levels
 *   node --import tsx bench/imp.ts --levels 14            # ... continued to 14 levels, reusing levels 0-8
 *   node --import tsx bench/imp.ts --seeds 2 --epochs 5   # smaller
 *   node --import tsx bench/imp.ts --quick                # a 1-minute smoke run of this script (tiny data,
 *                                                         # written to .data/bench-imp-quick/, not bench/results)
 *
 * The stack lives in .data/bench-imp/, so an interrupted bench started again reuses every finished level.
 */
import os from 'node:os';
import path from 'node:path';

import { startOrAttachLottery } from '../client/runs';
import { renderAccuracyPlot, type PlotSeries } from '../report/render';
import { REPO_ROOT } from '../infra/paths';
import { connectClient } from '../workers/connection';
import {
  benchCommand,
  impBenchTrain,
  machineInfo,
  startBenchStack,
  startBenchWorkers,
  stat,
  stopBench,
  writeFileAtomic,
  writeResult,
  type Stat,
} from './support';
import { type LevelResult, type LotteryResult } from '../contract/lottery';
import { parseLotterySpec, type LotterySpecInput } from '../contract/lottery';

function log(msg: string): void {
  process.stderr.write(`[bench/imp] ${msg}\n`);
}

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/imp',
    'The lottery-ticket result: IMP on LeNet-300-100 / MNIST with its reinit and random-pruning branches, over ' +
      'seeds, on a private stack; writes bench/results/imp-lenet-mnist.json and its SVG plot.',
  )
    .option('--seeds <n>', 'number of seeds (0..n-1)', '3')
    .option('--epochs <n>', 'training epochs per level', '10')
    .option('--levels <n>', 'pruning levels after the dense level 0', '8')
    .option('--workers <n>', 'compute workers (each on one thread)', String(Math.max(1, os.cpus().length)))
    .option('--quick', 'tiny data and few steps: checks the script, not the science')
    .parse(process.argv);
  const o = cli.opts<{ seeds: string; epochs: string; levels: string; workers: string; quick?: boolean }>();
  const seeds = Number(o.seeds);
  const epochs = Number(o.epochs);
  const levels = Number(o.levels);
  const workerCount = Number(o.workers);
  for (const [name, v] of Object.entries({ seeds, epochs, levels, workers: workerCount })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  }

  const base: LotterySpecInput = {
    train: impBenchTrain(Boolean(o.quick), epochs),
    levels: o.quick ? 2 : levels,
    pruning: { kind: 'global-magnitude', fraction: 0.2 },
    rewind: 'init',
    checkpointEvery: 1000,
    heartbeatTimeoutSeconds: 120,
  };
  const specs = Array.from({ length: seeds }, (_, seed) =>
    parseLotterySpec({
      ...base,
      experiment: `bench-imp${o.quick ? '-quick' : ''}-s${seed}`,
      train: { ...base.train, seed },
      branches: [
        { kind: 'reinit', seed: 1 },
        { kind: 'random-prune', seed: 1 },
      ],
    }),
  );

  const home = path.join(REPO_ROOT, '.data', o.quick ? 'bench-imp-quick' : 'bench-imp');
  const started = performance.now();
  const { opts, endpoints } = await startBenchStack(home, log);
  const workers = startBenchWorkers(home, endpoints, workerCount);
  let results: LotteryResult[] = [];
  try {
    await Promise.all(workers.map((w) => w.ready));
    const client = await connectClient(endpoints);
    try {
      results = await Promise.all(
        specs.map(async (spec) => {
          const run = await startOrAttachLottery(client, spec);
          log(`${spec.experiment}: ${run.started ? 'started' : 'attached to'} ${run.workflowId}`);
          const r = await run.handle.result();
          log(`${spec.experiment}: done (${((performance.now() - started) / 60_000).toFixed(1)} min so far)`);
          return r;
        }),
      );
    } finally {
      await client.connection.close();
    }
  } finally {
    await stopBench(workers, opts);
  }
  const wallSeconds = (performance.now() - started) / 1000;

  const allLevels = results.flatMap((r) => [...r.levels, ...r.branches.flatMap((b) => b.levels)]);
  const backend = [...new Set(allLevels.map((l) => l.backend))];
  const byLevel = (pick: (r: LotteryResult) => LevelResult[], level: number) =>
    results
      .map((r) => pick(r).find((l) => l.level === level))
      .filter((l): l is LevelResult => l !== undefined);
  const branch = (kind: string) => (r: LotteryResult) => {
    const b = r.branches.find((x) => x.branch.kind === kind);
    // Level 0 is shared: every branch starts from the trunk's dense network.
    return [...r.levels.filter((l) => l.level === 0), ...(b?.levels ?? [])];
  };
  const summarise = (ls: LevelResult[]) => ({
    ...stat(ls.map((l) => l.finalTestAccuracy)),
    best: stat(ls.map((l) => l.bestTestAccuracy)),
    bestIteration: stat(ls.map((l) => l.bestIteration)),
  });
  type Summary = ReturnType<typeof summarise>;
  const levelRows: {
    level: number;
    remainingPct: number;
    ticket: Summary;
    reinit: Summary;
    randomPrune: Summary;
  }[] = [];
  for (let level = 0; level <= (specs[0]?.levels ?? 0); level++) {
    const ticket = byLevel((r) => r.levels, level);
    levelRows.push({
      level,
      remainingPct: ticket[0]?.remainingPct ?? NaN,
      ticket: summarise(ticket),
      reinit: summarise(byLevel(branch('reinit'), level)),
      randomPrune: summarise(byLevel(branch('random-prune'), level)),
    });
  }
  const out = {
    machine: machineInfo(),
    backend: backend.join(', '),
    spec: { ...base, seeds: specs.map((s) => s.train.seed), branches: specs[0]?.branches },
    levels: levelRows,
    computeWorkers: workerCount,
    // An invocation reuses every level an earlier one stored: wallSeconds covers only what this one trained.
    levelRuns: {
      trained: allLevels.filter((l) => !l.reused).length,
      reused: allLevels.filter((l) => l.reused).length,
    },
    wallSeconds,
    notes: [
      "accuracies are fractions of the MNIST test set; 'mean'/'std'/'n' are over seeds of the final test accuracy, 'best' of the best evaluated one (once per epoch)",
      'remainingPct counts prunable weights (all weight matrices, output layer included, which stays dense); biases are never pruned',
      `trained ${o.quick ? 'the --quick smoke configuration' : `${epochs} epochs per level (open_lth uses 40)`}`,
    ],
  };
  // A smoke run is not a result: it stays next to its stack, out of bench/results.
  const file = o.quick
    ? path.join(home, 'imp-lenet-mnist-quick.json')
    : path.join(REPO_ROOT, 'bench', 'results', 'imp-lenet-mnist.json');
  const series: PlotSeries[] = [
    ['ticket (IMP, rewind to init)', 'ticket'],
    ['random reinit', 'reinit'],
    ['random pruning', 'randomPrune'],
  ].map(([name, k]) => ({
    name: name as string,
    points: levelRows.map((row) => {
      const s = row[k as 'ticket' | 'reinit' | 'randomPrune'];
      return { remainingPct: row.remainingPct, accuracy: s.mean, std: s.std };
    }),
  }));
  const svg = await renderAccuracyPlot(series, {
    format: 'svg',
    title: `LeNet-300-100 / MNIST, ${seeds} seed${seeds === 1 ? '' : 's'}`,
    yLabel: 'final test accuracy (%)',
  });
  // Empty: no level trained or found. The plot is rendered before either file is written: a failed one replaces neither.
  writeResult(file, out, { isEmpty: () => allLevels.length === 0 });
  writeFileAtomic(file.replace(/\.json$/, '.svg'), svg);
  log(`wrote ${path.relative(process.cwd(), file)} (${(wallSeconds / 60).toFixed(1)} min)`);
  for (const row of levelRows) {
    const f = (s: Stat) => `${(100 * s.mean).toFixed(2)}±${(100 * s.std).toFixed(2)}`;
    log(
      `level ${row.level}: ${row.remainingPct.toFixed(1)}% remaining  ticket ${f(row.ticket)}  reinit ${f(row.reinit)}  random ${f(row.randomPrune)}`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
