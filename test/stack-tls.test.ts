// `lth up --tls` end to end, on its own home and ports: MinIO over https and Temporal behind an mTLS front, both
// from the CA the stack makes; a training run through workers holding the client certificate; clients without a
// certificate, with one from another CA, or speaking plaintext, refused; the stack's TLS mode fixed while it runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

import { startOrAttachTrain } from '../client/runs';
import { parseTrainSpec } from '../contract/train';
import { stackDown, stackStatus, stackUp } from '../infra/embedded-stack';
import { freeStackOptions, endpointsToEnv, type StackEndpoints, type StackOptions } from '../infra/endpoints';
import { isListening, LOOPBACK } from '../infra/ports';
import { makeTlsMaterial } from '../infra/tls';
import { TLS_SERVER_NAME, tlsFiles } from '../infra/tls-files';
import { connectClient, openStore } from '../workers/connection';
import { spawnWorker } from '../workers/spawn';
import { tinyLenetTrain } from './support/specs';
import { startTestWorkers } from './support/workers';

let tmp: string;
let opts: StackOptions;
let e: StackEndpoints;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-tls-'));
  opts = await freeStackOptions(path.join(tmp, 'stack'), { tls: true });
  e = await stackUp(opts);
});

after(async () => {
  await stackDown(opts, 5000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const refusals = () =>
  fs
    .readFileSync(path.join(opts.home, 'tls-front.log'), 'utf8')
    .split('\n')
    .filter((l) => / refused /.test(l));

/** The front's refusal lines after the first `seen`, once there is one (another process writes them, a moment later). */
async function newRefusals(seen: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (refusals().length <= seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return refusals().slice(seen).join('\n');
}

/** Status code of a GET, or the error's code (e.g. a certificate the client does not trust). */
function get(url: string, o: https.RequestOptions = {}): Promise<number | string> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { ...o, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

test('lth up --tls hands out https and mTLS endpoints from the CA it made, and shows the front in status', async () => {
  const f = tlsFiles(opts.home);
  assert.equal(e.s3.endpoint, `https://${LOOPBACK}:${opts.minioPort}`);
  assert.equal(e.s3.caFile, f.caCert);
  assert.deepEqual(e.temporal.tls, {
    certPath: f.clientCert,
    keyPath: f.clientKey,
    caPath: f.caCert,
    serverName: TLS_SERVER_NAME,
  });
  const st = await stackStatus(opts);
  assert.ok(st.tlsFront?.running && st.tlsFront.healthy, JSON.stringify(st.tlsFront));
  assert.ok(st.minio.healthy && st.temporal.healthy);
});

test('a training run goes through workers and a client that hold the stack certificate', async () => {
  const workers = await startTestWorkers(e);
  try {
    const spec = parseTrainSpec({
      experiment: `tls${Date.now().toString(36)}`,
      train: tinyLenetTrain(1, { iterations: 30, evalEvery: 30 }),
      checkpointEvery: 10,
    });
    const run = await startOrAttachTrain(workers.client, spec);
    const result = await run.handle.result();
    assert.equal(result.steps, 30);
    // Read back over https and checked against the checksum recorded at the write.
    const ref = await openStore(e).verify(result.weights.key);
    assert.equal(ref.sha256, result.weights.sha256);
  } finally {
    await workers.stop();
  }
});

// What the refused client reads (an alert, a closed connection, a broken pipe) and whether the front sees the
// refusal before the client hangs up depend on timing under load; the refusal itself does not.
test('Temporal refuses a worker or client without a client certificate', async () => {
  const ca = fs.readFileSync(tlsFiles(opts.home).caCert);
  await assert.rejects(
    NativeConnection.connect({
      address: e.temporal.address,
      tls: { serverRootCACertificate: ca, serverNameOverride: TLS_SERVER_NAME },
    }),
  );
  const noCert = {
    ...e,
    temporal: { ...e.temporal, tls: { caPath: tlsFiles(opts.home).caCert, serverName: TLS_SERVER_NAME } },
  };
  await assert.rejects(connectClient(noCert, { timeoutMs: 3000 }), /cannot reach Temporal/);
});

test('a worker started without the client certificate stops on the refusal, saying that mTLS requires one', async () => {
  const env = endpointsToEnv(e);
  delete env.TEMPORAL_TLS_CERT;
  delete env.TEMPORAL_TLS_KEY;
  const w = spawnWorker('light', { env: { ...env, LTH_WORKER_CONNECT_WAIT_S: '30' } });
  let output = '';
  w.child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const code = await w.exited;
  assert.notEqual(code, 0);
  // It stops on the refusal, not at the end of its 30 s wait. (Under load a first try can see the front close the
  // connection before the refusal's alert arrives, which reads as unreachable and is retried once.)
  assert.match(output, /requires a client certificate \(mTLS\).*LTH_TLS=1.*TEMPORAL_TLS_CERT/);
  assert.doesNotMatch(output, /waited \d+ s over/, 'the worker gave up on waiting instead of on the refusal');
});

test('Temporal refuses a client certificate from another CA, and a plaintext client (logging why)', async () => {
  const other = await makeTlsMaterial();
  await assert.rejects(
    NativeConnection.connect({
      address: e.temporal.address,
      tls: {
        serverRootCACertificate: fs.readFileSync(tlsFiles(opts.home).caCert),
        serverNameOverride: TLS_SERVER_NAME,
        clientCertPair: { crt: Buffer.from(other.clientCert), key: Buffer.from(other.clientKey) },
      },
    }),
  );
  const seen = refusals().length;
  const plain = {
    ...e,
    temporal: { address: e.temporal.address, namespace: e.temporal.namespace, uiUrl: null },
  };
  await assert.rejects(connectClient(plain, { timeoutMs: 3000 }), /cannot reach Temporal.*needs LTH_TLS=1/);
  assert.match(await newRefusals(seen), /refused .*not a TLS client .*LTH_TLS=1/);
  // The client that does hold the certificate still gets through (the refusals did not take the front down).
  const c = await Connection.connect({
    address: e.temporal.address,
    tls: {
      serverRootCACertificate: fs.readFileSync(tlsFiles(opts.home).caCert),
      serverNameOverride: TLS_SERVER_NAME,
      clientCertPair: {
        crt: fs.readFileSync(tlsFiles(opts.home).clientCert),
        key: fs.readFileSync(tlsFiles(opts.home).clientKey),
      },
    },
  });
  await c.healthService.check({});
  await c.close();
});

test('MinIO speaks only https, with a certificate that only the stack CA vouches for', async () => {
  const live = `/minio/health/live`;
  assert.equal(
    await get(`https://${LOOPBACK}:${opts.minioPort}${live}`, {
      ca: fs.readFileSync(e.s3.caFile as string),
      servername: TLS_SERVER_NAME,
    }),
    200,
  );
  // Plain http to the TLS port: MinIO answers 400 ("an HTTP request to an HTTPS server"), never the API.
  assert.equal(await get(`http://${LOOPBACK}:${opts.minioPort}${live}`), 400);
  // Without the stack's CA the certificate is not trusted.
  const untrusted = await get(`https://${LOOPBACK}:${opts.minioPort}${live}`);
  assert.match(String(untrusted), /CERT|SIGNED|VERIFY/);
  // The store refuses the same way when it is not given the CA.
  const withoutCa = { ...e.s3 };
  delete withoutCa.caFile;
  const store = openStore({ ...e, s3: withoutCa });
  await assert.rejects(store.list('runs/'), /certificate|self.signed|CERT/i);
});

test('a running TLS stack is not brought up without TLS, and lth down stops its front too', async () => {
  await assert.rejects(stackUp({ ...opts, tls: false }), /runs with TLS: run `lth down` first, or add --tls/);
  assert.ok(await isListening(opts.temporalPort), 'the refused up left the stack running');
  const stopped = await stackDown(opts, 5000);
  assert.deepEqual(stopped.map((r) => r.name).sort(), ['minio', 'temporal', 'tls-front']);
  assert.equal(await isListening(opts.temporalPort), false);
  assert.equal(await isListening(opts.temporalPlainPort), false);
});
