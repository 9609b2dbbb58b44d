// A training whose store goes away (test/support/flaky-proxy.ts between the compute worker and MinIO, switched to
// resetting every connection): the activity's attempt fails within a bounded time with a cause naming the store's
// endpoint (visible as the pending activity's last failure), not a hang; the activity's retry policy then takes
// over, and once the store is back (slow and resetting some connections) the run completes. Time bounds are loose
// on purpose: they tell "fails in seconds" from "hangs" on a loaded machine.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startOrAttachTrain } from '../client/runs';
import { parseTrainSpec } from '../contract/train';
import { testEndpoints } from './support/env';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy-process';
import { tinyLenetTrain } from './support/specs';
import { startTestWorkers, type TestWorkers } from './support/workers';

const e = testEndpoints();
let proxy: FlakyProxy;
let workers: TestWorkers;

before(async () => {
  const u = new URL(e.s3.endpoint);
  proxy = await startFlakyProxy(u.hostname, Number(u.port), 11);
  workers = await startTestWorkers(e, { S3_ENDPOINT: `http://${proxy.address}` });
});

after(async () => {
  await workers?.stop();
  proxy?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('store unreachable: the training attempt fails naming the store endpoint; back (flaky): the run completes', async () => {
  const spec = parseTrainSpec({
    experiment: `unreach${Date.now().toString(36)}`,
    train: tinyLenetTrain(23, { iterations: 40, evalEvery: 20 }),
    checkpointEvery: 10,
  });
  await proxy.set('down');
  const started = Date.now();
  const run = await startOrAttachTrain(workers.client, spec);
  let failure: string | undefined;
  // The store gives up after its retry budget (8 s by default); 45 s covers task pick-up on a loaded machine.
  while (Date.now() - started < 45_000) {
    const d = await run.handle.describe();
    const pending = d.raw.pendingActivities ?? [];
    failure = pending.map((a) => a.lastFailure?.message ?? '').find((m) => m !== '');
    if (failure) break;
    await sleep(500);
  }
  const seconds = (Date.now() - started) / 1000;
  assert.ok(failure, `no activity failure within ${seconds} s: the attempt hangs`);
  assert.match(
    failure,
    new RegExp(`^S3 store at http://${proxy.address} \\(bucket '[^']+'\\) is unavailable: `),
  );

  await proxy.set('flaky 0.2 10');
  const result = await run.handle.result();
  assert.equal(result.steps, 40);
});
