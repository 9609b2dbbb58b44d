/**
 * The cluster profile: the production topology on one machine. A Temporal server built from the server's Go
 * module (not the dev server) persisting to PostgreSQL (Debian's, an unprivileged cluster in a data folder, for
 * both persistence and visibility), the Temporal UI server, MinIO erasure-coded over several drive folders, and
 * N compute workers plus the light worker, all detached processes under one home (infra/detached.ts).
 *
 * Guarantees (as the embedded stack's, infra/embedded-stack.ts):
 * - everything it writes is under opts.home; up and down are serialised by a lock file there;
 * - clusterUp() is idempotent: what runs healthy is reused, what died (a killed worker, a crashed server) is
 *   started again, a port held by anything else is refused before anything starts;
 * - PostgreSQL runs as the `postgres` system user when we are root (initdb refuses root), listening on
 *   127.0.0.1 only with trust authentication: the profile guards nothing, like the embedded stack;
 * - the schemas are the server's own, embedded in temporal-sql-tool; a database at an older schema version is
 *   updated, never dropped;
 * - the workers get the least-privilege MinIO user (ensureWorkerUser(): s3:* on the profile's bucket only); the
 *   admin credentials stay with clusterUp();
 * - clusterDown() stops workers first, then the UI and Temporal, then MinIO and PostgreSQL (smart shutdown);
 * - binaries: .tools/bin (`bash infra/provision.sh cluster`), the Temporal CLI for operator commands, Debian's
 *   PostgreSQL; nothing is downloaded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';

import {
  clusterAdminS3,
  clusterEndpoints,
  clusterOptionsFromEnv,
  clusterPorts,
  temporalServerPorts,
  workerMetricsPort,
  type ClusterOptions,
} from './cluster-options';
import {
  cleanEnv,
  ensureService,
  errText,
  ourPid,
  preflight,
  serviceStatus,
  stopService,
  withLock,
  type Log,
  type Plan,
  type ServiceSpec,
  type ServiceStatus,
  type StopResult,
} from './detached';
import {
  ensureBucket,
  ensureNamespace,
  ensureSearchAttributes,
  ensureWorkerUser,
  minioBinary,
  minioHealthy,
  startedWithTls,
  temporalBinary,
  temporalHealthy,
  type CliTarget,
} from './embedded-stack';
import { endpointsToEnv, type StackEndpoints } from './endpoints';
import { ensureTlsMaterial } from './tls';
import { TLS_SERVER_NAME, tlsFiles } from './tls-files';
import { REPO_ROOT, TOOLS_BIN } from './paths';
import { canBind, freePorts, isListening, LOOPBACK } from './ports';

const PG_USER = 'temporal';
const DATABASES = [
  { name: 'temporal', schema: 'postgresql/v12/temporal' },
  { name: 'temporal_visibility', schema: 'postgresql/v12/visibility' },
] as const;

// ------------------------------------------------------------------------------ binaries ---

export interface ClusterBinaries {
  temporalServer: string;
  sqlTool: string;
  uiServer: string;
  temporalCli: string;
  minio: string;
  /** Debian's PostgreSQL server binaries (initdb, postgres, pg_isready). */
  postgresBinDir: string;
}

function toolsBinary(name: string): string {
  const p = path.join(TOOLS_BIN, name);
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    throw new Error(
      `${name} not found in .tools/bin: run \`bash infra/provision.sh cluster\` (builds it, ~10 min)`,
    );
  }
}

/** LTH_POSTGRES_BIN_DIR, else the newest /usr/lib/postgresql/<major>/bin (Debian's layout). */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = env.LTH_POSTGRES_BIN_DIR
    ? [env.LTH_POSTGRES_BIN_DIR]
    : (() => {
        try {
          return fs
            .readdirSync('/usr/lib/postgresql')
            .filter((v) => /^\d+$/.test(v))
            .sort((a, b) => Number(b) - Number(a))
            .map((v) => path.join('/usr/lib/postgresql', v, 'bin'));
        } catch {
          return [];
        }
      })();
  for (const dir of candidates) if (fs.existsSync(path.join(dir, 'postgres'))) return dir;
  throw new Error(
    env.LTH_POSTGRES_BIN_DIR
      ? `LTH_POSTGRES_BIN_DIR=${env.LTH_POSTGRES_BIN_DIR} holds no postgres binary`
      : 'PostgreSQL not found under /usr/lib/postgresql: apt-get install postgresql (or set LTH_POSTGRES_BIN_DIR)',
  );
}

export function clusterBinaries(): ClusterBinaries {
  return {
    temporalServer: toolsBinary('temporal-server'),
    sqlTool: toolsBinary('temporal-sql-tool'),
    uiServer: toolsBinary('temporal-ui-server'),
    temporalCli: temporalBinary(),
    minio: minioBinary(),
    postgresBinDir: postgresBinDir(),
  };
}

// ------------------------------------------------------------------------------ services ---

export interface ClusterSpecs {
  postgres: ServiceSpec;
  minio: ServiceSpec;
  temporal: ServiceSpec;
  ui: ServiceSpec;
  light: ServiceSpec;
  compute: ServiceSpec[];
}

const logFile = (o: ClusterOptions, name: string) => path.join(o.home, 'logs', `${name}.log`);

function spec(o: ClusterOptions, name: string, title: string, markerDir: string, s: Partial<ServiceSpec>) {
  return {
    name,
    title,
    ports: [],
    marker: path.join(o.home, markerDir),
    pidFile: path.join(o.home, 'pids', `${name}.pid`),
    logFile: logFile(o, name),
    address: '',
    url: '',
    ...s,
  } satisfies ServiceSpec;
}

export function clusterSpecs(o: ClusterOptions): ClusterSpecs {
  const byWhat = new Map(clusterPorts(o).map((p) => [p.what, p.port]));
  const ports = (prefix: string, flag: string) =>
    [...byWhat].filter(([what]) => what.startsWith(prefix)).map(([what, port]) => ({ port, what, flag }));
  const worker = (name: string, title: string, metricsPort: number) =>
    spec(o, name, title, path.join('workers', name), {
      ports: [{ port: metricsPort, what: `${title} metrics`, flag: 'LTH_CLUSTER_TEMPORAL_PORT' }],
      address: `${LOOPBACK}:${metricsPort}`,
      url: `http://${LOOPBACK}:${metricsPort}/metrics`,
    });
  return {
    postgres: spec(o, 'postgres', 'PostgreSQL', 'postgres', {
      ports: ports('PostgreSQL', '--postgres-port / LTH_CLUSTER_POSTGRES_PORT'),
      address: `${LOOPBACK}:${o.postgresPort}`,
      url: `postgresql://${PG_USER}@${LOOPBACK}:${o.postgresPort}/temporal`,
    }),
    minio: spec(o, 'minio', `MinIO (erasure-coded, ${o.drives} drives)`, 'minio', {
      ports: ports(
        'MinIO',
        '--minio-port, --console-port / LTH_CLUSTER_MINIO_PORT, LTH_CLUSTER_CONSOLE_PORT',
      ),
      address: `${LOOPBACK}:${o.minioPort}`,
      url: `http${o.tls ? 's' : ''}://${LOOPBACK}:${o.consolePort}`,
    }),
    temporal: spec(o, 'temporal', 'Temporal server', 'temporal', {
      ports: ports(
        'Temporal ',
        '--temporal-port / LTH_CLUSTER_TEMPORAL_PORT (the server uses it and ports above it)',
      ),
      address: `${LOOPBACK}:${o.temporalPort}`,
      url: `http://${LOOPBACK}:${temporalServerPorts(o.temporalPort).metrics}/metrics`,
    }),
    ui: spec(o, 'ui', 'Temporal UI server', 'ui', {
      ports: ports('Temporal UI', '--ui-port / LTH_CLUSTER_UI_PORT'),
      address: `${LOOPBACK}:${o.uiPort}`,
      url: `http://${LOOPBACK}:${o.uiPort}`,
    }),
    light: worker('light', 'light worker', workerMetricsPort(o, 'light')),
    compute: Array.from({ length: o.computeWorkers }, (_, i) =>
      worker(`compute-${i + 1}`, `compute worker ${i + 1}`, workerMetricsPort(o, i + 1)),
    ),
  };
}

/**
 * Options for a private cluster under `home` whose every port is free now (tests and benchmarks, which must not
 * meet a developer's `lth up --profile cluster`): the frontend's block is drawn at random until all of it is free.
 */
export async function freeClusterOptions(
  home: string,
  overrides: Partial<ClusterOptions> = {},
): Promise<ClusterOptions> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below 32767 - 400: the server stores its services' ports in a PostgreSQL smallint.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const [uiPort, minioPort, consolePort, postgresPort] = (await freePorts(4)) as [
      number,
      number,
      number,
      number,
    ];
    let o: ClusterOptions;
    try {
      o = clusterOptionsFromEnv(
        {},
        { ...overrides, home, temporalPort: base, uiPort, minioPort, consolePort, postgresPort },
      );
    } catch {
      continue; // one of the free ports fell inside the frontend's block
    }
    const free = await Promise.all(clusterPorts(o).map((p) => canBind(p.port)));
    if (free.every(Boolean)) return o;
  }
  throw new Error('found no free block of ports for a private cluster in 50 tries');
}

export const driveDir = (o: ClusterOptions, i: number) => path.join(o.home, 'minio', `drive${i}`);

// --------------------------------------------------------------------------- postgres ---

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
  timeoutMs = 120_000,
): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
        stdout,
        stderr: stderr || (err ? err.message : ''),
      });
    });
  });
}

const isRoot = () => process.getuid?.() === 0;

/** initdb and postgres refuse to run as root: as root, run them as the `postgres` system user. */
function asPostgresUser(bin: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [bin, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', bin, ...args]];
}

async function ensurePostgresCluster(o: ClusterOptions, bins: ClusterBinaries, log: Log): Promise<string> {
  const dir = path.join(o.home, 'postgres');
  const data = path.join(dir, 'data');
  if (fs.existsSync(path.join(data, 'PG_VERSION'))) return data;
  fs.mkdirSync(dir, { recursive: true });
  if (isRoot()) {
    // The server runs as `postgres`: it must be able to reach the data folder through the home.
    fs.chownSync(dir, ...postgresIds());
    const [bin, args] = asPostgresUser('test', ['-w', dir]);
    if ((await exec(bin, args)).code !== 0)
      throw new Error(
        `PostgreSQL runs as the postgres user, which cannot reach ${dir}: make the folders above it traversable ` +
          `(chmod o+x) or put the cluster home elsewhere (--home / LTH_CLUSTER_HOME)`,
      );
  }
  const [bin, args] = asPostgresUser(path.join(bins.postgresBinDir, 'initdb'), [
    '-D',
    data,
    '-U',
    PG_USER,
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  const r = await exec(bin, args);
  if (r.code !== 0) throw new Error(`initdb ${data} failed:\n${r.stderr.trim() || r.stdout.trim()}`);
  log(`postgres: created a database cluster in ${data}`);
  return data;
}

function postgresIds(): [number, number] {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined)
    throw new Error(
      'running as root needs the `postgres` system user (apt-get install postgresql creates it)',
    );
  return [Number(uid), Number(gid)];
}

async function postgresHealthy(bins: ClusterBinaries, port: number): Promise<boolean> {
  if (!(await isListening(port))) return false;
  const r = await exec(
    path.join(bins.postgresBinDir, 'pg_isready'),
    ['-h', LOOPBACK, '-p', String(port)],
    {},
    5000,
  );
  return r.code === 0;
}

function sqlTool(bins: ClusterBinaries, o: ClusterOptions, db: string, args: string[]): Promise<Exec> {
  const conn = [
    '--plugin',
    'postgres12',
    '--ep',
    LOOPBACK,
    '--port',
    String(o.postgresPort),
    '--user',
    PG_USER,
  ];
  return exec(bins.sqlTool, [...conn, '--db', db, ...args]);
}

async function tableExists(bins: ClusterBinaries, o: ClusterOptions, db: string, table: string) {
  const psql = fs.existsSync(path.join(bins.postgresBinDir, 'psql'))
    ? path.join(bins.postgresBinDir, 'psql')
    : 'psql';
  const r = await exec(psql, [
    '-h',
    LOOPBACK,
    '-p',
    String(o.postgresPort),
    '-U',
    PG_USER,
    '-d',
    db,
    '-tAc',
    `SELECT to_regclass('public.${table}') IS NOT NULL`,
  ]);
  if (r.code !== 0) return false;
  return r.stdout.trim() === 't';
}

/** Creates the two databases and brings their schemas to the server's version; idempotent. */
async function ensureSchemas(o: ClusterOptions, bins: ClusterBinaries, log: Log): Promise<void> {
  for (const db of DATABASES) {
    const created = await sqlTool(bins, o, db.name, ['create-database']);
    if (created.code !== 0 && !/already exists/i.test(created.stderr + created.stdout))
      throw new Error(`temporal-sql-tool create-database ${db.name} failed:\n${created.stderr.trim()}`);
    if (!(await tableExists(bins, o, db.name, 'schema_version'))) {
      const setup = await sqlTool(bins, o, db.name, ['setup-schema', '-v', '0.0']);
      if (setup.code !== 0) throw new Error(`setup-schema ${db.name} failed:\n${setup.stderr.trim()}`);
    }
    const update = await sqlTool(bins, o, db.name, ['update-schema', '--schema-name', db.schema]);
    if (update.code !== 0) throw new Error(`update-schema ${db.name} failed:\n${update.stderr.trim()}`);
  }
  log(`postgres: schemas of ${DATABASES.map((d) => d.name).join(', ')} are current`);
}

// --------------------------------------------------------------------------- temporal ---

/**
 * The server's own TLS: the frontend (what workers, commands, the UI and the CLI reach) serves the stack's server
 * certificate and requires a client certificate from its CA; the system workers inside the server present the
 * client certificate too. The other services talk to each other in plaintext over loopback, inside one process.
 */
function temporalTlsConfig(o: ClusterOptions) {
  const f = tlsFiles(o.home);
  const client = { serverName: TLS_SERVER_NAME, rootCaFiles: [f.caCert] };
  return {
    frontend: {
      server: {
        certFile: f.serverCert,
        keyFile: f.serverKey,
        requireClientAuth: true,
        clientCaFiles: [f.caCert],
      },
      client,
    },
    systemWorker: { certFile: f.clientCert, keyFile: f.clientKey, client },
  };
}

/** How the CLI reaches the frontend: with the client certificate when the cluster has TLS. */
function cliTarget(o: ClusterOptions): CliTarget {
  const e = clusterEndpoints(o);
  return e.temporal.tls ? { address: e.temporal.address, tls: e.temporal.tls } : e.temporal.address;
}

/** The server's config: both stores on PostgreSQL, every service in one process, listening on loopback. */
function temporalConfig(o: ClusterOptions): string {
  const p = temporalServerPorts(o.temporalPort);
  const store = (db: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName: db,
      connectAddr: `${LOOPBACK}:${o.postgresPort}`,
      connectProtocol: 'tcp',
      user: PG_USER,
      password: '',
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const svc = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: LOOPBACK, ...extra },
  });
  return toYaml({
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: store('temporal', 20), visibility: store('temporal_visibility', 10) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: LOOPBACK },
      ...(o.tls ? { tls: temporalTlsConfig(o) } : {}),
      metrics: {
        prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `${LOOPBACK}:${p.metrics}` },
      },
    },
    services: {
      frontend: svc(p.frontend, p.frontendMembership, { httpPort: p.frontendHttp }),
      history: svc(p.history, p.historyMembership),
      matching: svc(p.matching, p.matchingMembership),
      worker: svc(p.worker, p.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `${LOOPBACK}:${p.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: {
      filepath: path.join(o.home, 'temporal', 'dynamicconfig.yaml'),
      pollInterval: '10s',
    },
  });
}

/**
 * Dynamic config: a search attribute registered a moment ago is usable at once (as on the dev server), and the
 * worker-heartbeat and deployment APIs the SDK calls are on.
 */
const DYNAMIC_CONFIG = toYaml({
  'system.forceSearchAttributesCacheRefreshOnRead': [{ value: true, constraints: {} }],
  'frontend.enableUpdateWorkflowExecution': [{ value: true, constraints: {} }],
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted': [{ value: true, constraints: {} }],
});

function writeTemporalConfig(o: ClusterOptions): string {
  const dir = path.join(o.home, 'temporal');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'dynamicconfig.yaml'), DYNAMIC_CONFIG);
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, temporalConfig(o));
  return file;
}

function writeUiConfig(o: ClusterOptions): string {
  const dir = path.join(o.home, 'ui');
  fs.mkdirSync(path.join(dir, 'config'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'config', 'cluster.yaml'),
    toYaml({
      temporalGrpcAddress: `${LOOPBACK}:${o.temporalPort}`,
      ...(o.tls
        ? {
            tls: {
              caFile: tlsFiles(o.home).caCert,
              certFile: tlsFiles(o.home).clientCert,
              keyFile: tlsFiles(o.home).clientKey,
              serverName: TLS_SERVER_NAME,
              enableHostVerification: true,
            },
          }
        : {}),
      host: LOOPBACK,
      port: o.uiPort,
      enableUi: true,
      defaultNamespace: o.namespace,
      disableNewsFetch: true,
      refreshInterval: '1m',
      cors: { allowOrigins: [`http://${LOOPBACK}:${o.uiPort}`], cookieInsecure: true },
    }),
  );
  return dir;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * A new namespace reaches the frontend's namespace cache some seconds after it is created (the dev server has no
 * such delay): until then the search-attribute calls say it is not found, so they are retried until the deadline.
 */
async function registerSearchAttributes(
  bins: ClusterBinaries,
  o: ClusterOptions,
  log: Log,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await ensureSearchAttributes(
        bins.temporalCli,
        cliTarget(o),
        o.namespace,
        'the PostgreSQL cluster',
        log,
      );
      return;
    } catch (err) {
      if (!/not found/i.test(errText(err)) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

// ------------------------------------------------------------------------------ workers ---

const WORKER_ENTRY = { compute: 'workers/compute.ts', light: 'workers/light.ts' } as const;

function workerCommand(s: ServiceSpec, role: keyof typeof WORKER_ENTRY): [string, string[]] {
  // --title puts the marker on the command line, which is how a pid file's process is recognised as ours.
  return [
    process.execPath,
    [`--title=${s.marker}`, '--import', 'tsx', path.join(REPO_ROOT, WORKER_ENTRY[role])],
  ];
}

function workerEnv(
  o: ClusterOptions,
  endpoints: StackEndpoints,
  role: 'compute' | 'light',
  port: number,
  extra: Record<string, string> = {},
) {
  return cleanEnv({
    ...extra,
    ...endpointsToEnv(endpoints),
    ...(role === 'compute'
      ? {
          LTH_METRICS_PORT: String(port),
          ...(o.workerThreads ? { LTH_THREADS: String(o.workerThreads) } : {}),
        }
      : { LTH_LIGHT_METRICS_PORT: String(port) }),
  });
}

// ----------------------------------------------------------------------------------- up ---

export interface ClusterUpOptions {
  healthTimeoutMs?: number;
  /** Start only the services, no workers (a caller that runs its own workers, as the scale-out bench). */
  withoutWorkers?: boolean;
  /** More environment for the workers (e.g. LTH_BACKEND, LTH_PROGRESS_INTERVAL_MS). */
  workerEnv?: Record<string, string>;
}

/** Waits for every promise, then throws the first failure: nothing is still starting when the caller cleans up. */
async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failed) throw failed.reason;
}

async function planAll(list: ServiceSpec[]): Promise<Plan[]> {
  const plans = await Promise.allSettled(list.map((s) => preflight(s)));
  const conflicts = plans.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (conflicts.length > 0) throw new Error(conflicts.map((f) => errText(f.reason)).join('\n'));
  return plans.map((r) => (r as PromiseFulfilledResult<Plan>).value);
}

/**
 * Starts (or reuses, or restarts what died of) the cluster under opts.home and waits until every part is
 * healthy, the namespace, search attributes and bucket exist and the workers answer on their metrics ports.
 */
export async function clusterUp(
  o: ClusterOptions,
  log: Log = () => {},
  up: ClusterUpOptions = {},
): Promise<StackEndpoints> {
  const timeoutMs = up.healthTimeoutMs ?? 120_000;
  const bins = clusterBinaries();
  const s = clusterSpecs(o);
  const endpoints = clusterEndpoints(o);
  const workers = up.withoutWorkers ? [] : [s.light, ...s.compute];
  return withLock(o.home, async () => {
    for (const d of ['logs', 'pids']) fs.mkdirSync(path.join(o.home, d), { recursive: true });
    for (let i = 1; i <= o.drives; i++) fs.mkdirSync(driveDir(o, i), { recursive: true });
    const running = ourPid(s.minio);
    const runningTls = running ? startedWithTls(running.pid) : null;
    if (runningTls !== null && runningTls !== o.tls)
      throw new Error(
        `the cluster of ${o.home} runs ${runningTls ? 'with' : 'without'} TLS: run \`lth down --profile cluster\` ` +
          `first, or ${runningTls ? 'add --tls (LTH_TLS=1)' : 'drop --tls (LTH_TLS)'}`,
      );
    let caFile: string | undefined;
    if (o.tls) {
      const material = await ensureTlsMaterial(o.home, log);
      caFile = material.files.caCert;
      // Everything presenting or trusting the old certificates would be refused by everything holding the new ones.
      if (material.made)
        for (const svc of [s.light, ...s.compute, s.ui, s.temporal, s.minio]) await stopService(svc, 10_000);
    }
    const [pgPlan, minioPlan, tPlan, uiPlan, ...workerPlans] = (await planAll([
      s.postgres,
      s.minio,
      s.temporal,
      s.ui,
      ...workers,
    ])) as [Plan, Plan, Plan, Plan, ...Plan[]];
    // What this call starts is stopped again if the cluster cannot be brought up, so a failed up leaves only
    // what was running before it.
    const ours = [s.postgres, s.minio, s.temporal, s.ui, ...workers].filter(
      (_, i) => 'start' in ([pgPlan, minioPlan, tPlan, uiPlan, ...workerPlans][i] ?? { start: true }),
    );
    try {
      const data = await ensurePostgresCluster(o, bins, log);
      const pgArgs = [
        '-D',
        data,
        '-p',
        String(o.postgresPort),
        '-k',
        data,
        '-c',
        `listen_addresses=${LOOPBACK}`,
      ];
      await settleAll([
        ensureService(
          s.postgres,
          pgPlan,
          ...asPostgresUser(path.join(bins.postgresBinDir, 'postgres'), pgArgs),
          cleanEnv(),
          () => postgresHealthy(bins, o.postgresPort),
          log,
          timeoutMs,
        ),
        ensureService(
          s.minio,
          minioPlan,
          bins.minio,
          [
            'server',
            path.join(o.home, 'minio', `drive{1...${o.drives}}`),
            '--address',
            s.minio.address,
            '--console-address',
            `${LOOPBACK}:${o.consolePort}`,
            ...(o.tls ? ['--certs-dir', tlsFiles(o.home).minioCertsDir] : []),
          ],
          cleanEnv({
            MINIO_ROOT_USER: o.s3AccessKey,
            MINIO_ROOT_PASSWORD: o.s3SecretKey,
            MINIO_UPDATE: 'off',
            // MinIO refuses erasure drives on the root disk ("drive not found") unless told this is a test setup:
            // here every drive is a folder of one disk, which is what the profile simulates.
            MINIO_CI_CD: 'on',
          }),
          () => minioHealthy(o.minioPort, caFile, '/minio/health/cluster'),
          log,
          timeoutMs,
        ),
      ]);
      if ('start' in tPlan) await ensureSchemas(o, bins, log);
      const config = writeTemporalConfig(o);
      await ensureService(
        s.temporal,
        tPlan,
        bins.temporalServer,
        ['--config-file', config, '--allow-no-auth', 'start'],
        cleanEnv(),
        () => temporalHealthy(bins.temporalCli, cliTarget(o), o.temporalPort),
        log,
        timeoutMs,
      );
      const uiRoot = writeUiConfig(o);
      await settleAll([
        ensureService(
          s.ui,
          uiPlan,
          bins.uiServer,
          ['--root', uiRoot, '--config', 'config', '--env', 'cluster', 'start'],
          cleanEnv(),
          () => httpOk(s.ui.url),
          log,
          timeoutMs,
        ),
        (async () => {
          await ensureNamespace(bins.temporalCli, cliTarget(o), o.namespace, log);
          await registerSearchAttributes(bins, o, log, timeoutMs);
          const admin = clusterAdminS3(o);
          await ensureBucket(admin, log);
          await ensureWorkerUser(
            admin,
            { accessKey: o.s3WorkerAccessKey, secretKey: o.s3WorkerSecretKey },
            [],
            log,
          );
        })(),
      ]);
      await settleAll(
        workers.map((w, i) => {
          const role = w === s.light ? 'light' : 'compute';
          const port = w.ports[0]?.port ?? 0;
          return ensureService(
            w,
            workerPlans[i] ?? { start: true },
            ...workerCommand(w, role),
            workerEnv(o, endpoints, role, port, up.workerEnv),
            () => httpOk(w.url),
            log,
            timeoutMs,
          );
        }),
      );
    } catch (err) {
      for (const svc of ours.reverse()) await stopService(svc, 10_000).catch(() => undefined);
      throw err;
    }
    return endpoints;
  });
}

// --------------------------------------------------------------------------- down, status ---

/** Stops everything of opts.home in dependency order: workers, UI, Temporal, then MinIO and PostgreSQL. */
export async function clusterDown(o: ClusterOptions, graceMs = 30_000): Promise<StopResult[]> {
  if (!fs.existsSync(o.home)) return [];
  const s = clusterSpecs({ ...o, computeWorkers: countComputePidFiles(o) });
  return withLock(o.home, async () => {
    const out: StopResult[] = [];
    out.push(...(await Promise.all([s.light, ...s.compute].map((w) => stopService(w, graceMs)))));
    out.push(await stopService(s.ui, graceMs));
    out.push(await stopService(s.temporal, graceMs));
    out.push(...(await Promise.all([stopService(s.minio, graceMs), stopService(s.postgres, graceMs)])));
    return out;
  });
}

/** Compute workers a previous up started, whatever LTH_CLUSTER_WORKERS says now. */
function countComputePidFiles(o: ClusterOptions): number {
  try {
    const n = fs
      .readdirSync(path.join(o.home, 'pids'))
      .map((f) => /^compute-(\d+)\.pid$/.exec(f)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number);
    return Math.max(o.computeWorkers, ...n);
  } catch {
    return o.computeWorkers;
  }
}

export interface ClusterStatus {
  home: string;
  services: ServiceStatus[];
}

export async function clusterStatus(o: ClusterOptions): Promise<ClusterStatus> {
  const s = clusterSpecs({ ...o, computeWorkers: countComputePidFiles(o) });
  let bins: ClusterBinaries | null = null;
  try {
    bins = clusterBinaries();
  } catch {
    bins = null;
  }
  const services = await Promise.all([
    serviceStatus(s.postgres, () =>
      bins ? postgresHealthy(bins, o.postgresPort) : isListening(o.postgresPort),
    ),
    serviceStatus(s.minio, () =>
      minioHealthy(o.minioPort, o.tls ? tlsFiles(o.home).caCert : undefined, '/minio/health/cluster'),
    ),
    serviceStatus(s.temporal, () => temporalHealthy(bins?.temporalCli ?? null, cliTarget(o), o.temporalPort)),
    serviceStatus(s.ui, () => httpOk(s.ui.url)),
    ...[s.light, ...s.compute].map((w) => serviceStatus(w, () => httpOk(w.url))),
  ]);
  return { home: o.home, services };
}
