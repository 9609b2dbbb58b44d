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
 * - a request without a large body (GET, HEAD, DELETE, LIST, a PUT of at most SMALL_BODY_BYTES) must also get its
 *   answer (the response's headers) within answerTimeoutMs of having a connection: a healthy store answers those
 *   in milliseconds, so a silent store is noticed in seconds; a large upload keeps only the idle timeout, as its
 *   bytes may take long to drain on a slow link, and a large download's body is bounded by the idle timeout too;
 * - a try that timed out (the store said nothing) is retried only if the next try, timing out the same way, would
 *   still end within the budget: a store that accepts connections and never answers is reported within about
 *   budgetMs (two tries of answerTimeoutMs by default), not budgetMs + one more silent try;
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
  /** A request without a large body that has no answer this long after getting a connection fails the try. */
  answerTimeoutMs: number;
}

/** The largest request body still answered quickly by a healthy store (JSON records, manifests, metrics). */
export const SMALL_BODY_BYTES = 64 * 1024;

export const DEFAULT_STORE_RETRY: StoreRetryPolicy = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  budgetMs: 8_000,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 20_000,
  // Long enough for a busy store on a loaded machine (a false timeout only costs a retry), short enough for two
  // tries within the 8 s budget, so that `lth` names a silent store within 10 s.
  answerTimeoutMs: 3_000,
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
    const tryStarted = Date.now();
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err)) throw err;
      const now = Date.now();
      const elapsed = now - started;
      const delay = backoffDelay(attempt, policy);
      // A silent store takes as long again on the next try: start it only if it can end within the budget.
      const next = isOwnTimeout(err) ? now - tryStarted : 0;
      if (attempt >= policy.attempts || elapsed + delay + next > policy.budgetMs) {
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

const OWN_TIMEOUT = Symbol('lth.storeTimeout');

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT', [OWN_TIMEOUT]: true });
}

/** A try this module cut short because the store said nothing in time (connect, answer or idle timeout). */
function isOwnTimeout(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[OWN_TIMEOUT] === true;
}

/** Whether the request's answer is bounded by answerTimeoutMs: no body, or one small enough to be sent at once. */
export function answersQuickly(method: string | undefined, contentLength: unknown): boolean {
  const m = (method ?? 'GET').toUpperCase();
  if (m === 'GET' || m === 'HEAD' || m === 'DELETE' || m === 'OPTIONS') return true;
  // A streamed body of unknown length may be large.
  const n = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  return contentLength !== undefined && Number.isFinite(n) && n <= SMALL_BODY_BYTES;
}

/** Bounds the time from a request having a connection to its answer's headers, for requests answered quickly. */
function guardAnswer(req: http.ClientRequest, p: StoreRetryPolicy, endpoint: string): void {
  if (!answersQuickly(req.method, req.getHeader('content-length'))) return;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer = setTimeout(() => {
      req.destroy(timeoutError(`${endpoint} did not answer ${req.method} within ${p.answerTimeoutMs} ms`));
    }, p.answerTimeoutMs);
  };
  // Counted from the connection, so that a slow connect stays connectTimeoutMs's business; over TLS the handshake
  // is part of the answer (a silent server does not complete it).
  req.once('socket', (socket: net.Socket) => {
    if (socket.connecting) socket.once('connect', arm);
    else arm();
  });
  const done = () => clearTimeout(timer);
  req.once('response', done);
  req.once('close', done);
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
// Node's Agent receives every request it serves through addRequest (not in the typings, stable since Node 0.x): the
// one place an agent sees a request, so the answer bound needs no change to how minio-js sends requests.
type AddRequest = (req: http.ClientRequest, options: object) => void;

/** A keep-alive agent whose sockets carry the policy's connect and idle timeouts, and requests its answer timeout. */
export function guardedAgent(
  p: StoreRetryPolicy,
  endpoint: string,
  tls: { useSSL: boolean; ca?: Buffer },
): http.Agent {
  const agent = tls.useSSL
    ? new https.Agent({ keepAlive: true, ...(tls.ca ? { ca: tls.ca } : {}) })
    : new http.Agent({ keepAlive: true });
  const a = agent as unknown as { createConnection: CreateConnection; addRequest: AddRequest };
  const create = a.createConnection.bind(agent);
  a.createConnection = (options, callback) => guardSocket(create(options, callback), p, endpoint);
  const add = a.addRequest.bind(agent);
  a.addRequest = (req, options) => {
    guardAnswer(req, p, endpoint);
    add(req, options);
  };
  return agent;
}
