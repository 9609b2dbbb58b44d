/**
 * Scale-out: one sweep of LeNet-300-100 trials run with 1, 2 and 4 single-threaded compute worker processes, on the
 * embedded stack and on the cluster profile (Temporal server on PostgreSQL, erasure-coded MinIO; the same worker
 * processes, started here). For each: wall time (start of the sweep to its result), speedup over one worker, the
 * schedule-to-start latency of the trials' training activities (p50, p95, from their histories), and the
 * orchestration overhead: wall × workers − Σ activity execution time, as a share of wall × workers (the time
 * worker slots were not running a training). Each worker count trains its own seeds, so no trial is reused from
 * another, and each run starts from empty stores. Writes bench/results/scaleout.json.
 *
 *   npm run bench:scaleout                       # 12 trials of 600 steps, workers 1, 2, 4
 *   npm run bench:scaleout -- --trials 6 --steps 200 --workers 1,2 --profiles cluster
 *
 * The cluster profile needs `bash infra/provision.sh cluster` first.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';

import { tsToMs } from '@temporalio/common/lib/time';

import { startOrAttachSweep } from '../client/runs';
import { parseSweepSpec } from '../contract/sweep';
import { clusterDown, clusterUp, freeClusterOptions } from '../infra/cluster-stack';
import { clusterOptionsFromEnv } from '../infra/cluster-options';
import { endpointsToEnv, stackOptionsFromEnv, type StackEndpoints } from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';
import { connectClient } from '../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../workers/spawn';
import { benchCommand, machineInfo, median, startBenchStack, writeResult } from './support';
import { stackDown } from '../infra/embedded-stack';

function log(msg: string): void {
  process.stderr.write(`[bench/scaleout] ${msg}\n`);
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

interface Row {
  profile: 'embedded' | 'cluster';
  workers: number;
  trials: number;
  wallSeconds: number;
  speedup: number;
  overheadShare: number;
  scheduleToStartP50Ms: number;
  scheduleToStartP95Ms: number;
  activitySeconds: number[];
}

type Profile = Row['profile'];

/** Brings one profile's services up under home; returns its endpoints and how to take it down. */
async function startProfile(
  profile: Profile,
  home: string,
): Promise<{ endpoints: StackEndpoints; down: () => Promise<unknown> }> {
  if (profile === 'embedded') {
    const { opts, endpoints } = await startBenchStack(home, log);
    return { endpoints, down: () => stackDown(opts) };
  }
  const o = await freeClusterOptions(path.join(home, 'cluster'), { computeWorkers: 0 });
  const endpoints = await clusterUp(o, log, { withoutWorkers: true });
  log(`cluster up: Temporal UI ${endpoints.temporal.uiUrl}`);
  return { endpoints, down: () => clusterDown(o) };
}

/** One sweep per worker count on one profile. */
async function measureProfile(
  profile: Profile,
  home: string,
  counts: number[],
  trials: number,
  steps: number,
): Promise<Row[]> {
  const { endpoints, down } = await startProfile(profile, home);
  const env = { ...endpointsToEnv(endpoints), LTH_THREADS: '1', LTH_PROGRESS_INTERVAL_MS: '10000' };
  const light = spawnWorker('light', { env, logFile: path.join(home, 'logs', `${profile}-light.log`) });
  const client = await connectClient(endpoints);
  const rows: Row[] = [];
  const stamp = Date.now().toString(36);
  try {
    await light.ready;
    for (const n of counts) {
      const compute: SpawnedWorker[] = Array.from({ length: n }, (_, i) =>
        spawnWorker('compute', { env, logFile: path.join(home, 'logs', `${profile}-compute-${n}-${i}.log`) }),
      );
      await Promise.all(compute.map((w) => w.ready));
      const spec = parseSweepSpec({
        sweep: `scaleout-${stamp}-w${n}`,
        base: {
          experiment: `scaleout-${stamp}`,
          train: {
            model: 'lenet-300-100',
            dataset: 'mnist',
            optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 },
            batchSize: 128,
            iterations: steps,
            evalEvery: steps,
            seed: 0,
          },
          checkpointEvery: steps,
        },
        // Seeds of their own per worker count: nothing is reused from another row.
        axes: [{ field: 'train.seed', values: Array.from({ length: trials }, (_, i) => 1000 * n + i) }],
        maxParallel: n,
      });
      const started = performance.now();
      const run = await startOrAttachSweep(client, spec, `scaleout-${stamp}`);
      const result = await run.handle.result();
      const wallSeconds = (performance.now() - started) / 1000;
      if (result.rows.some((r) => r.status !== 'done')) throw new Error(`a trial failed with ${n} workers`);
      const toStart: number[] = [];
      const executing: number[] = [];
      for (const r of result.rows) {
        const history = await client.workflow.getHandle(r.workflowId).fetchHistory();
        const time = new Map<string, number>();
        for (const ev of history.events ?? []) {
          const at = tsToMs(ev.eventTime);
          if (ev.activityTaskScheduledEventAttributes) time.set('scheduled', at);
          if (ev.activityTaskStartedEventAttributes) time.set('started', at);
          if (ev.activityTaskCompletedEventAttributes) time.set('completed', at);
        }
        const [s, b, c] = [time.get('scheduled'), time.get('started'), time.get('completed')];
        if (s === undefined || b === undefined || c === undefined)
          throw new Error(`${r.workflowId}: no complete training activity in its history`);
        toStart.push(b - s);
        executing.push((c - b) / 1000);
      }
      const slotSeconds = wallSeconds * n;
      const row: Row = {
        profile,
        workers: n,
        trials,
        wallSeconds,
        speedup: NaN,
        overheadShare: (slotSeconds - executing.reduce((a, b) => a + b, 0)) / slotSeconds,
        scheduleToStartP50Ms: percentile(toStart, 50),
        scheduleToStartP95Ms: percentile(toStart, 95),
        activitySeconds: executing,
      };
      rows.push(row);
      log(
        `${profile}, ${n} worker(s): ${wallSeconds.toFixed(1)} s wall, activity median ${median(executing).toFixed(2)} s, ` +
          `schedule-to-start p50 ${row.scheduleToStartP50Ms} ms p95 ${row.scheduleToStartP95Ms} ms, ` +
          `overhead ${(row.overheadShare * 100).toFixed(1)}%`,
      );
      await Promise.all(compute.map((w) => stopWorker(w, 60_000)));
    }
  } finally {
    await client.connection.close();
    await stopWorker(light, 30_000);
    await down();
  }
  const base = rows.find((r) => r.workers === 1)?.wallSeconds;
  for (const r of rows) r.speedup = base ? base / r.wallSeconds : NaN;
  return rows;
}

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/scaleout',
    'One sweep of LeNet-300-100 trials with 1, 2 and 4 compute workers, on the embedded stack and the cluster ' +
      'profile: wall time, speedup, schedule-to-start, overhead; writes bench/results/scaleout.json.',
  )
    .option('--trials <n>', 'trials per sweep', '12')
    .option('--steps <n>', 'training steps per trial (batch 128)', '600')
    .option('--workers <list>', 'compute worker counts', '1,2,4')
    .option('--profiles <list>', 'embedded, cluster or both', 'embedded,cluster')
    .parse(process.argv);
  const o = cli.opts<{ trials: string; steps: string; workers: string; profiles: string }>();
  const trials = Number(o.trials);
  const steps = Number(o.steps);
  const counts = o.workers.split(',').map(Number);
  for (const v of [trials, steps, ...counts])
    if (!Number.isInteger(v) || v <= 0)
      throw new Error('--trials, --steps and --workers take positive integers');
  const profiles = o.profiles.split(',');
  for (const p of profiles)
    if (p !== 'embedded' && p !== 'cluster')
      throw new Error(`--profiles: unknown profile '${p}' (embedded, cluster)`);

  const home = path.join(REPO_ROOT, '.data', 'bench-scaleout');
  // A stored trial would be reused (its id is its content hash) and cost nothing: every run starts from empty
  // stores, after stopping whatever a killed earlier run left behind.
  await stackDown(stackOptionsFromEnv({}, { home: path.join(home, 'stack') }), 5000);
  await clusterDown(clusterOptionsFromEnv({}, { home: path.join(home, 'cluster') }), 5000);
  rmSync(home, { recursive: true, force: true });
  const rows: Row[] = [];
  for (const p of profiles as Profile[]) rows.push(...(await measureProfile(p, home, counts, trials, steps)));
  const out = path.join(REPO_ROOT, 'bench', 'results', 'scaleout.json');
  // Empty: no (profile, worker count) measured.
  writeResult(
    out,
    { machine: machineInfo(), backend: 'native TensorFlow, 1 thread per compute worker', steps, runs: rows },
    { isEmpty: (r) => r.runs.length === 0 },
  );
  for (const r of rows)
    log(
      `${r.profile}, ${r.workers} worker(s): speedup ${r.speedup.toFixed(2)}, overhead ${(r.overheadShare * 100).toFixed(1)}%`,
    );
  log(`wrote ${path.relative(REPO_ROOT, out)}`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench/scaleout: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
