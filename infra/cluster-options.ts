/**
 * Where the cluster profile (infra/cluster-stack.ts) lives and listens, from LTH_CLUSTER_* variables, and the
 * endpoints its workers and commands use. Pure: nothing here reads files or touches the network.
 *
 * Guarantees:
 * - every port the profile binds is derived here, and all of them differ (checked, the clash named);
 * - the defaults differ from the embedded stack's, so both profiles can run side by side on one machine;
 * - an invalid variable is refused with an Error that names it and its value.
 */
import path from 'node:path';
import { z } from 'zod';

import type { StackEndpoints } from './endpoints';
import { optionalEnv, parseEnv, portSchema, type Env } from './env-schema';
import { loopbackEndpoints } from './loopback-endpoints';
import { REPO_ROOT } from './paths';
import { tlsFiles } from './tls-files';

export interface ClusterOptions {
  /** Folder holding the PostgreSQL cluster, the MinIO drives, configs, logs and pid files. */
  home: string;
  /** The Temporal frontend's gRPC port; the other Temporal services' ports are derived from it. */
  temporalPort: number;
  uiPort: number;
  minioPort: number;
  consolePort: number;
  postgresPort: number;
  /** MinIO drive directories in the erasure set (4..16). */
  drives: number;
  /** Compute worker processes started by `lth up --profile cluster` (0 = none). */
  computeWorkers: number;
  /** Native TensorFlow threads per compute worker (LTH_THREADS); null lets TensorFlow pick. */
  workerThreads: number | null;
  namespace: string;
  bucket: string;
  /**
   * LTH_TLS=1 / `--tls`: the Temporal frontend requires client certificates (mTLS, the server's own TLS) and MinIO
   * serves https, both with certificates from the CA made in <home>/tls (infra/tls.ts).
   */
  tls: boolean;
  /** MinIO's admin (root) credentials: `lth up --profile cluster` only. */
  s3AccessKey: string;
  s3SecretKey: string;
  /** The workers' user, limited to `bucket`: what clusterEndpoints() hands to workers and commands. */
  s3WorkerAccessKey: string;
  s3WorkerSecretKey: string;
}

/** Admin credentials of the cluster profile's MinIO; it listens on 127.0.0.1 only. */
export const CLUSTER_S3_ACCESS_KEY = 'lthcluster';
export const CLUSTER_S3_SECRET_KEY = 'lthcluster-secret';
/**
 * The workers' least-privilege user (s3:* on the profile's bucket only), created by `lth up --profile cluster`. A
 * documented constant like the embedded stack's (infra/endpoints.ts), so that these options stay pure; MinIO
 * listens on 127.0.0.1 only.
 */
export const CLUSTER_S3_WORKER_ACCESS_KEY = 'lthworker';
export const CLUSTER_S3_WORKER_SECRET_KEY = 'lthworker-cluster-secret';

export function defaultClusterOptions(): ClusterOptions {
  return {
    home: path.join(REPO_ROOT, '.data', 'cluster'),
    temporalPort: 7333,
    uiPort: 8333,
    minioPort: 9100,
    consolePort: 9101,
    postgresPort: 5433,
    drives: 4,
    computeWorkers: 2,
    workerThreads: 1,
    namespace: 'default',
    bucket: 'lth',
    tls: false,
    s3AccessKey: CLUSTER_S3_ACCESS_KEY,
    s3SecretKey: CLUSTER_S3_SECRET_KEY,
    s3WorkerAccessKey: CLUSTER_S3_WORKER_ACCESS_KEY,
    s3WorkerSecretKey: CLUSTER_S3_WORKER_SECRET_KEY,
  };
}

const clusterEnvSchema = z.object({
  LTH_CLUSTER_HOME: optionalEnv(z.string()),
  LTH_CLUSTER_TEMPORAL_PORT: optionalEnv(portSchema),
  LTH_CLUSTER_UI_PORT: optionalEnv(portSchema),
  LTH_CLUSTER_MINIO_PORT: optionalEnv(portSchema),
  LTH_CLUSTER_CONSOLE_PORT: optionalEnv(portSchema),
  LTH_CLUSTER_POSTGRES_PORT: optionalEnv(portSchema),
  LTH_CLUSTER_DRIVES: optionalEnv(z.coerce.number().int().min(4).max(16)),
  LTH_CLUSTER_WORKERS: optionalEnv(z.coerce.number().int().min(0).max(64)),
  LTH_NAMESPACE: optionalEnv(z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')),
  LTH_BUCKET: optionalEnv(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')),
  LTH_TLS: optionalEnv(z.enum(['0', '1'], { error: '0 or 1' })),
});

/**
 * The Temporal server's own ports, derived from the frontend's so one variable moves them all: the other
 * services' gRPC ports follow it, their membership (ringpop) ports are 100 above, the frontend's HTTP API 10
 * above, the server's Prometheus metrics 200 above.
 */
export function temporalServerPorts(frontend: number) {
  return {
    frontend,
    history: frontend + 1,
    matching: frontend + 2,
    worker: frontend + 3,
    frontendHttp: frontend + 10,
    frontendMembership: frontend + 100,
    historyMembership: frontend + 101,
    matchingMembership: frontend + 102,
    workerMembership: frontend + 103,
    metrics: frontend + 200,
  };
}

/** Metrics port of compute worker i (1-based) and of the light worker: 300 and up above the frontend. */
export function workerMetricsPort(o: ClusterOptions, worker: number | 'light'): number {
  return o.temporalPort + 300 + (worker === 'light' ? 0 : worker);
}

/** Every port the cluster binds, with what it is, for conflict checks. */
export function clusterPorts(o: ClusterOptions): { port: number; what: string }[] {
  const t = temporalServerPorts(o.temporalPort);
  return [
    ...Object.entries(t).map(([k, port]) => ({ port, what: `Temporal ${k}` })),
    { port: o.uiPort, what: 'Temporal UI' },
    { port: o.minioPort, what: 'MinIO S3 API' },
    { port: o.consolePort, what: 'MinIO console' },
    { port: o.postgresPort, what: 'PostgreSQL' },
    { port: workerMetricsPort(o, 'light'), what: 'light worker metrics' },
    ...Array.from({ length: o.computeWorkers }, (_, i) => ({
      port: workerMetricsPort(o, i + 1),
      what: `compute worker ${i + 1} metrics`,
    })),
  ];
}

/** Options from LTH_CLUSTER_* (and LTH_NAMESPACE, LTH_BUCKET, LTH_TLS); `overrides` (e.g. CLI flags) win over env. */
export function clusterOptionsFromEnv(
  env: Env = process.env,
  overrides: Partial<ClusterOptions> = {},
): ClusterOptions {
  const e = parseEnv(clusterEnvSchema, env);
  const d = defaultClusterOptions();
  const fromEnv: Partial<ClusterOptions> = {
    home: e.LTH_CLUSTER_HOME,
    temporalPort: e.LTH_CLUSTER_TEMPORAL_PORT,
    uiPort: e.LTH_CLUSTER_UI_PORT,
    minioPort: e.LTH_CLUSTER_MINIO_PORT,
    consolePort: e.LTH_CLUSTER_CONSOLE_PORT,
    postgresPort: e.LTH_CLUSTER_POSTGRES_PORT,
    drives: e.LTH_CLUSTER_DRIVES,
    computeWorkers: e.LTH_CLUSTER_WORKERS,
    namespace: e.LTH_NAMESPACE,
    bucket: e.LTH_BUCKET,
    tls: e.LTH_TLS === undefined ? undefined : e.LTH_TLS === '1',
  };
  const o: ClusterOptions = { ...d };
  for (const layer of [fromEnv, overrides]) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) Object.assign(o, { [k]: v });
  }
  o.home = path.resolve(o.home);
  // The Temporal server keeps its services' ports in a PostgreSQL smallint (cluster_membership.rpc_port): a
  // port above 32767 makes it exit at start ("out of range for type smallint").
  const highest = Math.max(...Object.values(temporalServerPorts(o.temporalPort)));
  if (highest > 32_767)
    throw new Error(
      `LTH_CLUSTER_TEMPORAL_PORT ${o.temporalPort} is too high: the Temporal services use ports up to ${highest}, ` +
        `and the server stores them as smallint (at most 32767); use ${32_767 - 400} or lower`,
    );
  const seen = new Map<number, string>();
  for (const { port, what } of clusterPorts(o)) {
    const other = seen.get(port);
    if (other) throw new Error(`the cluster's ports must differ: ${other} and ${what} are both on ${port}`);
    seen.set(port, what);
  }
  return o;
}

/** What workers and commands use: the workers' user, never the admin (see clusterAdminS3()). */
export function clusterEndpoints(o: ClusterOptions): StackEndpoints {
  return loopbackEndpoints(o, false, o.tls ? tlsFiles(o.home) : null);
}

/** The cluster's MinIO with its admin credentials: for `lth up --profile cluster` (bucket, workers' user) only. */
export function clusterAdminS3(o: ClusterOptions): StackEndpoints['s3'] {
  return { ...clusterEndpoints(o).s3, accessKey: o.s3AccessKey, secretKey: o.s3SecretKey };
}
