/**
 * The embedded service stack: a Temporal dev server (SQLite file, UI, the search attributes of
 * contract/search-attributes.ts) and a single-drive MinIO, both living under one home folder,
 * started detached so they outlive the `lth up` that started them, and found again through pid
 * files. Where the services are is infra/endpoints.ts's business; this module only runs them.
 *
 * Guarantees:
 * - everything a stack writes (database, object data, logs, pid files, lock) is under opts.home;
 * - up and down on one home are serialised by a lock file, so two `lth up` at once never start
 *   a service twice; a lock left by a dead process is taken over;
 * - stackUp() is idempotent: services of this home that already run on the same ports are
 *   reused; a port held by anything else is refused, every conflict reported before anything
 *   starts; a service this call started is stopped again if the stack cannot be brought up;
 * - a process is ours only if its pid file names it, it is alive and (where /proc exists) its
 *   command line holds this home's paths: nothing else is ever signalled;
 * - stackDown() sends SIGTERM, then SIGKILL after the grace period, and removes the pid files;
 * - binaries come from .tools/bin (`npm run setup`) or LTH_TEMPORAL_BIN / LTH_MINIO_BIN, and
 *   run without the caller's TEMPORAL_* / MINIO_* variables; nothing is downloaded.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

import { SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { embeddedEndpoints, s3Client, type Env, type StackEndpoints, type StackOptions } from './endpoints';
import { TOOLS_BIN } from './paths';
import { canBind, isListening, LOOPBACK } from './ports';

/**
 * The Temporal CLI's spelling of a search-attribute type, from the SDK's (`KEYWORD_LIST`) or
 * the server's (`INDEXED_VALUE_TYPE_KEYWORD_LIST`): `KeywordList`.
 */
export function cliTypeName(type: string): string {
  return type
    .replace(/^INDEXED_VALUE_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _u: string, c: string) => c.toUpperCase());
}

/**
 * The custom search attributes registered on the embedded server, name → CLI type, derived
 * from contract/search-attributes.ts (where they are declared); a production namespace needs
 * them created once by an operator.
 */
export const SEARCH_ATTRIBUTE_CLI_TYPES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(SEARCH_ATTRIBUTES.map((k) => [k.name, cliTypeName(k.type)])),
);

export type ServiceName = 'temporal' | 'minio';

export interface ServiceStatus {
  name: ServiceName;
  /** Our process (pid file, alive, started from this home) is running. */
  running: boolean;
  healthy: boolean;
  pid: number | null;
  /** host:port of the main listener. */
  address: string;
  /** The UI (Temporal) or console (MinIO) address. */
  url: string;
  logFile: string;
  /** Something answers on the main port although it is not our process. */
  portTakenByOther: boolean;
}

export interface StackStatus {
  home: string;
  temporal: ServiceStatus;
  minio: ServiceStatus;
}

export interface StopResult {
  name: ServiceName;
  pid: number | null;
  /** False when nothing of ours was running. */
  stopped: boolean;
  /** It ignored SIGTERM for the grace period and got SIGKILL. */
  killed: boolean;
}

export type Log = (line: string) => void;

// -------------------------------------------------------------------------- binaries ------

export interface StackBinaries {
  temporal: string;
  minio: string;
}

function findBinary(name: ServiceName, envVar: string, env: Env): string {
  const override = env[envVar];
  const p = override ? path.resolve(override) : path.join(TOOLS_BIN, name);
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    throw new Error(
      override
        ? `${envVar}=${override} is not an executable file`
        : `${name} binary not found at ${path.relative(process.cwd(), p) || p}: run \`npm run setup\` ` +
            `(or point ${envVar} at an existing ${name} binary)`,
    );
  }
}

export function temporalBinary(env: Env = process.env): string {
  return findBinary('temporal', 'LTH_TEMPORAL_BIN', env);
}

export function minioBinary(env: Env = process.env): string {
  return findBinary('minio', 'LTH_MINIO_BIN', env);
}

// --------------------------------------------------------------------------- processes ----

interface PidFile {
  pid: number;
  ports: number[];
  bin: string;
  startedAt: string;
}

const pidFileSchema = z.object({
  pid: z.number().int().positive(),
  ports: z.array(z.number().int()),
  bin: z.string(),
  startedAt: z.string(),
});

interface ServiceSpec {
  name: ServiceName;
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

function specs(o: StackOptions): Record<ServiceName, ServiceSpec> {
  return {
    temporal: {
      name: 'temporal',
      title: 'Temporal dev server',
      ports: [
        { port: o.temporalPort, what: 'Temporal gRPC', flag: '--temporal-port / LTH_TEMPORAL_PORT' },
        { port: o.uiPort, what: 'Temporal UI', flag: '--ui-port / LTH_UI_PORT' },
      ],
      marker: path.join(o.home, 'temporal.sqlite'),
      pidFile: path.join(o.home, 'temporal.pid'),
      logFile: path.join(o.home, 'temporal.log'),
      address: `${LOOPBACK}:${o.temporalPort}`,
      url: `http://${LOOPBACK}:${o.uiPort}`,
    },
    minio: {
      name: 'minio',
      title: 'MinIO',
      ports: [
        { port: o.minioPort, what: 'MinIO S3 API', flag: '--minio-port / LTH_MINIO_PORT' },
        { port: o.consolePort, what: 'MinIO console', flag: '--console-port / LTH_CONSOLE_PORT' },
      ],
      marker: path.join(o.home, 'minio'),
      pidFile: path.join(o.home, 'minio.pid'),
      logFile: path.join(o.home, 'minio.log'),
      address: `${LOOPBACK}:${o.minioPort}`,
      url: `http://${LOOPBACK}:${o.consolePort}`,
    },
  };
}

function readPidFile(file: string): PidFile | null {
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

function isAlive(pid: number): boolean {
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
function isOurs(pid: number, marker: string): boolean {
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
function ourPid(s: ServiceSpec): { pid: number; file: PidFile } | null {
  const file = readPidFile(s.pidFile);
  if (!file) {
    fs.rmSync(s.pidFile, { force: true });
    return null;
  }
  if (isOurs(file.pid, s.marker)) return { pid: file.pid, file };
  fs.rmSync(s.pidFile, { force: true });
  return null;
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log yet)';
  }
}

/** The environment for our binaries: no client settings of the caller leak into them. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('TEMPORAL_') && !k.startsWith('MINIO_')) env[k] = v;
  }
  return { ...env, ...extra };
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
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

/** Global flags that keep the CLI from reading the user's profiles or TEMPORAL_* variables. */
const CLI_ISOLATION = ['--disable-config-file', '--disable-config-env'];

function temporalCli(bin: string, address: string, args: string[], timeoutMs = 15_000): Promise<ExecResult> {
  return run(
    bin,
    [...args, '--address', address, ...CLI_ISOLATION, '--command-timeout', `${Math.ceil(timeoutMs / 1000)}s`],
    timeoutMs + 2000,
  );
}

async function temporalHealthy(bin: string | null, address: string, port: number): Promise<boolean> {
  if (!(await isListening(port))) return false;
  // Without the CLI (status on a machine that never ran setup) an open port is all we can tell.
  if (!bin) return true;
  const r = await temporalCli(bin, address, ['operator', 'cluster', 'health'], 3000);
  return r.code === 0 && r.stdout.includes('SERVING');
}

async function minioHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${LOOPBACK}:${port}/minio/health/live`, {
      signal: AbortSignal.timeout(2000),
    });
    return res.status === 200;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------ lock ------

/** Serialises up/down on one home, so two `lth up` at once don't start two servers. */
async function withLock<T>(home: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
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

export interface UpOptions {
  /** How long each service may take to become healthy. */
  healthTimeoutMs?: number;
}

interface Started {
  pid: number;
  reused: boolean;
}

async function waitHealthy(
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

type Plan = { reuse: number } | { start: true };

/** Decides reuse vs start for one service without changing anything; throws on conflicts. */
async function preflight(s: ServiceSpec): Promise<Plan> {
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

async function ensureService(
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

function temporalArgs(o: StackOptions): string[] {
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    path.join(o.home, 'temporal.sqlite'),
    '--ip',
    LOOPBACK,
    '--port',
    String(o.temporalPort),
    '--ui-port',
    String(o.uiPort),
    '--ui-disable-news-fetch',
    '--log-level',
    'warn',
    ...CLI_ISOLATION,
  ];
  if (o.namespace !== 'default') args.push('--namespace', o.namespace);
  // Registers them on a fresh database only; ensureSearchAttributes() covers an existing one.
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES))
    args.push('--search-attribute', `${name}=${type}`);
  return args;
}

const saListSchema = z.object({ customAttributes: z.record(z.string(), z.string()).optional() });

/** Custom search attributes of a namespace, as name → type ('Keyword', 'Int', ...). */
export async function listSearchAttributes(
  bin: string,
  address: string,
  namespace: string,
): Promise<Record<string, string>> {
  const r = await temporalCli(bin, address, [
    'operator',
    'search-attribute',
    'list',
    '--namespace',
    namespace,
    '-o',
    'json',
  ]);
  if (r.code !== 0) throw new Error(`temporal operator search-attribute list failed: ${r.stderr.trim()}`);
  const parsed = saListSchema.parse(JSON.parse(r.stdout));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.customAttributes ?? {})) {
    out[k] = cliTypeName(v);
  }
  return out;
}

async function ensureNamespace(bin: string, address: string, namespace: string, log: Log): Promise<void> {
  const d = await temporalCli(bin, address, ['operator', 'namespace', 'describe', '--namespace', namespace]);
  if (d.code === 0) return;
  const c = await temporalCli(bin, address, ['operator', 'namespace', 'create', '--namespace', namespace]);
  if (c.code !== 0 && !/already (exists|registered)/i.test(c.stderr)) {
    throw new Error(`could not create Temporal namespace ${namespace}: ${c.stderr.trim()}`);
  }
  log(`temporal: created namespace ${namespace}`);
}

async function ensureSearchAttributes(
  bin: string,
  address: string,
  namespace: string,
  dbFile: string,
  log: Log,
): Promise<void> {
  const have = await listSearchAttributes(bin, address, namespace);
  const missingByType = new Map<string, string[]>();
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_CLI_TYPES)) {
    const got = have[name];
    if (got === undefined) missingByType.set(type, [...(missingByType.get(type) ?? []), name]);
    else if (got !== type) {
      throw new Error(
        `search attribute ${name} is registered as ${got} in namespace ${namespace}, but the project needs ${type}; ` +
          `a type cannot be changed: delete ${dbFile} (loses the workflow history) or use another namespace`,
      );
    }
  }
  for (const [type, names] of missingByType) {
    const args = ['operator', 'search-attribute', 'create', '--namespace', namespace, '--type', type];
    for (const n of names) args.push('--name', n);
    const r = await temporalCli(bin, address, args);
    if (r.code !== 0)
      throw new Error(`could not register search attributes ${names.join(', ')}: ${r.stderr.trim()}`);
    log(`temporal: registered search attributes ${names.join(', ')} (${type})`);
  }
}

async function ensureBucket(e: StackEndpoints['s3'], log: Log): Promise<void> {
  const c = await s3Client(e);
  if (await c.bucketExists(e.bucket)) return;
  await c.makeBucket(e.bucket);
  log(`minio: created bucket ${e.bucket}`);
}

/**
 * Starts (or reuses) the embedded Temporal dev server and MinIO under opts.home and waits
 * until both are healthy, the search attributes are registered and the bucket exists.
 * A service this call started is stopped again if the stack cannot be brought up.
 */
export async function stackUp(
  opts: StackOptions,
  log: Log = () => {},
  up: UpOptions = {},
): Promise<StackEndpoints> {
  const timeoutMs = up.healthTimeoutMs ?? 60_000;
  const bins = { temporal: temporalBinary(), minio: minioBinary() };
  const s = specs(opts);
  const endpoints = embeddedEndpoints(opts);
  return withLock(opts.home, async () => {
    fs.mkdirSync(path.join(opts.home, 'minio'), { recursive: true });
    // All conflicts are reported before anything starts, so a refused `up` leaves nothing behind.
    const plans = await Promise.allSettled([preflight(s.temporal), preflight(s.minio)]);
    const conflicts = plans.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (conflicts.length > 0) throw new Error(conflicts.map((f) => errText(f.reason)).join('\n'));
    const [tPlan, mPlan] = plans.map((r) => (r as PromiseFulfilledResult<Plan>).value) as [Plan, Plan];
    const results = await Promise.allSettled([
      ensureService(
        s.temporal,
        tPlan,
        bins.temporal,
        temporalArgs(opts),
        cleanEnv(),
        () => temporalHealthy(bins.temporal, s.temporal.address, opts.temporalPort),
        log,
        timeoutMs,
      ),
      ensureService(
        s.minio,
        mPlan,
        bins.minio,
        [
          'server',
          s.minio.marker,
          '--address',
          s.minio.address,
          '--console-address',
          `${LOOPBACK}:${opts.consolePort}`,
        ],
        cleanEnv({
          MINIO_ROOT_USER: opts.s3AccessKey,
          MINIO_ROOT_PASSWORD: opts.s3SecretKey,
          // Nothing outside may be reached, and a stack must not change under a project.
          MINIO_UPDATE: 'off',
        }),
        () => minioHealthy(opts.minioPort),
        log,
        timeoutMs,
      ),
    ]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    const stopStarted = async () => {
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled' && !r.value.reused)
          await stopService(i === 0 ? s.temporal : s.minio, 5000);
      }
    };
    if (failed.length > 0) {
      await stopStarted();
      throw new Error(
        failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'),
      );
    }
    try {
      await ensureNamespace(bins.temporal, s.temporal.address, opts.namespace, log);
      await ensureSearchAttributes(bins.temporal, s.temporal.address, opts.namespace, s.temporal.marker, log);
      await ensureBucket(endpoints.s3, log);
    } catch (err) {
      await stopStarted();
      throw err;
    }
    return endpoints;
  });
}

// ------------------------------------------------------------------------------ down ------

async function stopService(s: ServiceSpec, graceMs: number): Promise<StopResult> {
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

/** Stops the embedded services of opts.home: SIGTERM, then SIGKILL after graceMs. */
export async function stackDown(opts: StackOptions, graceMs = 10_000): Promise<StopResult[]> {
  if (!fs.existsSync(opts.home)) {
    return (['temporal', 'minio'] as const).map((name) => ({
      name,
      pid: null,
      stopped: false,
      killed: false,
    }));
  }
  const s = specs(opts);
  return withLock(opts.home, () =>
    Promise.all([stopService(s.temporal, graceMs), stopService(s.minio, graceMs)]),
  );
}

// ---------------------------------------------------------------------------- status ------

export async function stackStatus(opts: StackOptions): Promise<StackStatus> {
  const s = specs(opts);
  let bin: string | null = null;
  try {
    bin = temporalBinary();
  } catch {
    bin = null;
  }
  const one = async (spec: ServiceSpec, check: () => Promise<boolean>): Promise<ServiceStatus> => {
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
  };
  const [temporal, minio] = await Promise.all([
    one(s.temporal, () => temporalHealthy(bin, s.temporal.address, opts.temporalPort)),
    one(s.minio, () => minioHealthy(opts.minioPort)),
  ]);
  return { home: opts.home, temporal, minio };
}
