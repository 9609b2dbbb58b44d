// Connections to Temporal and the store, from the resolved endpoints (env or embedded stack).
//
// Guarantees:
// - connectClient / connectWorker fail within LTH_CONNECT_TIMEOUT_S (default 5 s) with a ServiceUnreachableError
//   naming the service and its address (at once when nothing listens there: a TCP probe goes first);
// - waitForService (what the workers use at startup) tries again with a visible "waiting for ... (attempt n)"
//   line per failed try, for up to LTH_WORKER_CONNECT_WAIT_S (default 60 s; 0 fails at the first), then fails
//   the same way; errors that no wait fixes (bad TLS files, refused credentials) fail at once.
import net from 'node:net';

import { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { z } from 'zod';

import {
  endpointsToEnv,
  resolveEndpoints,
  temporalTlsOptions,
  type StackEndpoints,
} from '../infra/endpoints';
import { optionalEnv, parseEnv } from '../infra/env-schema';
import { ArtifactStore, s3ConfigFromEnv, StoreUnavailableError, type StoreOptions } from '../store';

export function endpoints(): StackEndpoints {
  return resolveEndpoints(process.env);
}

/** A service could not be reached at its address in the time allowed. */
export class ServiceUnreachableError extends Error {
  override readonly name = 'ServiceUnreachableError';

  constructor(
    readonly service: string,
    readonly address: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${service} at ${address}: ${detail}`, options);
  }
}

/** Temporal demands a client certificate (mTLS) that this process did not present. */
export class CertificateRequiredError extends Error {
  override readonly name = 'CertificateRequiredError';

  constructor(
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Temporal at ${address} requires a client certificate (mTLS) and refused this process's handshake: set ` +
        'LTH_TLS=1 for a stack started with `lth up --tls`, or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY ' +
        '(and TEMPORAL_TLS_CA for a private CA) for other servers',
      options,
    );
  }
}

const connectEnvSchema = z.object({
  LTH_CONNECT_TIMEOUT_S: optionalEnv(z.coerce.number().positive()),
  LTH_WORKER_CONNECT_WAIT_S: optionalEnv(z.coerce.number().min(0)),
});

/** How long one connection attempt may take (LTH_CONNECT_TIMEOUT_S, default 5 s). */
export function connectTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  return (parseEnv(connectEnvSchema, env).LTH_CONNECT_TIMEOUT_S ?? 5) * 1000;
}

/** How long a starting worker waits for its services (LTH_WORKER_CONNECT_WAIT_S, default 60 s). */
export function workerConnectWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  return (parseEnv(connectEnvSchema, env).LTH_WORKER_CONNECT_WAIT_S ?? 60) * 1000;
}

const NET_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name does not resolve (yet)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
};

function netText(err: unknown): string {
  const e = err instanceof AggregateError && err.errors.length > 0 ? (err.errors[0] as unknown) : err;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NET_TEXT[code]) return NET_TEXT[code];
  return e instanceof Error ? e.message : String(e);
}

function hostPort(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (!m) throw new Error(`not a host:port address: ${address}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** Resolves once a TCP connection to `address` opens; rejects with a short cause otherwise, within `ms`. */
function probeTcp(address: string, ms: number): Promise<void> {
  const { host, port } = hostPort(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => done(new Error(`no TCP connection within ${(ms / 1000).toFixed(0)} s`)),
      ms,
    );
    socket.once('connect', () => done());
    socket.once('error', (err) => done(new Error(netText(err))));
  });
}

function temporalHint(e: StackEndpoints): string {
  const hint = e.embedded
    ? 'is the stack up? (`lth up` starts it; `lth status` shows it)'
    : 'check TEMPORAL_ADDRESS and that the server runs';
  // A server that wants a client certificate may just close the connection, which reads like this.
  return e.temporal.tls?.certPath
    ? hint
    : `${hint}; a server requiring client certificates (\`lth up --tls\`) needs LTH_TLS=1, or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY`;
}

/** `p`, or a rejection after `ms`; a late success is handed to `dispose`. */
function withDeadline<T>(p: Promise<T>, ms: number, onLate: (v: T) => void): Promise<T> {
  let timedOut = false;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`no answer within ${(ms / 1000).toFixed(0)} s`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        if (timedOut) onLate(v);
        else resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Checks that something listens at Temporal's address, then opens the connection; either step failing or
 * overrunning `timeoutMs` is a ServiceUnreachableError naming the address.
 */
async function connectTemporal<T>(
  e: StackEndpoints,
  timeoutMs: number,
  open: (remainingMs: number) => Promise<T>,
  close: (v: T) => void,
): Promise<T> {
  const address = e.temporal.address;
  const started = Date.now();
  try {
    await probeTcp(address, timeoutMs);
  } catch (err) {
    throw new ServiceUnreachableError('Temporal', address, `${(err as Error).message}; ${temporalHint(e)}`, {
      cause: err,
    });
  }
  const remaining = Math.max(1000, timeoutMs - (Date.now() - started));
  try {
    return await withDeadline(open(remaining), remaining, close);
  } catch (err) {
    // Refused for want of a certificate: no wait fixes that, so not a ServiceUnreachableError.
    if (/CertificateRequired|certificate required/i.test(netText(err)))
      throw new CertificateRequiredError(address, { cause: err });
    throw new ServiceUnreachableError(
      'Temporal',
      address,
      `it accepts connections but did not complete a Temporal handshake within ${(timeoutMs / 1000).toFixed(0)} s (${netText(err)}); ${temporalHint(e)}`,
      { cause: err },
    );
  }
}

/** A client connection; fails within `timeoutMs` (LTH_CONNECT_TIMEOUT_S) naming the address. */
export async function connectClient(
  e: StackEndpoints = endpoints(),
  opts: { timeoutMs?: number } = {},
): Promise<Client> {
  // Outside the deadline: unreadable TLS files are a configuration error, reported as such.
  const tls = temporalTlsOptions(e.temporal.tls);
  const connection = await connectTemporal(
    e,
    opts.timeoutMs ?? connectTimeoutMs(),
    (ms) => Connection.connect({ address: e.temporal.address, tls, connectTimeout: ms }),
    (c) => void c.close(),
  );
  return new Client({ connection, namespace: e.temporal.namespace });
}

/** A worker connection; fails within `timeoutMs` (LTH_CONNECT_TIMEOUT_S) naming the address. */
export async function connectWorker(
  e: StackEndpoints = endpoints(),
  opts: { timeoutMs?: number } = {},
): Promise<NativeConnection> {
  // Loaded here, not at the top: the worker SDK (bundler, native bridge) adds ~0.5 s to every CLI command.
  const { NativeConnection } = await import('@temporalio/worker');
  const tls = temporalTlsOptions(e.temporal.tls);
  return connectTemporal(
    e,
    opts.timeoutMs ?? connectTimeoutMs(),
    () => NativeConnection.connect({ address: e.temporal.address, tls }),
    (c) => void c.close(),
  );
}

export function openStore(e: StackEndpoints = endpoints(), opts: StoreOptions = {}): ArtifactStore {
  // One parser for S3 settings: the store's own, fed the resolved endpoints (region/CA from env).
  const cfg = s3ConfigFromEnv({ ...process.env, ...endpointsToEnv(e) });
  if (!cfg) throw new Error('no S3 endpoint resolved');
  return new ArtifactStore(cfg, opts);
}

/** Errors a wait may fix: the service not (yet) reachable. */
function worthWaiting(err: unknown): boolean {
  return err instanceof ServiceUnreachableError || err instanceof StoreUnavailableError;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `attempt()`, tried again while it fails with the service unreachable: a "waiting for SERVICE at ADDRESS
 * (attempt n)" line per failure, delays of 1, 2, 4, 5, 5... s, for up to `waitMs`; then its last error, with the
 * time waited added. Other errors are thrown at once.
 */
export async function waitForService<T>(
  service: string,
  address: string,
  attempt: () => Promise<T>,
  log: (line: string) => void,
  waitMs: number = workerConnectWaitMs(),
): Promise<T> {
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!worthWaiting(err)) throw err;
      const elapsed = Date.now() - started;
      const delay = Math.min(5000, 1000 * 2 ** (n - 1));
      if (elapsed + delay > waitMs) {
        if (waitMs === 0) throw err;
        (err as Error).message +=
          ` (waited ${(elapsed / 1000).toFixed(0)} s over ${n} attempts; LTH_WORKER_CONNECT_WAIT_S=${waitMs / 1000})`;
        throw err;
      }
      log(
        `waiting for ${service} at ${address} (attempt ${n} failed: ${(err as Error).message}); next in ${delay / 1000} s, giving up after ${waitMs / 1000} s (LTH_WORKER_CONNECT_WAIT_S)`,
      );
      await sleep(delay);
    }
  }
}

/** What a worker prints when it stops on an error: the message alone for an unreachable service, else the stack. */
export function fatalText(err: unknown): string {
  if (worthWaiting(err) || err instanceof CertificateRequiredError) return (err as Error).message;
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
