// How an activity's failure on an unavailable store reaches Temporal (activities/failures.ts, store-give-up.ts),
// without services: below LTH_STORE_GIVE_UP_ATTEMPTS attempts in a row it stays retryable and carries the count;
// at the limit it is non-retryable, names the endpoint and says what to do, and `lth` prints that. The count read
// back from Temporal is exercised on the real services by test/store-gives-up.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';

import { toActivityFailure } from '../activities/failures';
import {
  DEFAULT_STORE_GIVE_UP_ATTEMPTS,
  storeGiveUpAttemptsFromEnv,
  storeNext,
  storeUnavailableIn,
  unavailableAttemptsOf,
} from '../activities/store-give-up';
import { cliErrorText } from '../cli/failure-text';
import { IntegrityError, StoreUnavailableError } from '../store';

const endpoint = 'http://store.example:9000';
const unavailable = () =>
  new StoreUnavailableError(
    endpoint,
    `S3 store at ${endpoint} (bucket 'lth') is unavailable: PUT 'runs/r/ckpt' failed 5 times in 8.1 s; last error: connect ECONNREFUSED`,
    { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) },
  );

test('LTH_STORE_GIVE_UP_ATTEMPTS: a whole number from 1 to 1000, default 8; a bad value is refused by name', () => {
  assert.equal(storeGiveUpAttemptsFromEnv({}), DEFAULT_STORE_GIVE_UP_ATTEMPTS);
  assert.equal(
    storeGiveUpAttemptsFromEnv({ LTH_STORE_GIVE_UP_ATTEMPTS: '' }),
    DEFAULT_STORE_GIVE_UP_ATTEMPTS,
  );
  assert.equal(storeGiveUpAttemptsFromEnv({ LTH_STORE_GIVE_UP_ATTEMPTS: '3' }), 3);
  for (const bad of ['0', '-1', '2.5', 'many', '1001'])
    assert.throws(
      () => storeGiveUpAttemptsFromEnv({ LTH_STORE_GIVE_UP_ATTEMPTS: bad }),
      new RegExp(`^Error: LTH_STORE_GIVE_UP_ATTEMPTS="${bad}": must be a whole number`),
    );
});

test('below the limit a store failure stays retryable, unchanged in its message, and carries the count', () => {
  const f = toActivityFailure(unavailable(), { inARow: 2, limit: 3 });
  assert.ok(f instanceof ApplicationFailure);
  assert.equal(f.type, 'StoreUnavailableError');
  assert.equal(f.nonRetryable, false);
  assert.equal(f.message, unavailable().message);
  assert.deepEqual(f.details, [{ endpoint, unavailableAttempts: 2 }]);
  assert.equal(unavailableAttemptsOf(f.details?.[0]), 2);
  assert.match(String(f.cause?.message), /ECONNREFUSED/);
});

test('at the limit it is non-retryable, names the endpoint and the count, and says what to do', () => {
  const f = toActivityFailure(unavailable(), { inARow: 3, limit: 3 });
  assert.ok(f instanceof ApplicationFailure);
  assert.equal(f.nonRetryable, true);
  assert.match(f.message, new RegExp(`^S3 store at ${endpoint} \\(bucket 'lth'\\) is unavailable: `));
  assert.match(
    f.message,
    /; giving up: 3 attempts in a row found the store unavailable \(LTH_STORE_GIVE_UP_ATTEMPTS=3\)$/,
  );
  assert.deepEqual(f.details, [{ endpoint, unavailableAttempts: 3, next: storeNext(endpoint) }]);

  // What `lth` prints when the run fails with it.
  const activity = new ActivityFailure(
    'Activity task failed',
    'train',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    f,
  );
  const text = cliErrorText(
    new WorkflowFailedError('Workflow execution failed', activity, RetryState.NON_RETRYABLE_FAILURE),
  );
  assert.deepEqual(text.trimEnd().split('\n'), [
    'lth: the workflow failed',
    '  because activity train failed',
    `  because StoreUnavailableError: ${f.message}`,
    '  because connect ECONNREFUSED',
    `next: check that the S3 store at ${endpoint} is up and reachable from the compute workers (S3_ENDPOINT), then run the same command again: it resumes from the last stored checkpoint`,
  ]);
});

test('only a store failure is counted: found as a cause too, never under a decided (non-retryable) error', () => {
  const wrapped = new Error('writing the checkpoint failed', { cause: unavailable() });
  assert.ok(storeUnavailableIn(wrapped) instanceof StoreUnavailableError);
  const decided = Object.assign(new Error('bad', { cause: unavailable() }), { nonRetryable: true });
  assert.equal(storeUnavailableIn(decided), null);
  assert.equal(storeUnavailableIn(new IntegrityError('k', 'a', 'b', 'mismatch')), null);
  assert.equal(storeUnavailableIn(new Error('connect ECONNREFUSED')), null);
  // Without a count (the wrapper always gives one) the error passes as it was: retryable.
  const plain = unavailable();
  assert.equal(toActivityFailure(plain), plain);
  assert.equal(unavailableAttemptsOf({ key: 'x' }), null);
  assert.equal(unavailableAttemptsOf(null), null);
});
