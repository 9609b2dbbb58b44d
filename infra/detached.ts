/**
 * Services run as detached processes found again through pid files: the mechanics the embedded
 * stack (infra/embedded-stack.ts) and the cluster profile (infra/cluster-stack.ts) share.
 *
 * Guarantees:
 * - a process is ours only if its pid file names it, it is alive and (where /proc exists) its
 *   command line holds the service's marker path: nothing else is ever signalled;
 * - preflight() reports every conflict (a port held by anything else, ours on other ports)
 *   before anything starts; ensureService() reuses ours or starts one, and stops what it
 *   started when it does not become healthy;
 * - stopService() sends SIGTERM, then SIGKILL after the grace period, and removes the pid file;
 * - withLock() serialises up/down on one home; a lock left by a dead process is taken over.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

import { canBind, isListening } from './ports';

export interface StopResult {
  name: string;
  pid: number | null;
  /** False when nothing of ours was running. */
  stopped: boolean;
  /** It ignored SIGTERM for the grace period and got SIGKILL. */
  killed: boolean;
}

export type Log = (line: string) => void;

export interface ServiceStatus {
  name: string;
  /** Our process (pid file, alive, started from this home) is running. */
  running: boolean;
  healthy: boolean;
  pid: number | null;
  /** host:port of the main listener. */
  address: string;
  /** Where a person looks at it (a UI, a console), or the address again. */
  url: string;
  logFile: string;
  /** Something answers on the main port although it is not our process. */
  portTakenByOther: boolean;
}

// --------------------------------------------------------------------------- processes ----

// --------------------------------------------------------------------------- processes ----

export interface PidFile {
  pid: number;
  ports: number[];
  bin: string;
  startedAt: string;
}

export const pidFileSchema = z.object({
  pid: z.number().int().positive(),
  ports: z.array(z.number().int()),
  bin: z.string(),
  startedAt: z.string(),
});

export interface ServiceSpec {
  name: string;
  title: string;
  /** Main port first; all must be free before a start. */
  ports: { port: number; what: string; flag: string }[];
  /** A path only our process for this home has on its command line. */
  marker: string;
  pidFile: string;
  logFile: string;
  address: string;
  url: string;
}

export function readPidFile(file: string): PidFile | null {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const r = pidFileSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else, so it is alive (and not ours to stop).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie still answers kill(0) until its parent reaps it; it holds no ports any more.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

/** True when pid is alive and, where /proc exists, was started with our marker path. */
export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    // No /proc (macOS): a pid that is alive is the best evidence there is.
    return !fs.existsSync('/proc/self');
  }
  return cmdline
    .split('\0')
    .some((a) => a === marker || a.startsWith(`${marker}/`) || a.endsWith(`=${marker}`));
}

/** The pid of our running process for this service, or null (removing a stale pid file). */
export function ourPid(s: ServiceSpec): { pid: number; file: PidFile } | null {
  const file = readPidFile(s.pidFile);
  if (!file) {
    fs.rmSync(s.pidFile, { force: true });
    return null;
  }
  if (isOurs(file.pid, s.marker)) return { pid: file.pid, file };
  fs.rmSync(s.pidFile, { force: true });
  return null;
}

export const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function tail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log yet)';
  }
}

/** The environment for our binaries: no client settings of the caller leak into them. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('TEMPORAL_') && !k.startsWith('MINIO_')) env[k] = v;
  }
  return { ...env, ...extra };
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(bin: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { env: cleanEnv(), timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr || (err && !stdout ? err.message : '') });
      },
    );
  });
}

// ------------------------------------------------------------------------------ lock ------

/** Serialises up/down on one home, so two `lth up` at once don't start two servers. */
export async function withLock<T>(home: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  fs.mkdirSync(home, { recursive: true });
  const lock = path.join(home, 'stack.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(lock, 'utf8').trim());
      if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${lock} is held by pid ${holder} (another lth up/down?); waited ${timeoutMs / 1000}s`,
        );
      }
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

// -------------------------------------------------------------------------------- up ------

export interface Started {
  pid: number;
  reused: boolean;
}

export async function waitHealthy(
  s: ServiceSpec,
  pid: number,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(pid)) {
      throw new Error(
        `${s.title} (pid ${pid}) exited during startup. Last lines of ${s.logFile}:\n${tail(s.logFile)}`,
      );
    }
    if (await check()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${s.title} (pid ${pid}) did not become healthy on ${s.address} within ${timeoutMs / 1000}s. ` +
          `Last lines of ${s.logFile}:\n${tail(s.logFile)}`,
      );
    }
    await sleep(200);
  }
}

export type Plan = { reuse: number } | { start: true };

/** Decides reuse vs start for one service without changing anything; throws on conflicts. */
export async function preflight(s: ServiceSpec): Promise<Plan> {
  const ports = s.ports.map((p) => p.port);
  const existing = ourPid(s);
  if (existing) {
    if (existing.file.ports.join(',') !== ports.join(',')) {
      throw new Error(
        `${s.title} of ${path.dirname(s.pidFile)} already runs (pid ${existing.pid}) on ports ` +
          `${existing.file.ports.join(', ')}, not ${ports.join(', ')}: run \`lth down\` first or use the same ports`,
      );
    }
    return { reuse: existing.pid };
  }
  for (const p of s.ports) {
    if (!(await canBind(p.port))) {
      throw new Error(
        `port ${p.port} (${p.what}) is already in use by another process; stop it or pick another port ` +
          `with ${p.flag}`,
      );
    }
  }
  return { start: true };
}

export async function ensureService(
  s: ServiceSpec,
  plan: Plan,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  check: () => Promise<boolean>,
  log: Log,
  timeoutMs: number,
): Promise<Started> {
  if ('reuse' in plan) {
    await waitHealthy(s, plan.reuse, check, timeoutMs);
    log(`${s.name}: reusing running ${s.title} (pid ${plan.reuse}) on ${s.address}`);
    return { pid: plan.reuse, reused: true };
  }
  const ports = s.ports.map((p) => p.port);
  const fd = fs.openSync(s.logFile, 'a');
  fs.writeSync(fd, `\n=== ${new Date().toISOString()} starting: ${bin} ${args.join(' ')}\n`);
  let pid: number | undefined;
  try {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], env });
    // Surface spawn failures (ENOENT, EACCES) synchronously rather than as an unhandled event.
    pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid ?? -1));
    });
    child.unref();
  } finally {
    fs.closeSync(fd);
  }
  const file: PidFile = { pid, ports, bin, startedAt: new Date().toISOString() };
  fs.writeFileSync(s.pidFile, `${JSON.stringify(file)}\n`);
  log(`${s.name}: started ${s.title} (pid ${pid}), log ${s.logFile}`);
  try {
    await waitHealthy(s, pid, check, timeoutMs);
  } catch (err) {
    await stopService(s, 5000);
    throw err;
  }
  return { pid, reused: false };
}

// ------------------------------------------------------------------------------ down ------

// ------------------------------------------------------------------------------ down ------

export async function stopService(s: ServiceSpec, graceMs: number): Promise<StopResult> {
  const mine = ourPid(s);
  if (!mine) return { name: s.name, pid: null, stopped: false, killed: false };
  const { pid } = mine;
  const waitGone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    return !isAlive(pid);
  };
  let killed = false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  if (!(await waitGone(graceMs))) {
    killed = true;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    if (!(await waitGone(5000))) throw new Error(`${s.title} (pid ${pid}) survived SIGKILL`);
  }
  fs.rmSync(s.pidFile, { force: true });
  return { name: s.name, pid, stopped: true, killed };
}

/** What a service of ours is doing: running (pid file, alive, ours), healthy, or its port held by another. */
export async function serviceStatus(
  spec: ServiceSpec,
  check: () => Promise<boolean>,
): Promise<ServiceStatus> {
  const mine = fs.existsSync(spec.pidFile) ? ourPid(spec) : null;
  const healthy = mine ? await check() : false;
  const mainPort = spec.ports[0]?.port ?? 0;
  return {
    name: spec.name,
    running: mine !== null,
    healthy,
    pid: mine?.pid ?? null,
    address: spec.address,
    url: spec.url,
    logFile: spec.logFile,
    portTakenByOther: mine === null && (await isListening(mainPort)),
  };
}
