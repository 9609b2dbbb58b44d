// The store through a slow, resetting network (test/support/flaky-proxy.ts in front of the test's MinIO): its
// requests are retried with backoff and every operation comes back right; a store that stays unreachable (reset or
// silent) fails the operation with a StoreUnavailableError naming the endpoint within a bounded time, not a hang.
// The bounds asserted are loose on purpose (a loaded machine must not fail them): they tell "fails in seconds"
// from "hangs".
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import * as Minio from 'minio';

import {
  ArtifactStore,
  isTransient,
  StoreUnavailableError,
  type NamedTensors,
  type StoreRetryPolicy,
} from '../store/index.js';
import { answersQuickly, backoffDelay, DEFAULT_STORE_RETRY, SMALL_BODY_BYTES } from '../store/retry.js';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy-process.js';
import { dropBucket, NO_S3, rawClient, s3, uniqueBucket } from './support/s3.js';

if (!s3) throw new Error(NO_S3);
const cfg = s3;
const bucket = uniqueBucket('unreliable');
let proxy: FlakyProxy;
let client: Minio.Client;
let endpoint: string;

/** A store through the proxy, with this retry policy, its retry lines collected. */
function storeVia(retry: Partial<StoreRetryPolicy> = {}): { store: ArtifactStore; lines: string[] } {
  const lines: string[] = [];
  const store = new ArtifactStore(
    { ...cfg, endPoint: '127.0.0.1', port: proxy.port, bucket, retry },
    { log: (l) => lines.push(l) },
  );
  return { store, lines };
}

before(async () => {
  proxy = await startFlakyProxy(cfg.endPoint, cfg.port, 7);
  endpoint = `http://127.0.0.1:${proxy.port}`;
  client = rawClient(cfg);
});

after(async () => {
  proxy.stop();
  await dropBucket(client, bucket);
});

function tensors(i: number, n: number): NamedTensors {
  const w = new Float32Array(n);
  for (let j = 0; j < n; j++) w[j] = Math.sin(i * 1000 + j);
  return { w: { dtype: 'float32', shape: [n], data: w } };
}

test('backoff doubles from the base, is capped, and is jittered to 50-100 %', () => {
  const p = DEFAULT_STORE_RETRY;
  assert.equal(
    backoffDelay(1, p, () => 0),
    p.baseDelayMs / 2,
  );
  assert.equal(
    backoffDelay(1, p, () => 1),
    p.baseDelayMs,
  );
  assert.equal(
    backoffDelay(3, p, () => 1),
    p.baseDelayMs * 4,
  );
  assert.equal(
    backoffDelay(30, p, () => 1),
    p.maxDelayMs,
  );
  assert.equal(isTransient(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true);
  assert.equal(isTransient(Object.assign(new Error('x'), { nonRetryable: true, code: 'ECONNRESET' })), false);
  assert.equal(isTransient(new Error('access denied')), false);
});

test('requests without a large body must be answered quickly; large or streamed uploads are exempt', () => {
  for (const m of ['GET', 'HEAD', 'DELETE']) assert.equal(answersQuickly(m, undefined), true, m);
  assert.equal(answersQuickly('PUT', String(SMALL_BODY_BYTES)), true);
  assert.equal(answersQuickly('PUT', 0), true);
  assert.equal(answersQuickly('POST', '120'), true);
  assert.equal(answersQuickly('PUT', String(SMALL_BODY_BYTES + 1)), false);
  assert.equal(answersQuickly('PUT', undefined), false);
  assert.equal(answersQuickly('POST', 'chunked'), false);
});

test('putTensors, getTensors, list and publishManifest survive a proxy that delays and resets connections', async () => {
  // Generous tries so that a run of bad draws cannot exhaust them; the defaults are tested below.
  const { store, lines } = storeVia({ attempts: 12, baseDelayMs: 20, budgetMs: 60_000 });
  await store.ensureBucket();
  await proxy.set('flaky 0.35 15');
  const refs = [];
  for (let i = 0; i < 12; i++) {
    // Sizes from 0.4 to 400 KB, so that resets land in headers and in bodies.
    const n = i % 3 === 0 ? 100_000 : 100 + i * 37;
    const ref = await store.putTensors(`flaky/t${String(i).padStart(2, '0')}.safetensors`, tensors(i, n));
    const back = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
    assert.deepEqual(back.tensors, tensors(i, n));
    refs.push(ref);
  }
  const listed = await store.list('flaky/');
  assert.deepEqual(
    listed.map((o) => o.key),
    refs.map((r) => r.key),
  );
  const m = await store.publishManifest('flaky/manifest.json', {
    entries: refs,
    note: 'through a flaky proxy',
  });
  const read = await store.readManifest(m.key, { expectSha256: m.sha256 });
  assert.deepEqual(read.entries, refs);
  await proxy.set('pass');
  // The faults did happen (35 % of connections reset), and each retry was logged with the endpoint.
  assert.ok(lines.length > 0, 'no request was retried: the proxy injected no fault');
  for (const l of lines)
    assert.match(l, new RegExp(`^S3 store at ${endpoint}: .* failed .*; try \\d+ of 12 in`));
});

test('a store that resets every connection fails with StoreUnavailableError naming it, in seconds', async () => {
  const { store, lines } = storeVia(); // the default policy
  await proxy.set('down');
  try {
    const started = Date.now();
    const err = await store.putJson('down/x.json', { a: 1 }).then(
      () => assert.fail('the write succeeded through a proxy that resets everything'),
      (e: unknown) => e,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
    assert.match(
      err.message,
      new RegExp(`^S3 store at ${endpoint} \\(bucket '${bucket}'\\) is unavailable: `),
    );
    assert.match(err.message, /failed \d+ times in [\d.]+ s; last error: /);
    assert.equal(err.endpoint, endpoint);
    // The default policy stops starting tries after 8 s; 15 s leaves room for a loaded machine.
    assert.ok(seconds < 15, `took ${seconds} s`);
    assert.equal(lines.length, DEFAULT_STORE_RETRY.attempts - 1, lines.join('\n'));
  } finally {
    await proxy.set('pass');
  }
});

test('a store that accepts connections and never answers fails after the idle timeout, not never', async () => {
  const { store } = storeVia({ idleTimeoutMs: 1000, attempts: 2, baseDelayMs: 100 });
  await store.ensureBucket();
  await proxy.set('silent');
  try {
    const started = Date.now();
    const err = await store.getBytes('silent/none').then(
      () => assert.fail('a read through a silent proxy returned'),
      (e: unknown) => e,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
    assert.match(err.message, new RegExp(`^S3 store at ${endpoint} .*sent nothing for 1000 ms`));
    // At least one try waited out the 1 s of silence (the other may meet the pooled connection the proxy closed);
    // 15 s is far from a hang and from a slow machine.
    assert.ok(seconds >= 0.9 && seconds < 15, `took ${seconds} s`);
  } finally {
    await proxy.set('pass');
  }
});

test('a silent store is reported within the retry budget with the default policy (the target: 10 s through lth)', async () => {
  const { store } = storeVia(); // the default policy
  await store.ensureBucket();
  await proxy.set('silent');
  try {
    const started = Date.now();
    const err = await store.stat('silent/none').then(
      () => assert.fail('a HEAD through a silent proxy returned'),
      (e: unknown) => e,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.ok(err instanceof StoreUnavailableError, `expected StoreUnavailableError, got ${String(err)}`);
    assert.match(
      err.message,
      new RegExp(
        `^S3 store at ${endpoint} .*did not answer \\w+ within ${DEFAULT_STORE_RETRY.answerTimeoutMs} ms`,
      ),
    );
    // Not the 20 s idle timeout, nor a further silent try after the budget; 15 s leaves room for a loaded machine.
    assert.ok(seconds < 15, `took ${seconds} s`);
  } finally {
    await proxy.set('pass');
  }
});

test('through a silent store, a small request fails on the answer timeout, a large upload only on the idle one', async () => {
  // A large body may take long to drain on a slow link, so only silence ends it; here the proxy reads nothing, the
  // socket's buffers fill and then nothing moves. 3 tries: the first may meet the pooled connection the proxy closed.
  const { store } = storeVia({ answerTimeoutMs: 300, idleTimeoutMs: 1500, attempts: 3, baseDelayMs: 50 });
  await store.ensureBucket();
  await proxy.set('silent');
  try {
    const fail = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('a write through a silent proxy returned'),
        (e: unknown) => e,
      );
    const small = await fail(store.putJson('silent/small.json', { a: 1 }));
    assert.ok(small instanceof StoreUnavailableError, String(small));
    assert.match(small.message, /PUT 'silent\/small.json' failed .*did not answer PUT within 300 ms/);
    const large = await fail(store.putTensors('silent/large.safetensors', tensors(5, 500_000)));
    assert.ok(large instanceof StoreUnavailableError, String(large));
    assert.match(large.message, /PUT 'silent\/large.safetensors' failed .*sent nothing for 1500 ms/);
  } finally {
    await proxy.set('pass');
  }
});
