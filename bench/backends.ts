/**
 * Training throughput of every model in MODEL_NAMES (batch 128, SGD with momentum as in open_lth) on every TF.js
 * backend that loads here. Each configuration runs in its own child process, since a process can hold only one
 * WASM thread count and the native backends cannot be unloaded. Writes bench/results/backends.json.
 *
 *   node --import tsx bench/backends.ts                   # all configurations
 *   node --import tsx bench/backends.ts wasm:1 cpu        # only these backends
 *   node --import tsx bench/backends.ts wasm conv-2       # backends and models can be combined
 *
 * Time caps keep the whole run under 5 minutes on the 2-core dev machine: a conv-4 step at batch 128 takes ~3 s
 * on wasm and would take minutes on the plain cpu backend, which therefore measures conv nets at a smaller batch
 * (CPU_CONV_BATCH; each row's `batch` says what was measured).
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { Option } from 'commander';

import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel, isModelName, MODEL_NAMES } from '../ml/models';
import { Trainer, type TrainConfig } from '../ml/train';
import { benchCommand, benchOptimizer, machineInfo, writeResult } from './support';

const BATCH = 128;
/**
 * The cpu backend's convolutions run at ~0.3 GFLOP/s (a conv-2 step at batch 128 would take over a minute), so
 * conv nets are measured there at this batch, in one round.
 */
const CPU_CONV_BATCH = 16;
/**
 * Timed steps continue until both minimums are met (or MAX_STEPS), so slow backends still finish, but stop
 * after CAP_SECONDS once at least one step is done.
 */
const MIN_STEPS = 10;
const MIN_SECONDS = 4;
const MAX_STEPS = 2000;
const CAP_SECONDS = 5;
/**
 * Warm-up (kernel set-up, allocator growth, JIT): at least one step, then on until both this many steps and
 * this long, but not past WARMUP_CAP_SECONDS.
 */
const WARMUP_STEPS = 3;
const WARMUP_SECONDS = 1;
const WARMUP_CAP_SECONDS = 2;
/**
 * Each configuration runs this many times, interleaved with the others, and reports the median: the machines
 * this runs on are shared, and one run can be off by 50% when a neighbour is busy.
 */
const ROUNDS = 3;

export interface RunSpec {
  backend: BackendName;
  threads: number | null;
  model: string;
  batch: number;
  rounds: number;
}

export interface BenchResult {
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
  /** The process's peak resident memory (MiB) when the timing ended: runtime, backend, model, data. */
  peakRssMiB?: number;
  /** samples/s of every round; samplesPerSec, steps and seconds are those of the median round. */
  rounds?: number[];
  /** The step engine that ran the timed steps (ml/train/engines/), and its notes (e.g. why not a graph). */
  engine?: string;
  engineNotes?: string[];
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function runChild(spec: RunSpec): Promise<BenchResult> {
  const info = await selectBackend({ prefer: spec.backend, threads: spec.threads ?? undefined, log });
  const train = loadDataset('mnist', 'train', { limit: 10000 });
  const optimizer = benchOptimizer(spec.model);
  const config: TrainConfig = {
    model: spec.model,
    dataset: 'mnist',
    optimizer,
    batchSize: spec.batch,
    iterations: MAX_STEPS + 1000,
    evalEvery: 0,
    seed: 1,
  };
  const label = `${spec.backend}/${spec.threads ?? 'default'}/${spec.model}`;
  const trainer = new Trainer(config, train, { weights: getModel(spec.model).init(1) });
  try {
    const w0 = performance.now();
    let warmup = 0;
    for (;;) {
      const s = (performance.now() - w0) / 1000;
      if (warmup >= 1 && ((warmup >= WARMUP_STEPS && s >= WARMUP_SECONDS) || s >= WARMUP_CAP_SECONDS)) break;
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
      const s = (now - t0) / 1000;
      if (steps >= MAX_STEPS || (steps >= MIN_STEPS && s >= MIN_SECONDS) || s >= CAP_SECONDS) break;
      if (now - lastReport > 2000) {
        await trainer.readLoss();
        log(`  ${label}: ${steps} steps, ${s.toFixed(1)} s`);
        lastReport = now;
      }
    }
    const loss = await trainer.readLoss();
    const seconds = (performance.now() - t0) / 1000;
    if (loss === null || !Number.isFinite(loss)) throw new Error(`training diverged (loss ${loss})`);
    return {
      backend: info.name,
      model: spec.model,
      batch: spec.batch,
      threads: spec.threads,
      actualThreads: info.threads,
      package: info.package,
      version: info.version,
      optimizer: `sgd lr ${optimizer.lr} momentum ${optimizer.momentum}`,
      samplesPerSec: (steps * spec.batch) / seconds,
      steps,
      seconds,
      warmupSteps: warmup,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      engine: trainer.engineInfo.name,
      engineNotes: trainer.engineInfo.notes,
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

const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** What plannedRuns understands: a model, a backend, or a backend and its thread count (`wasm:1`, `cpu:`). */
function isFilter(f: string): boolean {
  if (isModelName(f)) return true;
  const [backend, threads, ...rest] = f.split(':');
  return (
    rest.length === 0 &&
    BACKEND_NAMES.includes(backend as BackendName) &&
    (threads === undefined || /^\d*$/.test(threads))
  );
}

function plannedRuns(filter: string[]): RunSpec[] {
  const backends: { backend: BackendName; threads: number | null }[] = [];
  if (installed('@tensorflow/tfjs-node-gpu')) backends.push({ backend: 'tensorflow-gpu', threads: null });
  // Native TensorFlow's intra-op pool is set per process (TF_NUM_INTRAOP_THREADS): one core against all.
  if (installed('@tensorflow/tfjs-node')) {
    backends.push(
      { backend: 'tensorflow', threads: 1 },
      { backend: 'tensorflow', threads: os.cpus().length },
    );
  }
  backends.push(
    { backend: 'wasm', threads: 1 },
    { backend: 'wasm', threads: 2 },
    { backend: 'cpu', threads: null },
  );
  const all: RunSpec[] = [];
  for (const model of MODEL_NAMES) {
    const conv = model !== 'lenet-300-100';
    for (const b of backends) {
      // wasm ignores its thread count under Node (see notes), so wasm:2 would repeat wasm:1: only when named.
      if (b.backend === 'wasm' && b.threads !== 1 && !filter.includes(`wasm:${b.threads}`)) continue;
      const slowCpu = conv && b.backend === 'cpu';
      all.push({ ...b, model, batch: slowCpu ? CPU_CONV_BATCH : BATCH, rounds: slowCpu ? 1 : ROUNDS });
    }
  }
  const models: string[] = filter.filter((f) => isModelName(f));
  const backendFilter = filter.filter((f) => !isModelName(f));
  return all.filter(
    (r) =>
      (models.length === 0 || models.includes(r.model)) &&
      (backendFilter.length === 0 ||
        backendFilter.includes(r.backend) ||
        backendFilter.includes(`${r.backend}:${r.threads ?? ''}`)),
  );
}

function spawnRun(spec: RunSpec): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', __filename, '--child', JSON.stringify(spec)],
      {
        cwd: path.join(__dirname, '..'),
        env: { ...process.env, LTH_BACKEND: '', LTH_THREADS: '', TF_NUM_INTRAOP_THREADS: '' },
        maxBuffer: 1 << 20,
      },
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
  const cli = benchCommand(
    'bench/backends',
    'Training throughput of every model on every TF.js backend that loads here, each configuration in a child ' +
      'process; writes bench/results/backends.json.',
  )
    .argument(
      '[filters...]',
      `backends (${BACKEND_NAMES.join(', ')}; with a thread count: wasm:1) and models (${MODEL_NAMES.join(', ')}) ` +
        'to measure; every configuration when none',
    )
    // How this bench (and bench/peer.ts) runs one configuration in a fresh process: it prints the result.
    .addOption(new Option('--child <spec>', 'measure one configuration (a RunSpec as JSON)').hideHelp())
    .parse(process.argv);
  const child = cli.opts<{ child?: string }>().child;
  if (child !== undefined) {
    const result = await runChild(JSON.parse(child) as RunSpec);
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const args = cli.processedArgs[0] as string[];
  for (const f of args) {
    if (!isFilter(f)) {
      cli.error(
        `error: '${f}' is neither a backend (${BACKEND_NAMES.join(', ')}, optionally :threads) nor a model ` +
          `(${MODEL_NAMES.join(', ')})`,
      );
    }
  }
  const specs = plannedRuns(args);
  if (specs.length === 0) cli.error(`error: ${args.join(' ')} names no configuration that can run here`);
  const machine = {
    ...machineInfo(),
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const results: BenchResult[] = [];
  const skipped: { backend: string; model?: string; reason: string }[] = [];
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!installed(name)) skipped.push({ backend: name, reason: 'package not installed' });
  }
  const byRun = new Map<RunSpec, BenchResult[]>(specs.map((spec) => [spec, []]));
  const failed = new Set<RunSpec>();
  const started = performance.now();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const spec of specs) {
      if (failed.has(spec) || round > spec.rounds) continue;
      const label = `${spec.model} ${spec.backend} threads=${spec.threads ?? 'default'} batch=${spec.batch}`;
      log(`bench: round ${round}/${ROUNDS}: ${label} ...`);
      try {
        const r = await spawnRun(spec);
        log(`bench: round ${round}/${ROUNDS}: ${label}: ${r.samplesPerSec.toFixed(0)} samples/s`);
        byRun.get(spec)?.push(r);
      } catch (e) {
        log(`bench: ${label} failed: ${(e as Error).message}`);
        failed.add(spec);
        skipped.push({
          backend: `${spec.backend}:${spec.threads ?? ''}`,
          model: spec.model,
          reason: (e as Error).message.split('\n')[0] ?? '',
        });
      }
    }
  }
  for (const [spec, runs] of byRun) {
    if (failed.has(spec) || runs.length === 0) continue;
    const sorted = [...runs].sort((a, b) => a.samplesPerSec - b.samplesPerSec);
    const median = sorted[Math.floor(sorted.length / 2)] as BenchResult;
    results.push({ ...median, rounds: runs.map((r) => Number(r.samplesPerSec.toPrecision(3))) });
  }
  const notes = [
    `each result is the median of ${ROUNDS} runs in fresh processes, interleaved across configurations; ` +
      "'rounds' lists every run's samples/s (spread there is the shared machine's noise)",
    `timed steps: at least ${MIN_STEPS} and ${MIN_SECONDS} s, or stop after ${CAP_SECONDS} s once a step is done`,
    `conv nets on the cpu backend: one run at batch ${CPU_CONV_BATCH} (a batch-128 step would take minutes)`,
    'wasm runs with threads=1 only unless wasm:2 is asked for: it computes on one thread either way under Node.js',
    `whole bench took ${((performance.now() - started) / 1000).toFixed(0)} s`,
  ];
  if (results.some((r) => r.threads !== null && r.actualThreads !== null && r.actualThreads < r.threads)) {
    notes.push(
      'a backend ran on fewer threads than asked: tfjs-backend-wasm 4.22 never uses its threaded build under ' +
        'Node.js (WASM_HAS_MULTITHREAD_SUPPORT is false there, tfjs issue #3830), so wasm rows differ only by noise',
    );
  }
  const out = path.join(__dirname, 'results', 'backends.json');
  // Empty: no configuration measured (every one failed).
  writeResult(out, { machine, results, skipped, notes }, { isEmpty: (r) => r.results.length === 0 });
  log(`bench: wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
