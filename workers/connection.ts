// Connections to Temporal and the store, from the resolved endpoints (env or embedded stack).
import fs from 'node:fs';

import { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';

import { endpointsToEnv, resolveEndpoints, type StackEndpoints } from '../infra/endpoints';
import { ArtifactStore, s3ConfigFromEnv } from '../store';

interface TlsFiles {
  TEMPORAL_TLS_CERT?: string;
  TEMPORAL_TLS_KEY?: string;
  TEMPORAL_TLS_CA?: string;
}

function temporalTls(env: TlsFiles = process.env) {
  const { TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca } = env;
  if (!cert && !key && !ca) return undefined;
  if ((cert && !key) || (key && !cert))
    throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  return {
    ...(cert && key ? { clientCertPair: { crt: fs.readFileSync(cert), key: fs.readFileSync(key) } } : {}),
    ...(ca ? { serverRootCACertificate: fs.readFileSync(ca) } : {}),
  };
}

export function endpoints(): StackEndpoints {
  return resolveEndpoints(process.env);
}

export async function connectClient(e: StackEndpoints = endpoints()): Promise<Client> {
  const connection = await Connection.connect({ address: e.temporal.address, tls: temporalTls() });
  return new Client({ connection, namespace: e.temporal.namespace });
}

export async function connectWorker(e: StackEndpoints = endpoints()): Promise<NativeConnection> {
  // Loaded here, not at the top: the worker SDK (bundler, native bridge) adds ~0.5 s to every CLI command.
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect({ address: e.temporal.address, tls: temporalTls() });
}

export function openStore(e: StackEndpoints = endpoints()): ArtifactStore {
  // One parser for S3 settings: the store's own, fed the resolved endpoints (region/CA from env).
  const cfg = s3ConfigFromEnv({ ...process.env, ...endpointsToEnv(e) });
  if (!cfg) throw new Error('no S3 endpoint resolved');
  return new ArtifactStore(cfg);
}
