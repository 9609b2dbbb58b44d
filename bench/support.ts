// What every benchmark shares: its command line, the machine it measured on, a private embedded stack on free ports,
// and the one way it writes its results.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Command, type ParseOptions } from 'commander';

import { stackDown, stackUp } from '../infra/embedded-stack';
import { endpointsToEnv, freeStackOptions, type StackEndpoints, type StackOptions } from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../workers/spawn';

/**
 * Commander refuses an excess argument saying only how many it got; this refuses it by name. Commander's own check is
 * off (allowExcessArguments(true) in benchCommand) so that this one, run after parsing, is the one that answers.
 */
class BenchCommand extends Command {
  override parse(argv?: readonly string[], parseOptions?: ParseOptions): this {
    super.parse(argv, parseOptions);
    const declared = this.registeredArguments;
    if (!declared.at(-1)?.variadic && this.args.length > declared.length) {
      this.error(
        `error: unexpected argument '${this.args[declared.length]}' (${this.name()} takes ` +
          `${declared.length === 0 ? 'options only' : `at most ${declared.length} argument(s)`}; see --help)`,
        { code: 'commander.excessArguments' },
      );
    }
    return this;
  }
}

/**
 * A bench's command line: `--help` prints its usage and exits 0 before anything runs, and an unknown option or a
 * stray argument exits 1 with one line naming it, before anything runs either.
 */
export function benchCommand(name: string, description: string): Command {
  return new BenchCommand(name).description(description).allowExcessArguments(true);
}

/** `file` as a message names it: relative to the repository when inside it. */
function shown(file: string): string {
  const rel = path.relative(REPO_ROOT, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/**
 * Replaces `file` with `data` atomically: written to a temporary file beside it, flushed, then renamed over it, so
 * that a crash or a kill mid-write leaves the old file whole, never a truncated one.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes a bench's result to `file` as JSON, atomically (writeFileAtomic). A result that measured nothing
 * (`isEmpty`) is refused: this throws naming the file, and whatever the file held stays as it was.
 */
export function writeResult<T>(file: string, result: T, opts: { isEmpty: (result: T) => boolean }): void {
  if (opts.isEmpty(result)) {
    throw new Error(
      `refusing to write ${shown(file)}: this run measured nothing; the stored results are kept`,
    );
  }
  writeFileAtomic(file, JSON.stringify(result, null, 2) + '\n');
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/**
 * Starts a benchmark's own stack with its data under `home`/stack (kept between runs, so an interrupted bench
 * reuses what it stored) on ports picked now, so it never meets a developer's `lth up`. Stop it with stackDown(opts).
 */
export async function startBenchStack(
  home: string,
  log: (msg: string) => void,
): Promise<{ opts: StackOptions; endpoints: StackEndpoints }> {
  const opts = await freeStackOptions(path.join(home, 'stack'));
  const endpoints = await stackUp(opts, log);
  log(`stack up: Temporal UI ${endpoints.temporal.uiUrl}`);
  return { opts, endpoints };
}

export interface Stat {
  mean: number;
  std: number;
  n: number;
  values: number[];
}

/** The middle value (the upper one of an even count): what a bench reports over rounds. */
/** The median; of an even count, the mean of the middle two. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Mean and sample standard deviation (n - 1; 0 for a single value) of values over seeds. */
export function stat(values: number[]): Stat {
  const n = values.length;
  const mean = n === 0 ? NaN : values.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? 0 : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, std, n, values };
}

/**
 * A light worker and `computeWorkers` compute workers on the bench's stack, logging under `home`/logs. Several
 * single-threaded compute workers beat one two-threaded one on these models (bench/results/backends.json).
 */
export function startBenchWorkers(
  home: string,
  endpoints: StackEndpoints,
  computeWorkers: number,
): SpawnedWorker[] {
  const env = {
    ...endpointsToEnv(endpoints),
    LTH_PROGRESS_INTERVAL_MS: '10000',
    ...(computeWorkers > 1 ? { LTH_THREADS: '1' } : {}),
  };
  const workers = [spawnWorker('light', { env, logFile: path.join(home, 'logs', 'light.log') })];
  for (let i = 0; i < computeWorkers; i++) {
    workers.push(spawnWorker('compute', { env, logFile: path.join(home, 'logs', `compute-${i}.log`) }));
  }
  return workers;
}

/** Stops a bench's workers (a running activity checkpoints as they drain), then its stack. */
export async function stopBench(workers: SpawnedWorker[], opts: StackOptions): Promise<void> {
  await Promise.all(workers.map((w) => stopWorker(w, 60_000)));
  await stackDown(opts);
}

/** lenet-300-100 keeps open_lth's lr; the conv nets blow up there (loss 3.6 -> 33 in one step) and get 0.01. */
export function benchOptimizer(model: string): { kind: 'sgd'; lr: number; momentum: number } {
  return { kind: 'sgd', lr: model === 'lenet-300-100' ? 0.1 : 0.01, momentum: 0.9 };
}

/**
 * bench:imp's training of a LeNet-300-100 level (open_lth's recipe: plain SGD, lr 0.1, batch 128, fewer epochs than
 * its 40), or the tiny one of a --quick smoke run. bench:geometry uses the same, so that it measures the same lineage.
 */
export function impBenchTrain(quick: boolean, epochs: number) {
  return quick
    ? {
        model: 'lenet-300-100' as const,
        dataset: 'mnist' as const,
        optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0 },
        batchSize: 64,
        iterations: 60,
        evalEvery: 30,
        trainLimit: 1000,
        testLimit: 500,
      }
    : {
        model: 'lenet-300-100' as const,
        dataset: 'mnist' as const,
        optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0 },
        batchSize: 128,
        epochs,
        evalEvery: 469,
      };
}
