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
 * - the MinIO admin credentials stay here: the endpoints handed to workers and commands carry the least-privilege
 *   user stackUp() creates (ensureWorkerUser(), s3:* on the stack's bucket only);
 * - with opts.tls (`lth up --tls`): MinIO serves only https, with certificates of the stack's own CA (infra/tls.ts),
 *   and Temporal's port is an mTLS front (infra/tls-front.ts) that refuses clients without a certificate from that
 *   CA; the dev server, which has no TLS settings, listens behind it on 127.0.0.1:temporalPlainPort (plaintext on
 *   loopback: the front guards the advertised port, not the machine); a stack never changes TLS mode while running;
 * - binaries come from .tools/bin (`npm run setup`) or LTH_TEMPORAL_BIN / LTH_MINIO_BIN, and
 *   run without the caller's TEMPORAL_* / MINIO_* variables; nothing is downloaded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { z } from 'zod';

import { SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import {
  embeddedAdminS3,
  embeddedEndpoints,
  s3Client,
  type Env,
  type StackEndpoints,
  type StackOptions,
  type TemporalTlsPaths,
} from './endpoints';
import { TOOLS_BIN } from './paths';
import {
  cleanEnv,
  ensureService,
  errText,
  ourPid,
  preflight,
  run,
  stopService,
  withLock,
  type ExecResult,
  type Log,
  type Plan,
  serviceStatus,
  type ServiceSpec,
  type ServiceStatus,
  type StopResult,
} from './detached';
import { isListening, LOOPBACK } from './ports';
import { ensureTlsMaterial } from './tls';
import { TLS_SERVER_NAME, tlsFiles, type TlsFiles } from './tls-files';

export type { Log, ServiceStatus, StopResult } from './detached';

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

export interface StackStatus {
  home: string;
  temporal: ServiceStatus;
  minio: ServiceStatus;
  /** The mTLS front on Temporal's port, for a stack started with TLS (running or not); absent otherwise. */
  tlsFront?: ServiceStatus;
}

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

/** Where the dev server itself listens: the Temporal port, or with TLS the plaintext port behind the front. */
function devServerPort(o: StackOptions): number {
  return o.tls ? o.temporalPlainPort : o.temporalPort;
}

function specs(o: StackOptions): Record<ServiceName | 'tlsFront', ServiceSpec> {
  const tls = tlsFiles(o.home);
  return {
    temporal: {
      name: 'temporal',
      title: 'Temporal dev server',
      ports: [
        o.tls
          ? {
              port: o.temporalPlainPort,
              what: 'Temporal gRPC (plaintext, behind the TLS front)',
              flag: 'LTH_TEMPORAL_PLAIN_PORT',
            }
          : { port: o.temporalPort, what: 'Temporal gRPC', flag: '--temporal-port / LTH_TEMPORAL_PORT' },
        { port: o.uiPort, what: 'Temporal UI', flag: '--ui-port / LTH_UI_PORT' },
      ],
      marker: path.join(o.home, 'temporal.sqlite'),
      pidFile: path.join(o.home, 'temporal.pid'),
      logFile: path.join(o.home, 'temporal.log'),
      address: `${LOOPBACK}:${devServerPort(o)}`,
      url: `http://${LOOPBACK}:${o.uiPort}`,
    },
    tlsFront: {
      name: 'tls-front',
      title: 'Temporal TLS front',
      ports: [
        { port: o.temporalPort, what: 'Temporal gRPC (mTLS)', flag: '--temporal-port / LTH_TEMPORAL_PORT' },
      ],
      marker: tls.dir,
      pidFile: path.join(o.home, 'tls-front.pid'),
      logFile: path.join(o.home, 'tls-front.log'),
      address: `${LOOPBACK}:${o.temporalPort}`,
      url: `${LOOPBACK}:${o.temporalPort} (mTLS, CA ${tls.caCert})`,
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
      url: `http${o.tls ? 's' : ''}://${LOOPBACK}:${o.consolePort}`,
    },
  };
}

/** Global flags that keep the CLI from reading the user's profiles or TEMPORAL_* variables. */
const CLI_ISOLATION = ['--disable-config-file', '--disable-config-env'];

/** Where the CLI connects: a plaintext address, or one with the TLS files to present and trust. */
export type CliTarget = string | { address: string; tls: TemporalTlsPaths };

function cliConnectArgs(t: CliTarget): string[] {
  if (typeof t === 'string') return ['--address', t];
  const args = ['--address', t.address, '--tls'];
  if (t.tls.caPath) args.push('--tls-ca-path', t.tls.caPath);
  if (t.tls.certPath) args.push('--tls-cert-path', t.tls.certPath);
  if (t.tls.keyPath) args.push('--tls-key-path', t.tls.keyPath);
  if (t.tls.serverName) args.push('--tls-server-name', t.tls.serverName);
  return args;
}

export function temporalCli(
  bin: string,
  target: CliTarget,
  args: string[],
  timeoutMs = 15_000,
): Promise<ExecResult> {
  return run(
    bin,
    [
      ...args,
      ...cliConnectArgs(target),
      ...CLI_ISOLATION,
      '--command-timeout',
      `${Math.ceil(timeoutMs / 1000)}s`,
    ],
    timeoutMs + 2000,
  );
}

export async function temporalHealthy(
  bin: string | null,
  address: CliTarget,
  port: number,
): Promise<boolean> {
  if (!(await isListening(port))) return false;
  // Without the CLI (status on a machine that never ran setup) an open port is all we can tell.
  if (!bin) return true;
  const r = await temporalCli(bin, address, ['operator', 'cluster', 'health'], 3000);
  return r.code === 0 && r.stdout.includes('SERVING');
}

/** MinIO answers a health probe (`probe`): over https trusting `caFile` when one is given, else over http. */
export function minioHealthy(port: number, caFile?: string, probe = '/minio/health/live'): Promise<boolean> {
  return new Promise((resolve) => {
    const opts = { host: LOOPBACK, port, path: probe, timeout: 2000 };
    const done = (res: http.IncomingMessage) => {
      res.resume();
      resolve(res.statusCode === 200);
    };
    let req: http.ClientRequest;
    try {
      req = caFile
        ? https.get({ ...opts, ca: fs.readFileSync(caFile), servername: TLS_SERVER_NAME }, done)
        : http.get(opts, done);
    } catch {
      resolve(false);
      return;
    }
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The TLS front completes a handshake with the stack's client certificate and offers gRPC's h2. */
export function tlsFrontHealthy(port: number, files: TlsFiles): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({
        host: LOOPBACK,
        port,
        servername: TLS_SERVER_NAME,
        ca: fs.readFileSync(files.caCert),
        cert: fs.readFileSync(files.clientCert),
        key: fs.readFileSync(files.clientKey),
        ALPNProtocols: ['h2'],
        timeout: 2000,
      });
    } catch {
      resolve(false);
      return;
    }
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(socket.authorized && socket.alpnProtocol === 'h2'));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

// -------------------------------------------------------------------------------- up ------

export interface UpOptions {
  /** How long each service may take to become healthy. */
  healthTimeoutMs?: number;
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
    String(devServerPort(o)),
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
  address: CliTarget,
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

export async function ensureNamespace(
  bin: string,
  address: CliTarget,
  namespace: string,
  log: Log,
): Promise<void> {
  const d = await temporalCli(bin, address, ['operator', 'namespace', 'describe', '--namespace', namespace]);
  if (d.code === 0) return;
  const c = await temporalCli(bin, address, ['operator', 'namespace', 'create', '--namespace', namespace]);
  if (c.code !== 0 && !/already (exists|registered)/i.test(c.stderr)) {
    throw new Error(`could not create Temporal namespace ${namespace}: ${c.stderr.trim()}`);
  }
  log(`temporal: created namespace ${namespace}`);
}

export async function ensureSearchAttributes(
  bin: string,
  address: CliTarget,
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
    // One name per call: a server on SQL visibility (the cluster profile's) keeps only the first name of a call
    // that creates several, while reporting success; checked below either way.
    for (const n of names) {
      const args = [
        'operator',
        'search-attribute',
        'create',
        '--namespace',
        namespace,
        '--type',
        type,
        '--name',
        n,
      ];
      const r = await temporalCli(bin, address, args);
      if (r.code !== 0) throw new Error(`could not register search attribute ${n}: ${r.stderr.trim()}`);
    }
    log(`temporal: registered search attributes ${names.join(', ')} (${type})`);
  }
  if (missingByType.size === 0) return;
  const after = await listSearchAttributes(bin, address, namespace);
  const lost = Object.keys(SEARCH_ATTRIBUTE_CLI_TYPES).filter((n) => after[n] === undefined);
  if (lost.length > 0)
    throw new Error(
      `search attributes ${lost.join(', ')} were accepted but are not listed in namespace ${namespace}`,
    );
}

function tlsFrontArgs(o: StackOptions): string[] {
  return [
    '--import',
    'tsx',
    path.join(__dirname, 'tls-front.ts'),
    '--listen',
    `${LOOPBACK}:${o.temporalPort}`,
    '--target',
    `${LOOPBACK}:${o.temporalPlainPort}`,
    '--tls-dir',
    tlsFiles(o.home).dir,
  ];
}

/** Whether our running MinIO was started with certificates: a stack's TLS mode cannot change under it. */
export function startedWithTls(pid: number): boolean | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--certs-dir');
  } catch {
    return null;
  }
}

export async function ensureBucket(e: StackEndpoints['s3'], log: Log): Promise<void> {
  const c = await s3Client(e);
  if (await c.bucketExists(e.bucket)) return;
  await c.makeBucket(e.bucket);
  log(`minio: created bucket ${e.bucket}`);
}

/** infra/minio-admin, built by `bash infra/provision.sh minio`. */
export function minioAdminBinary(): string {
  const p = path.join(TOOLS_BIN, 'lth-minio-admin');
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    throw new Error(
      `lth-minio-admin not found at ${path.relative(process.cwd(), p) || p}: run \`bash infra/provision.sh minio\``,
    );
  }
}

/**
 * Creates or updates the workers' MinIO user (`user`) with admin's credentials: its one policy, lth-user-<user>,
 * allows s3:* on admin.bucket and `extraBuckets` (a trailing `*` matches a prefix) and nothing else; other policies
 * are detached. Idempotent. The secrets travel to infra/minio-admin in its environment, never its argv.
 */
export async function ensureWorkerUser(
  admin: StackEndpoints['s3'],
  user: { accessKey: string; secretKey: string },
  extraBuckets: readonly string[],
  log: Log,
): Promise<void> {
  const buckets = [admin.bucket, ...extraBuckets];
  const args = ['ensure-user', '--endpoint', admin.endpoint, '--user', user.accessKey];
  for (const b of buckets) args.push('--bucket', b);
  if (admin.caFile) args.push('--ca-file', admin.caFile);
  const env = cleanEnv({
    LTH_MINIO_ROOT_USER: admin.accessKey,
    LTH_MINIO_ROOT_PASSWORD: admin.secretKey,
    LTH_MINIO_USER_SECRET: user.secretKey,
  });
  const bin = minioAdminBinary();
  const stderr = await new Promise<string | null>((resolve) => {
    execFile(bin, args, { env, timeout: 45_000 }, (err, _stdout, errText) =>
      resolve(err ? errText.trim() || err.message : null),
    );
  });
  if (stderr !== null)
    throw new Error(`could not set up the workers' MinIO user ${user.accessKey}: ${stderr}`);
  log(
    `minio: workers use the S3 user ${user.accessKey}, allowed only bucket ${buckets.join(', ')}; ` +
      `the admin ${admin.accessKey} stays with \`lth up\``,
  );
}

/**
 * Starts (or reuses) the embedded Temporal dev server and MinIO under opts.home and waits
 * until both are healthy, the search attributes are registered, the bucket and the workers' user exist. The
 * endpoints returned carry the workers' user (embeddedEndpoints()), not the admin.
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
    const running = ourPid(s.minio);
    const runningTls = running ? startedWithTls(running.pid) : null;
    if (runningTls !== null && runningTls !== opts.tls)
      throw new Error(
        `the stack of ${opts.home} runs ${runningTls ? 'with' : 'without'} TLS: run \`lth down\` first, or ` +
          (runningTls ? 'add --tls (LTH_TLS=1)' : 'drop --tls (LTH_TLS)'),
      );
    if (!opts.tls && ourPid(s.tlsFront))
      throw new Error(
        `the stack of ${opts.home} runs with TLS: run \`lth down\` first, or add --tls (LTH_TLS=1)`,
      );
    let caFile: string | undefined;
    if (opts.tls) {
      const material = await ensureTlsMaterial(opts.home, log);
      caFile = material.files.caCert;
      // Services still presenting the old certificates would be refused by every client holding the new CA.
      if (material.made) await Promise.all([stopService(s.minio, 5000), stopService(s.tlsFront, 5000)]);
    }
    // All conflicts are reported before anything starts, so a refused `up` leaves nothing behind.
    const plans = await Promise.allSettled([
      preflight(s.temporal),
      preflight(s.minio),
      ...(opts.tls ? [preflight(s.tlsFront)] : []),
    ]);
    const conflicts = plans.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (conflicts.length > 0) throw new Error(conflicts.map((f) => errText(f.reason)).join('\n'));
    const [tPlan, mPlan, fPlan] = plans.map((r) => (r as PromiseFulfilledResult<Plan>).value) as [
      Plan,
      Plan,
      Plan | undefined,
    ];
    const results = await Promise.allSettled([
      ensureService(
        s.temporal,
        tPlan,
        bins.temporal,
        temporalArgs(opts),
        cleanEnv(),
        () => temporalHealthy(bins.temporal, s.temporal.address, devServerPort(opts)),
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
          ...(opts.tls ? ['--certs-dir', tlsFiles(opts.home).minioCertsDir] : []),
        ],
        cleanEnv({
          MINIO_ROOT_USER: opts.s3AccessKey,
          MINIO_ROOT_PASSWORD: opts.s3SecretKey,
          // Nothing outside may be reached, and a stack must not change under a project.
          MINIO_UPDATE: 'off',
        }),
        () => minioHealthy(opts.minioPort, caFile),
        log,
        timeoutMs,
      ),
      ...(fPlan
        ? [
            ensureService(
              s.tlsFront,
              fPlan,
              process.execPath,
              tlsFrontArgs(opts),
              cleanEnv(),
              () => tlsFrontHealthy(opts.temporalPort, tlsFiles(opts.home)),
              log,
              timeoutMs,
            ),
          ]
        : []),
    ]);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    const order = [s.temporal, s.minio, s.tlsFront];
    const stopStarted = async () => {
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled' && !r.value.reused) await stopService(order[i] as ServiceSpec, 5000);
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
      const admin = embeddedAdminS3(opts);
      await ensureBucket(admin, log);
      await ensureWorkerUser(
        admin,
        { accessKey: opts.s3WorkerAccessKey, secretKey: opts.s3WorkerSecretKey },
        opts.s3WorkerExtraBuckets,
        log,
      );
    } catch (err) {
      await stopStarted();
      throw err;
    }
    return endpoints;
  });
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
  return withLock(opts.home, async () => {
    // The front first (clients see a closed port, not a server gone behind an open one); reported only if it ran.
    const front = await stopService(s.tlsFront, graceMs);
    const rest = await Promise.all([stopService(s.temporal, graceMs), stopService(s.minio, graceMs)]);
    return front.stopped ? [front, ...rest] : rest;
  });
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
  const files = tlsFiles(opts.home);
  const tls = opts.tls || fs.existsSync(s.tlsFront.pidFile);
  const [temporal, minio, tlsFront] = await Promise.all([
    serviceStatus(s.temporal, () => temporalHealthy(bin, s.temporal.address, devServerPort(opts))),
    serviceStatus(s.minio, () => minioHealthy(opts.minioPort, opts.tls ? files.caCert : undefined)),
    tls ? serviceStatus(s.tlsFront, () => tlsFrontHealthy(opts.temporalPort, files)) : undefined,
  ]);
  return { home: opts.home, temporal, minio, ...(tlsFront ? { tlsFront } : {}) };
}
