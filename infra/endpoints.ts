/**
 * Which Temporal and S3 services a process talks to, decided at run time by every worker,
 * command, test and benchmark; and a reachability check of those services.
 *
 * Guarantees:
 * - resolveEndpoints() is a pure function of the environment it is given: no file, process or
 *   network is touched, so it answers the same with or without services running;
 * - TEMPORAL_ADDRESS and S3_ENDPOINT are both set (external services) or both unset (the
 *   embedded stack of LTH_HOME and the LTH_*_PORT variables); one without the other is refused,
 *   never silently mixed with the embedded defaults;
 * - an invalid variable is refused with an Error that names it and its value;
 * - endpointsToEnv() hands endpoints to a child process: for any e that resolveEndpoints()
 *   returned, resolveEndpoints(endpointsToEnv(e)) deep-equals e;
 * - checkEndpoints() is the only function here that does I/O; an unreachable service, a
 *   missing namespace, bucket or search attribute is reported in its result, not thrown.
 * Starting, stopping and inspecting the embedded services is infra/embedded-stack.ts's job.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { z } from 'zod';

import { SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { clusterEndpoints, clusterOptionsFromEnv } from './cluster-options';
import { optionalEnv, parseEnv, portSchema, type Env } from './env-schema';
import { loopbackEndpoints } from './loopback-endpoints';
import { REPO_ROOT } from './paths';
import { freePorts } from './ports';
import { tlsFiles } from './tls-files';

export type { Env } from './env-schema';

/**
 * The embedded MinIO's admin (root) credentials: only `lth up` uses them, to create the bucket and the workers' user.
 * MinIO listens on 127.0.0.1 only, so these guard nothing real.
 */
export const DEV_S3_ACCESS_KEY = 'lthadmin';
export const DEV_S3_SECRET_KEY = 'lthadmin-secret';
/**
 * The least-privilege user that `lth up` creates and that workers and commands use: its one policy allows s3:* on
 * the stack's bucket and nothing else (no other bucket, no admin API). The secret is a documented constant, like
 * the admin's, so that resolveEndpoints() stays a pure function of the environment; that is acceptable because the
 * embedded MinIO listens on 127.0.0.1 only. The user limits what a worker (or a bug in one) can do, not who may
 * connect: on shared machines use external services (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY) with real secrets.
 */
export const DEV_S3_WORKER_ACCESS_KEY = 'lthworker';
export const DEV_S3_WORKER_SECRET_KEY = 'lthworker-secret';

/** Where the embedded stack lives and listens (stackOptionsFromEnv() reads them from LTH_*). */
export interface StackOptions {
  /** Folder holding the SQLite file, the MinIO data, logs and pid files. */
  home: string;
  temporalPort: number;
  uiPort: number;
  minioPort: number;
  consolePort: number;
  namespace: string;
  /** MinIO's admin (root) credentials: `lth up` only. */
  s3AccessKey: string;
  s3SecretKey: string;
  /** The workers' user, limited to `bucket` (and s3WorkerExtraBuckets): what embeddedEndpoints() hands out. */
  s3WorkerAccessKey: string;
  s3WorkerSecretKey: string;
  /** More buckets the workers' user may use, a trailing `*` matching a prefix (the test stack's `lth-test-*`). */
  s3WorkerExtraBuckets: readonly string[];
  bucket: string;
  /**
   * `lth up --tls` (LTH_TLS=1): MinIO serves https with the certificates of <home>/tls, and Temporal's port is a TLS
   * front requiring a client certificate (mTLS) before the dev server, which then listens on temporalPlainPort.
   */
  tls: boolean;
  /** With tls: where the dev server itself listens, plaintext, on 127.0.0.1 only. */
  temporalPlainPort: number;
}

export interface TemporalTlsPaths {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  /** The name to check the server's certificate against, when it is not the address's host. */
  serverName?: string;
}

/** What @temporalio's connections take for TLS: the files' bytes. */
export interface TemporalTlsOptions {
  clientCertPair?: { crt: Buffer; key: Buffer };
  serverRootCACertificate?: Buffer;
  serverNameOverride?: string;
}

/**
 * Reads the TLS files a Temporal connection needs (undefined without any); an unreadable file or a certificate
 * without its key is an Error naming the variable that set it.
 */
export function temporalTlsOptions(t: TemporalTlsPaths | undefined): TemporalTlsOptions | undefined {
  if (!t || (!t.certPath && !t.keyPath && !t.caPath && !t.serverName)) return undefined;
  if (Boolean(t.certPath) !== Boolean(t.keyPath))
    throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  const read = (file: string, variable: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(
        `${variable}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  };
  return {
    ...(t.certPath && t.keyPath
      ? {
          clientCertPair: {
            crt: read(t.certPath, 'TEMPORAL_TLS_CERT'),
            key: read(t.keyPath, 'TEMPORAL_TLS_KEY'),
          },
        }
      : {}),
    ...(t.caPath ? { serverRootCACertificate: read(t.caPath, 'TEMPORAL_TLS_CA') } : {}),
    ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
  };
}

export interface StackEndpoints {
  temporal: { address: string; namespace: string; uiUrl: string | null; tls?: TemporalTlsPaths };
  s3: {
    endpoint: string;
    accessKey: string;
    secretKey: string;
    bucket: string;
    consoleUrl: string | null;
    /** PEM certificate authority to trust for an https endpoint (S3_CA_FILE), besides the system's. */
    caFile?: string;
  };
  /** True when these are the services of the embedded stack (ours to start and stop). */
  embedded: boolean;
}

// ------------------------------------------------------------------------------- env ------

const port = portSchema;
const opt = optionalEnv;

const stackEnvSchema = z.object({
  LTH_HOME: opt(z.string()),
  LTH_TEMPORAL_PORT: opt(port),
  LTH_UI_PORT: opt(port),
  LTH_MINIO_PORT: opt(port),
  LTH_CONSOLE_PORT: opt(port),
  LTH_NAMESPACE: opt(z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')),
  LTH_BUCKET: opt(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')),
  LTH_TLS: opt(z.enum(['0', '1'], { error: '0 or 1' })),
  LTH_TEMPORAL_PLAIN_PORT: opt(port),
});

export function defaultStackOptions(): StackOptions {
  return {
    home: path.join(REPO_ROOT, '.data', 'stack'),
    temporalPort: 7233,
    uiPort: 8233,
    minioPort: 9000,
    consolePort: 9001,
    namespace: 'default',
    s3AccessKey: DEV_S3_ACCESS_KEY,
    s3SecretKey: DEV_S3_SECRET_KEY,
    s3WorkerAccessKey: DEV_S3_WORKER_ACCESS_KEY,
    s3WorkerSecretKey: DEV_S3_WORKER_SECRET_KEY,
    s3WorkerExtraBuckets: [],
    bucket: 'lth',
    tls: false,
    temporalPlainPort: 7234,
  };
}

/**
 * Options for a private embedded stack in `home` on ports free now (drawn below the ephemeral range, the TLS
 * front's plaintext port included), so that it never meets a developer's `lth up`: what tests and benches start.
 * `overrides` win; `env` is read as stackOptionsFromEnv reads it (default: none of the process's settings).
 */
export async function freeStackOptions(
  home: string,
  overrides: Partial<StackOptions> = {},
  env: Env = {},
): Promise<StackOptions> {
  const [temporalPort, uiPort, minioPort, consolePort, temporalPlainPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return stackOptionsFromEnv(env, {
    home,
    temporalPort,
    uiPort,
    minioPort,
    consolePort,
    temporalPlainPort,
    ...overrides,
  });
}

/**
 * Options of the embedded stack from LTH_HOME, LTH_TEMPORAL_PORT, LTH_UI_PORT, LTH_MINIO_PORT,
 * LTH_CONSOLE_PORT, LTH_NAMESPACE, LTH_BUCKET, LTH_TLS, LTH_TEMPORAL_PLAIN_PORT (default: the Temporal port + 1);
 * `overrides` (e.g. CLI flags) win over env.
 */
export function stackOptionsFromEnv(
  env: Env = process.env,
  overrides: Partial<StackOptions> = {},
): StackOptions {
  const e = parseEnv(stackEnvSchema, env);
  const d = defaultStackOptions();
  const o: StackOptions = {
    home: e.LTH_HOME ?? d.home,
    temporalPort: e.LTH_TEMPORAL_PORT ?? d.temporalPort,
    uiPort: e.LTH_UI_PORT ?? d.uiPort,
    minioPort: e.LTH_MINIO_PORT ?? d.minioPort,
    consolePort: e.LTH_CONSOLE_PORT ?? d.consolePort,
    namespace: e.LTH_NAMESPACE ?? d.namespace,
    s3AccessKey: d.s3AccessKey,
    s3SecretKey: d.s3SecretKey,
    s3WorkerAccessKey: d.s3WorkerAccessKey,
    s3WorkerSecretKey: d.s3WorkerSecretKey,
    s3WorkerExtraBuckets: d.s3WorkerExtraBuckets,
    bucket: e.LTH_BUCKET ?? d.bucket,
    tls: e.LTH_TLS === '1',
    temporalPlainPort: e.LTH_TEMPORAL_PLAIN_PORT ?? 0,
  };
  for (const [k, v] of Object.entries(overrides) as [
    keyof StackOptions,
    StackOptions[keyof StackOptions],
  ][]) {
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  o.home = path.resolve(o.home);
  // Follows the Temporal port unless set, so that `--temporal-port 7300 --tls` needs no second flag.
  if (o.temporalPlainPort === 0) o.temporalPlainPort = o.temporalPort + 1;
  const ports = [
    o.temporalPort,
    o.uiPort,
    o.minioPort,
    o.consolePort,
    ...(o.tls ? [o.temporalPlainPort] : []),
  ];
  if (new Set(ports).size !== ports.length) {
    throw new Error(
      `the stack's ports must differ: temporal ${o.temporalPort}, ui ${o.uiPort}, minio ${o.minioPort}, console ${o.consolePort}` +
        (o.tls ? `, temporal plaintext ${o.temporalPlainPort}` : ''),
    );
  }
  return o;
}

/** The environment variables (TEMPORAL_*, S3_*) that hand endpoints to a child process. */
export function endpointsToEnv(e: StackEndpoints): Record<string, string> {
  const out: Record<string, string> = {
    TEMPORAL_ADDRESS: e.temporal.address,
    TEMPORAL_NAMESPACE: e.temporal.namespace,
    S3_ENDPOINT: e.s3.endpoint,
    S3_ACCESS_KEY: e.s3.accessKey,
    S3_SECRET_KEY: e.s3.secretKey,
    S3_BUCKET: e.s3.bucket,
  };
  if (e.temporal.uiUrl) out.TEMPORAL_UI_URL = e.temporal.uiUrl;
  if (e.s3.consoleUrl) out.S3_CONSOLE_URL = e.s3.consoleUrl;
  if (e.s3.caFile) out.S3_CA_FILE = e.s3.caFile;
  if (e.temporal.tls?.certPath) out.TEMPORAL_TLS_CERT = e.temporal.tls.certPath;
  if (e.temporal.tls?.keyPath) out.TEMPORAL_TLS_KEY = e.temporal.tls.keyPath;
  if (e.temporal.tls?.caPath) out.TEMPORAL_TLS_CA = e.temporal.tls.caPath;
  if (e.temporal.tls?.serverName) out.TEMPORAL_TLS_SERVER_NAME = e.temporal.tls.serverName;
  // Lets a child (a test, a worker) know these are embedded services it may treat as disposable.
  if (e.embedded) out.LTH_STACK_EMBEDDED = '1';
  return out;
}

const externalEnvSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'expected host:port'),
  TEMPORAL_NAMESPACE: opt(z.string().min(1)),
  TEMPORAL_UI_URL: opt(z.url()),
  TEMPORAL_TLS_CERT: opt(z.string()),
  TEMPORAL_TLS_KEY: opt(z.string()),
  TEMPORAL_TLS_CA: opt(z.string()),
  TEMPORAL_TLS_SERVER_NAME: opt(z.string()),
  S3_ENDPOINT: z.url({ protocol: /^https?$/, error: 'expected an http(s):// URL' }),
  S3_ACCESS_KEY: z.string({ error: 'required when S3_ENDPOINT is set' }).min(1),
  S3_SECRET_KEY: z.string({ error: 'required when S3_ENDPOINT is set' }).min(1),
  S3_BUCKET: opt(z.string().min(3)),
  S3_CONSOLE_URL: opt(z.url()),
  S3_CA_FILE: opt(z.string()),
  LTH_STACK_EMBEDDED: opt(z.enum(['0', '1'])),
});

const profileEnvSchema = z.object({ LTH_PROFILE: opt(z.enum(['embedded', 'cluster'])) });

/**
 * Where the services are. LTH_PROFILE=cluster: the local cluster profile's (infra/cluster-options.ts). With TEMPORAL_ADDRESS and S3_ENDPOINT set (plus TEMPORAL_NAMESPACE,
 * S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET, TEMPORAL_TLS_CERT/KEY/CA) those are used;
 * with neither set, the embedded stack's addresses from stackOptionsFromEnv().
 * Setting only one of the two is refused rather than silently mixing worlds.
 */
export function resolveEndpoints(env: Env = process.env): StackEndpoints {
  const hasT = !!env.TEMPORAL_ADDRESS;
  const hasS = !!env.S3_ENDPOINT;
  if (hasT !== hasS) {
    const [set, unset] = hasT ? ['TEMPORAL_ADDRESS', 'S3_ENDPOINT'] : ['S3_ENDPOINT', 'TEMPORAL_ADDRESS'];
    throw new Error(
      `${set} is set but ${unset} is not: set both (external services) or neither (embedded stack from \`lth up\`)`,
    );
  }
  const profile = parseEnv(profileEnvSchema, env).LTH_PROFILE;
  if (profile === 'cluster' && hasT)
    throw new Error(
      'LTH_PROFILE=cluster names the local cluster profile; unset TEMPORAL_ADDRESS and S3_ENDPOINT',
    );
  if (profile === 'cluster') return clusterEndpoints(clusterOptionsFromEnv(env));
  if (!hasT) return embeddedEndpoints(stackOptionsFromEnv(env));
  const e = parseEnv(externalEnvSchema, env);
  const tls: TemporalTlsPaths = {};
  if (e.TEMPORAL_TLS_CERT) tls.certPath = e.TEMPORAL_TLS_CERT;
  if (e.TEMPORAL_TLS_KEY) tls.keyPath = e.TEMPORAL_TLS_KEY;
  if (e.TEMPORAL_TLS_CA) tls.caPath = e.TEMPORAL_TLS_CA;
  if (e.TEMPORAL_TLS_SERVER_NAME) tls.serverName = e.TEMPORAL_TLS_SERVER_NAME;
  if (!!tls.certPath !== !!tls.keyPath) {
    throw new Error(
      'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (mTLS client certificate and key)',
    );
  }
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE ?? 'default',
      uiUrl: e.TEMPORAL_UI_URL ?? null,
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
    },
    s3: {
      endpoint: e.S3_ENDPOINT.replace(/\/+$/, ''),
      accessKey: e.S3_ACCESS_KEY,
      secretKey: e.S3_SECRET_KEY,
      bucket: e.S3_BUCKET ?? 'lth',
      consoleUrl: e.S3_CONSOLE_URL ?? null,
      ...(e.S3_CA_FILE ? { caFile: e.S3_CA_FILE } : {}),
    },
    embedded: e.LTH_STACK_EMBEDDED === '1',
  };
}

/** What workers and commands use: the workers' user, never the admin (see embeddedAdminS3()). */
export function embeddedEndpoints(o: StackOptions): StackEndpoints {
  return loopbackEndpoints(o, true, o.tls ? tlsFiles(o.home) : null);
}

/** The embedded MinIO with its admin credentials: for `lth up` (bucket, workers' user) and nothing else. */
export function embeddedAdminS3(o: StackOptions): StackEndpoints['s3'] {
  return { ...embeddedEndpoints(o).s3, accessKey: o.s3AccessKey, secretKey: o.s3SecretKey };
}

/** A MinIO client for an S3 endpoint (path-style requests, TLS for https://, trusting e.caFile too). */
export async function s3Client(e: StackEndpoints['s3']) {
  const { Client } = await import('minio');
  const u = new URL(e.endpoint);
  const useSSL = u.protocol === 'https:';
  const ca = useSSL && e.caFile ? [...tls.rootCertificates, fs.readFileSync(e.caFile, 'utf8')] : undefined;
  return new Client({
    ...(ca ? { transportAgent: new https.Agent({ ca, keepAlive: true }) } : {}),
    endPoint: u.hostname,
    port: u.port ? Number(u.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey: e.accessKey,
    secretKey: e.secretKey,
    pathStyle: true,
  });
}

// -------------------------------------------------------------------- external check ------

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export interface EndpointCheck {
  temporal: { reachable: boolean; namespace: boolean; missingSearchAttributes: string[]; error?: string };
  s3: { reachable: boolean; bucket: boolean; error?: string };
}

/**
 * Checks that configured (typically external) services answer: Temporal's gRPC health,
 * the namespace and our search attributes; the S3 endpoint, credentials and bucket.
 * Never throws; the caller decides what is fatal.
 */
export async function checkEndpoints(e: StackEndpoints, timeoutMs = 10_000): Promise<EndpointCheck> {
  const out: EndpointCheck = {
    temporal: { reachable: false, namespace: false, missingSearchAttributes: [] },
    s3: { reachable: false, bucket: false },
  };
  const temporalCheck = async () => {
    const { Connection } = await import('@temporalio/client');
    let conn: Awaited<ReturnType<typeof Connection.connect>> | undefined;
    try {
      // Inside the try: a missing certificate is this check's finding, not a crash of the command running it.
      const tls = temporalTlsOptions(e.temporal.tls);
      conn = await Connection.connect({ address: e.temporal.address, tls, connectTimeout: timeoutMs });
      await conn.healthService.check({});
      out.temporal.reachable = true;
      await conn.workflowService.describeNamespace({ namespace: e.temporal.namespace });
      out.temporal.namespace = true;
      const sa = await conn.operatorService.listSearchAttributes({ namespace: e.temporal.namespace });
      const have = new Set(Object.keys(sa.customAttributes ?? {}));
      out.temporal.missingSearchAttributes = SEARCH_ATTRIBUTES.map((k) => k.name).filter((n) => !have.has(n));
    } catch (err) {
      out.temporal.error = errText(err);
    } finally {
      await conn?.close();
    }
  };
  const s3Check = async () => {
    let timer: NodeJS.Timeout | undefined;
    // A store that accepts connections and never answers must not hang `lth up`: the check gives up at the deadline.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${(timeoutMs / 1000).toFixed(0)} s`)),
        timeoutMs,
      );
    });
    try {
      const c = await s3Client(e.s3);
      const exists = await Promise.race([c.bucketExists(e.s3.bucket), deadline]);
      out.s3.reachable = true;
      out.s3.bucket = exists;
    } catch (err) {
      out.s3.error = errText(err);
    } finally {
      clearTimeout(timer);
    }
  };
  await Promise.all([temporalCheck(), s3Check()]);
  return out;
}
