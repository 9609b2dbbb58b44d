// `lth up --profile cluster --tls` (run by `npm run test:cluster`, not by `.ci/run`: the server build takes ~10 min):
// the Temporal server terminates TLS itself and requires client certificates, MinIO (erasure-coded) serves https,
// the UI server and the workers hold the client certificate; a training run goes through; the server refuses a
// client without a certificate or speaking plaintext; a running cluster does not change TLS mode.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { NativeConnection } from '@temporalio/worker';

import { startOrAttachTrain } from '../client/runs';
import { parseTrainSpec } from '../contract/train';
import { clusterEndpoints, type ClusterOptions } from '../infra/cluster-options';
import { clusterDown, clusterStatus, clusterUp, freeClusterOptions } from '../infra/cluster-stack';
import type { StackEndpoints } from '../infra/endpoints';
import { TLS_SERVER_NAME, tlsFiles } from '../infra/tls-files';
import { connectClient, openStore } from '../workers/connection';
import { tinyLenetTrain } from './support/specs';

let tmp: string;
let o: ClusterOptions;
let e: StackEndpoints;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cluster-tls-'));
  // PostgreSQL runs as the postgres user when the test runs as root: it must be able to reach its data folder.
  fs.chmodSync(tmp, 0o755);
  o = await freeClusterOptions(path.join(tmp, 'cluster'), { computeWorkers: 1, tls: true });
  e = await clusterUp(o, (line) => process.stderr.write(`[cluster] ${line}\n`), {
    workerEnv: { LTH_BACKEND: 'wasm' },
  });
});

after(async () => {
  await clusterDown(o, 10_000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('the cluster hands out mTLS and https endpoints, and every service is healthy over them', async () => {
  assert.equal(e.temporal.tls?.certPath, tlsFiles(o.home).clientCert);
  assert.match(e.s3.endpoint, /^https:/);
  const st = await clusterStatus(o);
  for (const svc of st.services) assert.ok(svc.healthy, `${svc.name} is not healthy`);
  // The UI server reaches the frontend with the client certificate: its API lists the namespace's workflows.
  const ui = await fetch(`${e.temporal.uiUrl ?? ''}/api/v1/namespaces/${o.namespace}/workflows`);
  assert.equal(ui.status, 200);
});

test('a training run goes through the cluster workers over mTLS, its weights through https', async () => {
  const client = await connectClient(e);
  try {
    const spec = parseTrainSpec({
      experiment: `cltls${Date.now().toString(36)}`,
      train: tinyLenetTrain(2, { iterations: 30, evalEvery: 30 }),
      checkpointEvery: 10,
    });
    const result = await (await startOrAttachTrain(client, spec)).handle.result();
    const ref = await openStore(e).verify(result.weights.key);
    assert.equal(ref.sha256, result.weights.sha256);
  } finally {
    await client.connection.close();
  }
});

test('the Temporal server itself refuses a client without a certificate, and a plaintext one', async () => {
  const ca = fs.readFileSync(tlsFiles(o.home).caCert);
  await assert.rejects(
    NativeConnection.connect({
      address: e.temporal.address,
      tls: { serverRootCACertificate: ca, serverNameOverride: TLS_SERVER_NAME },
    }),
  );
  await assert.rejects(NativeConnection.connect({ address: e.temporal.address }));
  const plain = { ...e, temporal: { address: e.temporal.address, namespace: o.namespace, uiUrl: null } };
  await assert.rejects(connectClient(plain, { timeoutMs: 3000 }), /needs LTH_TLS=1/);
});

test('a running TLS cluster is not brought up without TLS', async () => {
  await assert.rejects(clusterUp({ ...o, tls: false }), /runs with TLS: run `lth down --profile cluster`/);
  assert.deepEqual(clusterEndpoints(o), e);
});
