import { z } from 'zod';
import { S3ConfigError } from './errors.js';
import type { StoreRetryPolicy } from './retry.js';

export interface S3Config {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region?: string;
  caFile?: string;
  /** Overrides of DEFAULT_STORE_RETRY (store/retry.ts), from the LTH_S3_* variables. */
  retry?: Partial<StoreRetryPolicy>;
}

export const DEFAULT_BUCKET = 'lth';

// A variable set to the empty string is treated as unset: that is how shells and
// compose files usually "clear" a variable.
const optionalVar = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());
const requiredVar = (name: string) =>
  z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.string({
      error: (iss) => (iss.input === undefined ? `${name} is required when S3_ENDPOINT is set` : undefined),
    }),
  );

// A number from a variable: unset or empty is undefined, anything else must parse.
const optionalNumber = (schema: z.ZodNumber) =>
  z.preprocess((v) => (v === '' || v === undefined ? undefined : Number(v)), schema.optional());

// S3 bucket naming rules, so a bad name fails here with the variable named rather than
// on the first request with an opaque InvalidBucketName.
const BUCKET_RE = /^(?!xn--)(?!.*-s3alias$)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

interface Endpoint {
  host: string;
  port: number;
  useSSL: boolean;
}

// Parsed inside the object schema (not after it) so that a bad endpoint and a missing
// key are reported together rather than one per attempt.
const endpointSchema = z.string().transform((raw, ctx): Endpoint => {
  const fail = (message: string): typeof z.NEVER => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`must be a URL such as http://127.0.0.1:9000, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return fail(`scheme must be http or https, got ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password)
    return fail('must not embed credentials; use S3_ACCESS_KEY and S3_SECRET_KEY');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    return fail(
      `must be scheme://host[:port] only (the bucket comes from S3_BUCKET), got ${JSON.stringify(raw)}`,
    );
  }
  const useSSL = url.protocol === 'https:';
  return {
    // The URL parser keeps IPv6 brackets; the minio client wants the bare address.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
  };
});

const envSchema = z
  .object({
    S3_ENDPOINT: endpointSchema,
    S3_ACCESS_KEY: requiredVar('S3_ACCESS_KEY'),
    S3_SECRET_KEY: requiredVar('S3_SECRET_KEY'),
    S3_BUCKET: optionalVar.pipe(
      z
        .string()
        .regex(
          BUCKET_RE,
          'must be a valid S3 bucket name (3-63 characters: lowercase letters, digits, dots, hyphens)',
        )
        .refine((b) => !b.includes('..'), 'must not contain ".."')
        .default(DEFAULT_BUCKET),
    ),
    S3_REGION: optionalVar,
    S3_CA_FILE: optionalVar,
    LTH_S3_ATTEMPTS: optionalNumber(z.number().int().min(1).max(100)),
    LTH_S3_BACKOFF_MS: optionalNumber(z.number().int().min(0)),
    LTH_S3_RETRY_BUDGET_S: optionalNumber(z.number().min(0)),
    LTH_S3_CONNECT_TIMEOUT_S: optionalNumber(z.number().positive()),
    LTH_S3_TIMEOUT_S: optionalNumber(z.number().positive()),
    LTH_S3_ANSWER_TIMEOUT_S: optionalNumber(z.number().positive()),
  })
  .transform((env, ctx): S3Config => {
    if (env.S3_CA_FILE !== undefined && !env.S3_ENDPOINT.useSSL) {
      ctx.addIssue({
        code: 'custom',
        path: ['S3_CA_FILE'],
        message: 'is set but S3_ENDPOINT uses http, so it would be ignored',
      });
      return z.NEVER;
    }
    const cfg: S3Config = {
      endPoint: env.S3_ENDPOINT.host,
      port: env.S3_ENDPOINT.port,
      useSSL: env.S3_ENDPOINT.useSSL,
      accessKey: env.S3_ACCESS_KEY,
      secretKey: env.S3_SECRET_KEY,
      bucket: env.S3_BUCKET,
    };
    if (env.S3_REGION !== undefined) cfg.region = env.S3_REGION;
    if (env.S3_CA_FILE !== undefined) cfg.caFile = env.S3_CA_FILE;
    const retry: Partial<StoreRetryPolicy> = {};
    if (env.LTH_S3_ATTEMPTS !== undefined) retry.attempts = env.LTH_S3_ATTEMPTS;
    if (env.LTH_S3_BACKOFF_MS !== undefined) retry.baseDelayMs = env.LTH_S3_BACKOFF_MS;
    if (env.LTH_S3_RETRY_BUDGET_S !== undefined) retry.budgetMs = env.LTH_S3_RETRY_BUDGET_S * 1000;
    if (env.LTH_S3_CONNECT_TIMEOUT_S !== undefined)
      retry.connectTimeoutMs = env.LTH_S3_CONNECT_TIMEOUT_S * 1000;
    if (env.LTH_S3_TIMEOUT_S !== undefined) retry.idleTimeoutMs = env.LTH_S3_TIMEOUT_S * 1000;
    if (env.LTH_S3_ANSWER_TIMEOUT_S !== undefined) retry.answerTimeoutMs = env.LTH_S3_ANSWER_TIMEOUT_S * 1000;
    if (Object.keys(retry).length > 0) cfg.retry = retry;
    return cfg;
  });

/**
 * The S3 configuration from the environment, or null when S3_ENDPOINT is unset (the
 * caller then starts or finds the embedded MinIO). Throws S3ConfigError naming each
 * offending variable. Secrets never appear in error messages.
 */
export function s3ConfigFromEnv(env: Record<string, string | undefined> = process.env): S3Config | null {
  if (env.S3_ENDPOINT === undefined || env.S3_ENDPOINT === '') return null;
  const r = envSchema.safeParse({
    S3_ENDPOINT: env.S3_ENDPOINT,
    S3_ACCESS_KEY: env.S3_ACCESS_KEY,
    S3_SECRET_KEY: env.S3_SECRET_KEY,
    S3_BUCKET: env.S3_BUCKET,
    S3_REGION: env.S3_REGION,
    S3_CA_FILE: env.S3_CA_FILE,
    LTH_S3_ATTEMPTS: env.LTH_S3_ATTEMPTS,
    LTH_S3_BACKOFF_MS: env.LTH_S3_BACKOFF_MS,
    LTH_S3_RETRY_BUDGET_S: env.LTH_S3_RETRY_BUDGET_S,
    LTH_S3_CONNECT_TIMEOUT_S: env.LTH_S3_CONNECT_TIMEOUT_S,
    LTH_S3_TIMEOUT_S: env.LTH_S3_TIMEOUT_S,
    LTH_S3_ANSWER_TIMEOUT_S: env.LTH_S3_ANSWER_TIMEOUT_S,
  });
  if (!r.success) {
    const problems = r.error.issues.map((i) => {
      const v = String(i.path[0] ?? 'S3 environment');
      return i.message.startsWith(v) ? i.message : `${v} ${i.message}`;
    });
    throw new S3ConfigError(`invalid S3 configuration: ${problems.join('; ')}`);
  }
  return r.data;
}
