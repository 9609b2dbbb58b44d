/**
 * The store's own retries: a request that failed on a transient network fault (refused, reset, timed out, cut
 * short, a 5xx or "slow down" answer) is sent again with exponential backoff and jitter, a bounded number of
 * times and within a bounded time; then a StoreUnavailableError names the endpoint, the request and the last
 * cause. Every request the store makes is idempotent (a PUT of the same bytes, GET, HEAD, LIST, DELETE), so sending
 * one again is safe.
 *
 * Guarantees:
 * - an error marked nonRetryable (integrity, not found, usage, configuration) is never retried here;
 * - at most `attempts` tries, and no new try starts once `budgetMs` has passed since the first, so a request
 *   fails after at most budgetMs + one try (a try is bounded by connectTimeoutMs to connect and idleTimeoutMs of
 *   silence on a connected socket);
 * - every retry is reported through `log` with the endpoint, the request, the cause and the delay.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';

import { isNonRetryable } from './errors.js';

export interface StoreRetryPolicy {
  /** Tries per request, the first included (1 = no retry). */
  attempts: number;
  /** Delay before the first retry; each further one doubles, up to maxDelayMs; each is jittered to 50–100 %. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry starts later than this after the first try. */
  budgetMs: number;
  /** A connection not established within this fails the try. */
  connectTimeoutMs: number;
  /** A connected socket silent for this long (no byte either way) fails the try. */
  idleTimeoutMs: number;
}

export const DEFAULT_STORE_RETRY: StoreRetryPolicy = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  budgetMs: 8_000,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 20_000,
};

/** The store cannot be used right now: it did not answer, or kept failing, through all tries. Transient. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';

  constructor(
    readonly endpoint: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Socket and HTTP faults that a new try may not meet. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTCONN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** S3 error codes of a server that is busy, starting or failing internally, or of a body damaged on the way. */
const TRANSIENT_S3_CODES = new Set([
  'IncompleteBody',
  'BadDigest',
  'XAmzContentSHA256Mismatch',
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'XMinioServerNotInitialized',
]);

export function isTransient(err: unknown): boolean {
  if (err === null || typeof err !== 'object' || isNonRetryable(err)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || TRANSIENT_S3_CODES.has(code))) return true;
  // Node's happy-eyeballs connect reports every address tried in one AggregateError.
  if (err instanceof AggregateError && err.errors.some(isTransient)) return true;
  const message = err instanceof Error ? err.message : '';
  // minio-js's own message after a 5xx it retried once; ours for a body cut short; Node's for a dropped socket.
  return /socket hang up|Retryable HTTP status|^short read of |^aborted$/i.test(message);
}

/** A short cause for logs and errors: the code and message, without a stack. */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeError(err.errors[0]);
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/** The delay before retry `n` (1 = the first retry): base·2^(n-1), capped, then jittered to 50–100 %. */
export function backoffDelay(n: number, p: StoreRetryPolicy, random: () => number = Math.random): number {
  const d = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (n - 1));
  return Math.round(d / 2 + (random() * d) / 2);
}

export interface RetryContext {
  policy: StoreRetryPolicy;
  /** scheme://host:port, for messages. */
  endpoint: string;
  bucket: string;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `fn` (the request `what`, e.g. "GET 'runs/x'"), tried again on transient faults as the policy allows. */
export async function withRetries<T>(what: string, ctx: RetryContext, fn: () => Promise<T>): Promise<T> {
  const { policy } = ctx;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      const elapsed = Date.now() - started;
      const delay = backoffDelay(attempt, policy);
      if (attempt >= policy.attempts || elapsed + delay > policy.budgetMs) {
        throw new StoreUnavailableError(
          ctx.endpoint,
          `S3 store at ${ctx.endpoint} (bucket '${ctx.bucket}') is unavailable: ${what} failed ${attempt} time${
            attempt === 1 ? '' : 's'
          } in ${(elapsed / 1000).toFixed(1)} s; last error: ${describeError(err)}`,
          { cause: err },
        );
      }
      ctx.log(
        `S3 store at ${ctx.endpoint}: ${what} failed (${describeError(err)}); try ${attempt + 1} of ${
          policy.attempts
        } in ${(delay / 1000).toFixed(2)} s`,
      );
      await sleep(delay);
    }
  }
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}

/** Bounds a new socket's connect and its silences: a hung server fails the request instead of stalling it. */
function guardSocket(socket: net.Socket, p: StoreRetryPolicy, endpoint: string): net.Socket {
  const connectTimer = setTimeout(() => {
    socket.destroy(timeoutError(`no connection to ${endpoint} within ${p.connectTimeoutMs} ms`));
  }, p.connectTimeoutMs);
  const connected = () => {
    clearTimeout(connectTimer);
    socket.setTimeout(p.idleTimeoutMs);
  };
  if (socket.connecting === false) connected();
  else socket.once('connect', connected);
  socket.once('close', () => clearTimeout(connectTimer));
  socket.on('timeout', () => {
    // A socket idle in the agent's pool times out too; destroying it then is harmless (the agent drops it).
    socket.destroy(timeoutError(`${endpoint} sent nothing for ${p.idleTimeoutMs} ms`));
  });
  return socket;
}

type CreateConnection = (
  options: object,
  callback?: (err: Error | null, socket: net.Socket) => void,
) => net.Socket;

/** A keep-alive agent whose sockets carry the policy's connect and idle timeouts. */
export function guardedAgent(
  p: StoreRetryPolicy,
  endpoint: string,
  tls: { useSSL: boolean; ca?: Buffer },
): http.Agent {
  const agent = tls.useSSL
    ? new https.Agent({ keepAlive: true, ...(tls.ca ? { ca: tls.ca } : {}) })
    : new http.Agent({ keepAlive: true });
  const a = agent as unknown as { createConnection: CreateConnection };
  const create = a.createConnection.bind(agent);
  a.createConnection = (options, callback) => guardSocket(create(options, callback), p, endpoint);
  return agent;
}
