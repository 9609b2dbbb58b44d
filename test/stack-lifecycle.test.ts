// The embedded stack's whole life on its own home and ports, independent of the stack that
// test/run.ts started for the other tests: up, reuse, status, a refused port, down.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { stackDown, stackStatus, stackUp, temporalBinary } from '../infra/embedded-stack';
import { freeStackOptions, type StackEndpoints, type StackOptions } from '../infra/endpoints';
import { isListening } from '../infra/ports';
import { freePorts } from './support/ports';

let tmp: string;
let opts: StackOptions;
let first: StackEndpoints;
let pids: { temporal: number; minio: number };

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-lifecycle-'));
  opts = await freeStackOptions(path.join(tmp, 'stack'));
});

after(async () => {
  // Also runs when a test failed half-way, so nothing outlives the file.
  await stackDown(opts, 5000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function pidOf(name: 'temporal' | 'minio'): number {
  const f = JSON.parse(fs.readFileSync(path.join(opts.home, `${name}.pid`), 'utf8')) as { pid: number };
  return f.pid;
}

/** Alive after a second's grace, which lets this process reap the child it just stopped. */
async function alive(pid: number): Promise<boolean> {
  for (let i = 0; i < 10; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

test('stackUp on a fresh home starts both services healthy, with search attributes and bucket', async () => {
  first = await stackUp(opts);
  assert.equal(first.embedded, true);
  assert.equal(first.temporal.address, `127.0.0.1:${opts.temporalPort}`);
  assert.equal(first.s3.endpoint, `http://127.0.0.1:${opts.minioPort}`);
  assert.equal(first.s3.bucket, 'lth');

  const live = await fetch(`${first.s3.endpoint}/minio/health/live`);
  assert.equal(live.status, 200);

  const health = execFileSync(
    temporalBinary(),
    ['operator', 'cluster', 'health', '--address', first.temporal.address],
    {
      encoding: 'utf8',
    },
  );
  assert.match(health, /SERVING/);

  const listed = JSON.parse(
    execFileSync(
      temporalBinary(),
      ['operator', 'search-attribute', 'list', '--address', first.temporal.address, '-o', 'json'],
      { encoding: 'utf8' },
    ),
  ) as { customAttributes?: Record<string, string> };
  const custom = listed.customAttributes ?? {};
  for (const { name, type } of SEARCH_ATTRIBUTES) {
    assert.equal(custom[name], `INDEXED_VALUE_TYPE_${type}`, `search attribute ${name}`);
  }

  const { Client } = await import('minio');
  const s3 = new Client({
    endPoint: '127.0.0.1',
    port: opts.minioPort,
    useSSL: false,
    accessKey: first.s3.accessKey,
    secretKey: first.s3.secretKey,
  });
  assert.equal(await s3.bucketExists(first.s3.bucket), true);

  pids = { temporal: pidOf('temporal'), minio: pidOf('minio') };
});

test('a second stackUp reuses the running services', async () => {
  const again = await stackUp(opts);
  assert.deepEqual(again, first);
  assert.deepEqual({ temporal: pidOf('temporal'), minio: pidOf('minio') }, pids);
});

test('stackStatus reports both running and healthy', async () => {
  const st = await stackStatus(opts);
  assert.equal(st.home, opts.home);
  for (const name of ['temporal', 'minio'] as const) {
    const s = st[name];
    assert.equal(s.running, true, `${name} running`);
    assert.equal(s.healthy, true, `${name} healthy`);
    assert.equal(s.pid, pids[name]);
    assert.equal(s.portTakenByOther, false);
  }
  assert.equal(st.temporal.address, `127.0.0.1:${opts.temporalPort}`);
  assert.equal(st.minio.address, `127.0.0.1:${opts.minioPort}`);
});

test('stackUp refuses a port held by another process and starts nothing', async () => {
  const other = await freeStackOptions(path.join(tmp, 'other'));
  const [t, m] = [other.temporalPort, other.minioPort];
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(m, '127.0.0.1', () => r()));
  try {
    await assert.rejects(stackUp(other), new RegExp(`port ${m} \\(MinIO S3 API\\) is already in use`));
    const st = await stackStatus(other);
    assert.equal(st.temporal.running, false);
    assert.equal(st.minio.running, false);
    assert.equal(st.minio.portTakenByOther, true);
    assert.equal(await isListening(t), false, 'the Temporal port stayed free');
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});

test('stackUp refuses other ports for a home whose stack already runs', async () => {
  const [t] = (await freePorts(1)) as [number];
  await assert.rejects(stackUp({ ...opts, temporalPort: t }), /already runs .* run `lth down` first/);
});

test('stackDown stops both and leaves nothing listening', async () => {
  const results = await stackDown(opts);
  assert.deepEqual(
    results.map((r) => [r.name, r.stopped, r.pid]),
    [
      ['temporal', true, pids.temporal],
      ['minio', true, pids.minio],
    ],
  );
  assert.equal(await alive(pids.temporal), false);
  assert.equal(await alive(pids.minio), false);
  for (const port of [opts.temporalPort, opts.uiPort, opts.minioPort, opts.consolePort]) {
    assert.equal(await isListening(port), false, `port ${port} is closed`);
  }
  assert.equal(fs.existsSync(path.join(opts.home, 'temporal.pid')), false);
  assert.equal(fs.existsSync(path.join(opts.home, 'minio.pid')), false);
  const st = await stackStatus(opts);
  assert.equal(st.temporal.running || st.minio.running, false);

  const again = await stackDown(opts);
  assert.deepEqual(
    again.map((r) => r.stopped),
    [false, false],
  );
});
