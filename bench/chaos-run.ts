/**
 * The chaos run (`npm run chaos`, and one smaller seed in the test suite): a whole pipeline, an IMP experiment with a
 * rewind point, two control branches and a geometry analysis of every level, and a distillation whose two teachers
 * are trained and their logits precomputed, runs on a private embedded stack while, at seeded random moments,
 * compute workers are SIGKILLed (one of the kills in the middle of a checkpoint or shard upload), the Temporal dev
 * server is SIGKILLed and restarted on its SQLite file, and MinIO is stopped for a while. Everything must complete,
 * and every object in the store must equal, byte for byte, those of an undisturbed run of the same specs.
 *
 * Compute workers reach MinIO through bench/chaos-proxy.ts (one each), which slows uploads and says when one is in
 * flight, so that a kill can be aimed at an upload. All workers run the WASM backend, whose results do not depend
 * on the process or on a resume (the fault tests' rule).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

import type { Client } from '@temporalio/client';

import { startOrAttachDistill, startOrAttachLottery } from '../client/runs';
import { parseDistillSpec, type DistillSpec } from '../contract/distill';
import { parseLotterySpec, type LotterySpec } from '../contract/lottery';
import { stackDown, stackStatus, stackUp } from '../infra/embedded-stack';
import { endpointsToEnv, type StackEndpoints } from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';
import { mulberry32 } from '../ml/rng';
import { contentDigests } from '../store';
import { connectClient, openStore } from '../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../workers/spawn';
import { startBenchStack } from './support';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ChaosRow {
  seed: number;
  kills: number;
  /** Kills that landed while a checkpoint or shard upload of the killed worker was in flight. */
  killsDuringUpload: number;
  serverRestarts: number;
  storeOutages: number;
  completed: boolean;
  identical: boolean;
  wallSeconds: number;
  undisturbedSeconds: number;
  /**
   * Wall time beyond the undisturbed run's, less the outages injected (the store's downtime and the server's):
   * the work redone after kills plus the time retries waited.
   */
  lostWorkSeconds: number;
  /** Objects whose content differs from the undisturbed run's, or that only one run has. */
  differing: string[];
  /** Workflow histories and worker logs scanned for the store's access and secret keys, and where one was found. */
  credentialScan: { histories: number; logs: number; leaks: string[] };
}

export interface PipelineRun {
  digests: Map<string, string>;
  wallSeconds: number;
}

export interface ChaosOptions {
  seed: number;
  /** Compute-worker SIGKILLs (the first one aimed at an upload). */
  kills: number;
  storeOutageSeconds: number;
  /** Folder for the run's stack, logs and proxies (emptied first). */
  home: string;
  log: (line: string) => void;
}

const COMPUTE_WORKERS = 2;

/** The pipeline's specs: small enough for a few minutes on two cores, every kind of durable work in it. */
export function chaosSpecs(): { lottery: LotterySpec; distill: DistillSpec } {
  const lenet = {
    model: 'lenet-300-100' as const,
    dataset: 'mnist' as const,
    optimizer: { kind: 'sgd' as const, lr: 0.05, momentum: 0.9 },
    batchSize: 64,
    iterations: 160,
    evalEvery: 80,
    seed: 11,
    trainLimit: 1024,
    testLimit: 128,
  };
  const lottery = parseLotterySpec({
    experiment: 'chaos-lottery',
    train: lenet,
    levels: 2,
    pruning: { kind: 'global-magnitude', fraction: 0.3 },
    rewind: { step: 20 },
    branches: [{ kind: 'reinit' }, { kind: 'random-prune' }],
    checkpointEvery: 20,
    heartbeatTimeoutSeconds: 4,
    analysis: {
      measures: ['loss', 'slice1d', 'path', 'rewind-path', 'hessian', 'sharpness'],
      subset: { train: 60, test: 50 },
      batchSize: 40,
      seed: 3,
      options: { slice1d: { points: 5 }, path: { points: 5 }, hessian: { k: 2, maxIterations: 8 } },
    },
  });
  const teacher = (model: 'cnn-teacher' | 'lenet-300-100', seed: number) => ({
    model,
    dataset: 'mnist' as const,
    optimizer: { kind: 'adam' as const, lr: 1e-3 },
    batchSize: 64,
    iterations: 40,
    evalEvery: 40,
    seed,
    trainLimit: 512,
    testLimit: 64,
  });
  const distill = parseDistillSpec({
    experiment: 'chaos-distill',
    student: { dim: 16, depth: 1, heads: 2 },
    teachers: [
      { name: 'cnn', train: teacher('cnn-teacher', 1) },
      { name: 'mlp', train: teacher('lenet-300-100', 2), format: 'top-k', k: 3 },
    ],
    kd: { mode: 'tokens', temperature: 2 },
    train: {
      model: 'vit-tiny',
      dataset: 'mnist',
      optimizer: { kind: 'adam', lr: 1e-3 },
      batchSize: 32,
      iterations: 200,
      evalEvery: 100,
      seed: 5,
      trainLimit: 512,
      testLimit: 64,
    },
    checkpointEvery: 40,
    heartbeatTimeoutSeconds: 4,
  });
  return { lottery, distill };
}

interface ProxiedWorker {
  index: number;
  proxy: ChildProcess | null;
  /** The proxy's address, handed to the worker as its S3_ENDPOINT (none without throttling). */
  s3: string | undefined;
  /** Resolves at the proxy's next `upload` line. */
  nextUpload: () => Promise<void>;
  worker: SpawnedWorker;
}

/** The light worker and the compute workers of one run; compute worker i talks to MinIO through proxy i. */
class Fleet {
  private light: SpawnedWorker | null = null;
  readonly compute: ProxiedWorker[] = [];

  constructor(
    private readonly e: StackEndpoints,
    private readonly home: string,
    private readonly throttle: boolean,
  ) {}

  private env(s3Endpoint?: string): Record<string, string> {
    return {
      ...endpointsToEnv(this.e),
      ...(s3Endpoint ? { S3_ENDPOINT: s3Endpoint } : {}),
      LTH_BACKEND: 'wasm',
      LTH_PROGRESS_INTERVAL_MS: '500',
    };
  }

  async start(): Promise<void> {
    this.light = spawnWorker('light', {
      env: this.env(),
      logFile: path.join(this.home, 'logs', 'light.log'),
    });
    await this.light.ready;
    for (let i = 0; i < COMPUTE_WORKERS; i++) this.compute.push(await this.startCompute(i));
  }

  private async startCompute(index: number): Promise<ProxiedWorker> {
    let s3: string | undefined;
    let proxy: ChildProcess | null = null;
    const waiters: (() => void)[] = [];
    if (this.throttle) {
      const minioPort = new URL(this.e.s3.endpoint).port;
      const p = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'chaos-proxy.ts'), minioPort, '2000000'],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      proxy = p;
      const lines = readline.createInterface({ input: p.stdout as NodeJS.ReadableStream });
      const port = await new Promise<string>((resolve) => lines.once('line', resolve));
      lines.on('line', (l) => {
        if (l === 'upload') for (const w of waiters.splice(0)) w();
      });
      s3 = `http://127.0.0.1:${port}`;
    }
    const worker = spawnWorker('compute', {
      env: this.env(s3),
      logFile: path.join(this.home, 'logs', `compute-${index}.log`),
    });
    await worker.ready;
    return {
      index,
      proxy,
      s3,
      nextUpload: () => new Promise<void>((resolve) => waiters.push(resolve)),
      worker,
    };
  }

  /** SIGKILLs compute worker i and starts a new one behind the same proxy. */
  async killAndReplace(i: number): Promise<void> {
    const old = this.compute[i] as ProxiedWorker;
    old.worker.child.kill('SIGKILL');
    await old.worker.exited;
    const worker = spawnWorker('compute', {
      env: this.env(old.s3),
      logFile: path.join(this.home, 'logs', `compute-${i}.log`),
    });
    this.compute[i] = { ...old, worker };
    await worker.ready;
  }

  async stop(): Promise<void> {
    await Promise.all(this.compute.map((w) => stopWorker(w.worker, 20_000)));
    for (const w of this.compute) w.proxy?.stdin?.end();
    if (this.light) await stopWorker(this.light, 20_000);
  }
}

async function runPipeline(
  client: Client,
  log: (line: string) => void,
): Promise<{ lottery: boolean; distill: boolean }> {
  const { lottery, distill } = chaosSpecs();
  const [l, d] = await Promise.all([
    startOrAttachLottery(client, lottery),
    startOrAttachDistill(client, distill),
  ]);
  const results = await Promise.allSettled([l.handle.result(), d.handle.result()]);
  for (const [name, r] of [
    ['lottery', results[0]],
    ['distill', results[1]],
  ] as const)
    if (r.status === 'rejected')
      log(`${name} failed: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
  return { lottery: results[0].status === 'fulfilled', distill: results[1].status === 'fulfilled' };
}

/**
 * Waits until nothing runs: a lottery returns before the analyses of its last levels (children it never waits for)
 * are done, and the pipeline is complete only when they are.
 */
async function untilQuiet(client: Client, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await client.workflow.count('ExecutionStatus = "Running"')).count > 0) {
    if (Date.now() > deadline)
      throw new Error('workflows still running ten minutes after the pipeline returned');
    await sleep(500);
  }
}

function freshHome(home: string): void {
  fs.rmSync(home, { recursive: true, force: true });
  fs.mkdirSync(path.join(home, 'logs'), { recursive: true });
}

/** The pipeline on a fresh stack without faults: the reference every chaos run is compared with. */
export async function runUndisturbed(home: string, log: (line: string) => void): Promise<PipelineRun> {
  freshHome(home);
  const { opts, endpoints } = await startBenchStack(home, log);
  const fleet = new Fleet(endpoints, home, false);
  const client = await connectClient(endpoints);
  try {
    await fleet.start();
    const t0 = performance.now();
    const ok = await runPipeline(client, log);
    await untilQuiet(client);
    const wallSeconds = (performance.now() - t0) / 1000;
    if (!ok.lottery || !ok.distill) throw new Error('the undisturbed pipeline failed; see the log above');
    return { digests: await contentDigests(openStore(endpoints)), wallSeconds };
  } finally {
    await client.connection.close();
    await fleet.stop();
    await stackDown(opts);
  }
}

/** One seed: the pipeline with faults injected on a schedule drawn from the seed. */
export async function runChaos(o: ChaosOptions, reference: PipelineRun): Promise<ChaosRow> {
  const rand = mulberry32(o.seed);
  const between = (lo: number, hi: number) => lo + (hi - lo) * rand();
  freshHome(o.home);
  const { opts, endpoints } = await startBenchStack(o.home, o.log);
  const fleet = new Fleet(endpoints, o.home, true);
  const client = await connectClient(endpoints);
  const row: ChaosRow = {
    seed: o.seed,
    kills: 0,
    killsDuringUpload: 0,
    serverRestarts: 0,
    storeOutages: 0,
    completed: false,
    identical: false,
    wallSeconds: 0,
    undisturbedSeconds: reference.wallSeconds,
    lostWorkSeconds: 0,
    differing: [],
    credentialScan: { histories: 0, logs: 0, leaks: [] },
  };
  let outageSeconds = 0;
  let done = false;
  try {
    await fleet.start();
    const t0 = performance.now();
    const pipeline = runPipeline(client, o.log)
      .then(async (ok) => {
        await untilQuiet(client);
        return ok;
      })
      .finally(() => (done = true));
    // The faults, in a seeded order: kills spread over the run, the server restart and the store outage between
    // them. The first kill waits for an upload in flight and kills the worker doing it.
    const serverAfter = Math.floor(between(1, o.kills));
    const storeAfter = Math.floor(between(1, o.kills));
    const faults = (async () => {
      for (let k = 0; k < o.kills && !done; k++) {
        if (k === 0) {
          const w = await Promise.race([
            ...fleet.compute.map((c) => c.nextUpload().then(() => c)),
            pipeline.then(() => null),
          ]);
          if (done || w === null) break;
          await fleet.killAndReplace(w.index);
          row.killsDuringUpload++;
          o.log(`kill ${k + 1}: compute worker ${w.index} during an upload`);
        } else {
          await sleep(between(2000, 6000));
          if (done) break;
          const i = Math.floor(rand() * fleet.compute.length);
          await fleet.killAndReplace(i);
          o.log(`kill ${k + 1}: compute worker ${i}`);
        }
        row.kills++;
        if (k + 1 === serverAfter && !done) {
          const st = await stackStatus(opts);
          if (st.temporal.pid) process.kill(st.temporal.pid, 'SIGKILL');
          const down = performance.now();
          await sleep(between(1000, 4000));
          await stackUp(opts, () => {});
          outageSeconds += (performance.now() - down) / 1000;
          row.serverRestarts++;
          o.log(`Temporal dev server SIGKILLed and restarted on its SQLite file`);
        }
        if (k + 1 === storeAfter && !done) {
          const st = await stackStatus(opts);
          if (st.minio.pid) process.kill(st.minio.pid, 'SIGTERM');
          const down = performance.now();
          await sleep(o.storeOutageSeconds * 1000);
          await stackUp(opts, () => {});
          outageSeconds += (performance.now() - down) / 1000;
          row.storeOutages++;
          o.log(`MinIO stopped for ${o.storeOutageSeconds} s and restarted`);
        }
      }
    })();
    const ok = await pipeline;
    row.wallSeconds = (performance.now() - t0) / 1000;
    await faults;
    row.completed = ok.lottery && ok.distill;
    row.lostWorkSeconds = Math.max(0, row.wallSeconds - reference.wallSeconds - outageSeconds);
    const got = await contentDigests(openStore(endpoints));
    const keys = new Set([...got.keys(), ...reference.digests.keys()]);
    row.differing = [...keys].filter((k) => got.get(k) !== reference.digests.get(k)).sort();
    row.identical = row.completed && row.differing.length === 0;
    row.credentialScan = await scanForCredentials(client, endpoints, o.home);
    return row;
  } finally {
    await client.connection.close();
    await fleet.stop();
    await stackDown(opts);
  }
}

/**
 * Every workflow history of the run (inputs, results, memos, search attributes, heartbeat details, failures) and
 * log under the run's home (the workers', the Temporal server's, MinIO's), searched for the store's access key and secret key: credentials reach workers through their
 * environment only, never through Temporal or a log line.
 */
async function scanForCredentials(
  client: Client,
  e: StackEndpoints,
  logDir: string,
): Promise<ChaosRow['credentialScan']> {
  const secrets = [e.s3.accessKey, e.s3.secretKey];
  const leaks: string[] = [];
  let histories = 0;
  for await (const w of client.workflow.list()) {
    const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    const text = JSON.stringify(history);
    histories++;
    for (const s of secrets) if (text.includes(s)) leaks.push(`history of ${w.workflowId} (${w.runId})`);
  }
  const logs = (fs.readdirSync(logDir, { recursive: true }) as string[]).filter((f) => f.endsWith('.log'));
  for (const f of logs) {
    const text = fs.readFileSync(path.join(logDir, f), 'utf8');
    for (const s of secrets) if (text.includes(s)) leaks.push(`log ${f}`);
  }
  return { histories, logs: logs.length, leaks };
}

/** Removes a run's home (its stack must be down). */
export function removeHome(home: string): void {
  fs.rmSync(home, { recursive: true, force: true });
}
