/**
 * Training throughput of LeNet-300-100 (batch 128, SGD with momentum as in open_lth) on every TF.js backend that
 * loads here. Each configuration runs in its own child process, since a process can hold only one WASM thread
 * count and the native backends cannot be unloaded. Writes bench/results/backends.json.
 *
 *   node --import tsx bench/backends.ts            # all configurations
 *   node --import tsx bench/backends.ts wasm:1 cpu # only these
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { Trainer, type TrainConfig } from '../ml/train';

const MODEL = 'lenet-300-100';
const BATCH = 128;
/** Timed steps continue until both minimums are met (or MAX_STEPS), so slow backends still finish. */
const MIN_STEPS = 10;
const MIN_SECONDS = 5;
const MAX_STEPS = 2000;
/** Warm-up: at least this many steps and this long (kernel set-up, allocator growth, JIT). */
const WARMUP_STEPS = 3;
const WARMUP_SECONDS = 1;
/**
 * Each configuration runs this many times, interleaved with the others, and reports the median: the machines
 * this runs on are shared, and one run can be off by 50% when a neighbour is busy.
 */
const ROUNDS = 3;

interface RunSpec {
  backend: BackendName;
  threads: number | null;
}

interface BenchResult {
  backend: BackendName;
  model: string;
  batch: number;
  /** Threads asked for (null: the backend's default). */
  threads: number | null;
  /** Threads the backend reports it computes with. */
  actualThreads: number | null;
  package: string;
  version: string;
  optimizer: string;
  samplesPerSec: number;
  steps: number;
  seconds: number;
  warmupSteps: number;
  /** samples/s of every round; samplesPerSec, steps and seconds are those of the median round. */
  rounds?: number[];
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function runChild(spec: RunSpec): Promise<BenchResult> {
  const info = await selectBackend({ prefer: spec.backend, threads: spec.threads ?? undefined, log });
  const train = loadDataset('mnist', 'train', { limit: 10000 });
  const config: TrainConfig = {
    model: MODEL,
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: BATCH,
    iterations: MAX_STEPS + WARMUP_STEPS,
    evalEvery: 0,
    seed: 1,
  };
  const trainer = new Trainer(config, train, { weights: getModel(MODEL).init(1) });
  try {
    const w0 = performance.now();
    let warmup = 0;
    while (warmup < WARMUP_STEPS || performance.now() - w0 < WARMUP_SECONDS * 1000) {
      trainer.trainStep();
      warmup++;
    }
    // Reading the loss waits for the device, so the clock starts and stops on finished work.
    await trainer.readLoss();
    const t0 = performance.now();
    let steps = 0;
    let lastReport = t0;
    for (;;) {
      trainer.trainStep();
      steps++;
      const now = performance.now();
      if (steps >= MAX_STEPS || (steps >= MIN_STEPS && now - t0 >= MIN_SECONDS * 1000)) break;
      if (now - lastReport > 2000) {
        await trainer.readLoss();
        log(`  ${spec.backend}/${spec.threads ?? 'default'}: ${steps} steps, ${((now - t0) / 1000).toFixed(1)} s`);
        lastReport = now;
      }
    }
    const loss = await trainer.readLoss();
    const seconds = (performance.now() - t0) / 1000;
    if (loss === null || !Number.isFinite(loss)) throw new Error(`training diverged (loss ${loss})`);
    return {
      backend: info.name,
      model: MODEL,
      batch: BATCH,
      threads: spec.threads,
      actualThreads: info.threads,
      package: info.package,
      version: info.version,
      optimizer: 'sgd momentum 0.9',
      samplesPerSec: (steps * BATCH) / seconds,
      steps,
      seconds,
      warmupSteps: warmup,
    };
  } finally {
    trainer.dispose();
  }
}

function installed(pkg: string): boolean {
  try {
    createRequire(__filename).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function plannedRuns(filter: string[]): RunSpec[] {
  const all: RunSpec[] = [];
  if (installed('@tensorflow/tfjs-node-gpu')) all.push({ backend: 'tensorflow-gpu', threads: null });
  if (installed('@tensorflow/tfjs-node')) all.push({ backend: 'tensorflow', threads: null });
  all.push({ backend: 'wasm', threads: 1 }, { backend: 'wasm', threads: 2 }, { backend: 'cpu', threads: null });
  if (filter.length === 0) return all;
  return all.filter((r) => filter.includes(r.backend) || filter.includes(`${r.backend}:${r.threads ?? ''}`));
}

function spawnRun(spec: RunSpec): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', __filename, '--child', JSON.stringify(spec)],
      { cwd: path.join(__dirname, '..'), env: { ...process.env, LTH_BACKEND: '', LTH_THREADS: '' }, maxBuffer: 1 << 20 },
      (err, stdout) => {
        if (err) return reject(err);
        try {
          resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as BenchResult);
        } catch (e) {
          reject(new Error(`child printed no result: ${String(e)}`));
        }
      },
    );
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const result = await runChild(JSON.parse(args[1] ?? '{}') as RunSpec);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const results: BenchResult[] = [];
  const skipped: { backend: string; reason: string }[] = [];
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!installed(name)) skipped.push({ backend: name, reason: 'package not installed' });
  }
  const specs = plannedRuns(args);
  const byRun = new Map<RunSpec, BenchResult[]>(specs.map((spec) => [spec, []]));
  const failed = new Set<RunSpec>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const spec of specs) {
      if (failed.has(spec)) continue;
      const label = `${spec.backend} threads=${spec.threads ?? 'default'}`;
      log(`bench: round ${round}/${ROUNDS}: ${label} ...`);
      try {
        const r = await spawnRun(spec);
        log(`bench: round ${round}/${ROUNDS}: ${label}: ${r.samplesPerSec.toFixed(0)} samples/s`);
        byRun.get(spec)?.push(r);
      } catch (e) {
        log(`bench: ${label} failed: ${(e as Error).message}`);
        failed.add(spec);
        skipped.push({ backend: `${spec.backend}:${spec.threads ?? ''}`, reason: (e as Error).message.split('\n')[0] ?? '' });
      }
    }
  }
  for (const [spec, runs] of byRun) {
    if (failed.has(spec) || runs.length === 0) continue;
    const sorted = [...runs].sort((a, b) => a.samplesPerSec - b.samplesPerSec);
    const median = sorted[Math.floor(sorted.length / 2)] as BenchResult;
    results.push({ ...median, rounds: runs.map((r) => Math.round(r.samplesPerSec)) });
  }
  const notes = [
    `each result is the median of ${ROUNDS} runs in fresh processes, interleaved across configurations; ` +
      "'rounds' lists every run's samples/s (spread there is the shared machine's noise)",
  ];
  if (results.some((r) => r.threads !== null && r.actualThreads !== null && r.actualThreads < r.threads)) {
    notes.push(
      'a backend ran on fewer threads than asked: tfjs-backend-wasm 4.22 never uses its threaded build under ' +
        'Node.js (WASM_HAS_MULTITHREAD_SUPPORT is false there, tfjs issue #3830), so wasm rows differ only by noise',
    );
  }
  const out = path.join(__dirname, 'results', 'backends.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ machine, results, skipped, notes }, null, 2) + '\n');
  log(`bench: wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
