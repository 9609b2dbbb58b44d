// A run whose store never comes back fails with the cause instead of retrying for ever: the compute worker reaches
// MinIO through test/support/flaky-proxy.ts, switched to resetting every connection once the workers are up, with
// short store retries and LTH_STORE_GIVE_UP_ATTEMPTS=3. The training's third attempt in a row that finds the store
// unavailable fails non-retryably; the workflow fails, and what `lth` prints names the endpoint and the next step.
// That step works: with the store back, the same start runs the training to its end. The bound on the wait tells
// "fails" from "retries for ever"; it is no timing assertion.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

import { startOrAttachTrain } from '../client/runs';
import { cliErrorText } from '../cli/failure-text';
import { parseTrainSpec } from '../contract/train';
import { testEndpoints } from './support/env';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy-process';
import { tinyLenetTrain } from './support/specs';
import { startTestWorkers, type TestWorkers } from './support/workers';

const e = testEndpoints();
const LIMIT = 3;
let proxy: FlakyProxy;
let workers: TestWorkers;

before(async () => {
  const u = new URL(e.s3.endpoint);
  proxy = await startFlakyProxy(u.hostname, Number(u.port), 5);
  workers = await startTestWorkers(e, {
    S3_ENDPOINT: `http://${proxy.address}`,
    LTH_STORE_GIVE_UP_ATTEMPTS: String(LIMIT),
    // Each attempt gives up on the store in about a second.
    LTH_S3_ATTEMPTS: '2',
    LTH_S3_BACKOFF_MS: '100',
    LTH_S3_RETRY_BUDGET_S: '1',
    LTH_S3_CONNECT_TIMEOUT_S: '1',
    LTH_S3_ANSWER_TIMEOUT_S: '1',
  });
});

after(async () => {
  await workers?.stop();
  proxy?.stop();
});

/** The innermost ApplicationFailure of a failed workflow: the error the activity failed with. */
function activityError(err: unknown): ApplicationFailure | null {
  let found: ApplicationFailure | null = null;
  for (let c: unknown = err; c instanceof Error; c = c.cause)
    if (c instanceof ApplicationFailure) found ??= c;
  return found;
}

test('a store that never comes back fails the run after LTH_STORE_GIVE_UP_ATTEMPTS attempts, naming it; back, the same start completes', async (t) => {
  const spec = parseTrainSpec({
    experiment: `giveup${Date.now().toString(36)}`,
    train: tinyLenetTrain(29, { iterations: 20, evalEvery: 10 }),
    checkpointEvery: 10,
  });
  const endpoint = `http://${proxy.address}`;
  await proxy.set('down');
  const started = Date.now();
  const run = await startOrAttachTrain(workers.client, spec);
  // Three attempts with the activities' backoff (2 s, 4 s) take about 10 s; 120 s only tells "fails" from "hangs".
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    run.handle.result().then(
      () => 'completed' as const,
      (err: unknown) => err,
    ),
    new Promise<'hangs'>((resolve) => {
      timer = setTimeout(() => resolve('hangs'), 120_000);
    }),
  ]).finally(() => clearTimeout(timer));
  t.diagnostic(`the run failed after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.notEqual(outcome, 'hangs', 'the run still retries after 120 s');
  assert.ok(outcome instanceof WorkflowFailedError, `expected the run to fail, got ${String(outcome)}`);

  const cause = activityError(outcome);
  assert.ok(cause, 'no activity error in the failure');
  assert.equal(cause.type, 'StoreUnavailableError');
  assert.equal(cause.nonRetryable, true);
  assert.match(cause.message, new RegExp(`^S3 store at ${endpoint} \\(bucket '[^']+'\\) is unavailable: `));
  assert.match(
    cause.message,
    new RegExp(`giving up: ${LIMIT} attempts in a row found the store unavailable`),
  );
  assert.deepEqual(cause.details?.[0], {
    endpoint,
    unavailableAttempts: LIMIT,
    next: `check that the S3 store at ${endpoint} is up and reachable from the compute workers (S3_ENDPOINT), then run the same command again: it resumes from the last stored checkpoint`,
  });

  // What `lth` prints for it: the chain down to the store's error, and the next step naming the endpoint.
  const text = cliErrorText(outcome);
  t.diagnostic(text);
  assert.match(text, /^lth: the workflow failed$|^lth: workflow \S+ failed$/m);
  assert.match(text, /^ {2}because activity train failed$/m);
  assert.ok(text.includes(`because StoreUnavailableError: S3 store at ${endpoint}`), text);
  assert.match(text, new RegExp(`^next: check that the S3 store at ${endpoint} is up`, 'm'));

  await proxy.set('pass');
  const again = await startOrAttachTrain(workers.client, spec);
  assert.equal(again.started, true, 'the failed run is started afresh');
  const result = await again.handle.result();
  assert.equal(result.steps, 20);
});
