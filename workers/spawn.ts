// Starts worker processes as children (for `lth worker all`, the demo and the fault tests).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { EXIT_WITH_PARENT_VAR } from './parent-watch';

export type WorkerRole = 'compute' | 'light';

export interface SpawnedWorker {
  role: WorkerRole;
  child: ChildProcess;
  logFile: string | null;
  /** Resolves once the worker printed its ready line; rejects if it exits first. */
  ready: Promise<void>;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<number | string | null>;
}

export interface SpawnWorkerOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Append the worker's output to this file instead of inheriting the parent's stderr. */
  logFile?: string;
}

const ENTRY: Record<WorkerRole, string> = {
  compute: path.join(__dirname, 'compute.ts'),
  light: path.join(__dirname, 'light.ts'),
};

export function spawnWorker(role: WorkerRole, opts: SpawnWorkerOptions = {}): SpawnedWorker {
  let out: number | 'inherit' = 'inherit';
  if (opts.logFile) {
    fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
    out = fs.openSync(opts.logFile, 'a');
  }
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY[role], ...(opts.args ?? [])], {
    // The child stops when this process dies, however it dies (workers/parent-watch.ts).
    env: { ...process.env, ...opts.env, [EXIT_WITH_PARENT_VAR]: String(process.pid) },
    stdio: ['ignore', out, 'pipe'],
  });
  if (typeof out === 'number') fs.closeSync(out);
  const logStream = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: 'a' }) : process.stderr;
  let tail = '';
  const exited = new Promise<number | string | null>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal));
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      logStream.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
      if (/ worker\] ready on /.test(tail)) resolve();
    });
    void exited.then((code) =>
      reject(new Error(`${role} worker exited (${String(code)}) before it was ready:\n${tail.slice(-1500)}`)),
    );
  });
  ready.catch(() => undefined);
  return { role, child, logFile: opts.logFile ?? null, ready, exited };
}

/** Asks a worker to stop (SIGTERM → graceful shutdown) and waits, killing it after `timeoutMs`. */
export async function stopWorker(w: SpawnedWorker, timeoutMs = 90_000): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  const timer = setTimeout(() => w.child.kill('SIGKILL'), timeoutMs);
  await w.exited;
  clearTimeout(timer);
}
