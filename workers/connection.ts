// Connections to Temporal and the store, from the resolved endpoints (env or embedded stack).
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';

import {
  endpointsToEnv,
  resolveEndpoints,
  temporalTlsOptions,
  type StackEndpoints,
} from '../infra/endpoints';
import { ArtifactStore, s3ConfigFromEnv } from '../store';

export function endpoints(): StackEndpoints {
  return resolveEndpoints(process.env);
}

export async function connectClient(e: StackEndpoints = endpoints()): Promise<Client> {
  const connection = await Connection.connect({
    address: e.temporal.address,
    tls: temporalTlsOptions(e.temporal.tls),
  });
  return new Client({ connection, namespace: e.temporal.namespace });
}

export async function connectWorker(e: StackEndpoints = endpoints()): Promise<NativeConnection> {
  // Loaded here, not at the top: the worker SDK (bundler, native bridge) adds ~0.5 s to every CLI command.
  const { NativeConnection } = await import('@temporalio/worker');
  return NativeConnection.connect({ address: e.temporal.address, tls: temporalTlsOptions(e.temporal.tls) });
}

export function openStore(e: StackEndpoints = endpoints()): ArtifactStore {
  // One parser for S3 settings: the store's own, fed the resolved endpoints (region/CA from env).
  const cfg = s3ConfigFromEnv({ ...process.env, ...endpointsToEnv(e) });
  if (!cfg) throw new Error('no S3 endpoint resolved');
  return new ArtifactStore(cfg);
}
