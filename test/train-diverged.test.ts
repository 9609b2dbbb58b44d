// A diverged run (loss NaN) is an outcome, not an error: it is published like any run, its NaN and infinite values
// stored as strings in metrics.json and the manifest (JSON has no NaN) and read back as numbers, and running the
// same spec again reuses it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { z } from 'zod';

import { readTrainRun } from '../activities/run-records';
import { startOrAttachTrain } from '../client/runs';
import { trainRunId } from '../contract/ids';
import { jsonSafe, storedNumber } from '../contract/stored-numbers';
import { parseTrainSpec } from '../contract/train';
import { runMetricsKey } from '../store';
import { openStore } from '../workers/connection';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

test('non-finite numbers are written as strings and read back as numbers', () => {
  assert.deepEqual(jsonSafe({ a: [1, NaN, { b: -Infinity }], c: 'x', d: Infinity }), {
    a: [1, 'NaN', { b: '-Infinity' }],
    c: 'x',
    d: 'Infinity',
  });
  assert.ok(Number.isNaN(storedNumber.parse('NaN')));
  assert.equal(storedNumber.parse('-Infinity'), -Infinity);
  assert.equal(storedNumber.parse(2.5), 2.5);
  assert.throws(() => storedNumber.parse('2.5'));
});

const e = testEndpoints();
const workers = useTestWorkers(e);

test('a run that diverges is published, read back with its NaN loss, and reused', async () => {
  const spec = parseTrainSpec({
    experiment: `diverge${Date.now().toString(36)}`,
    train: {
      ...tinyLenetTrain(51, { iterations: 20, evalEvery: 10 }),
      optimizer: { kind: 'sgd', lr: 1e6, momentum: 0.9 },
    },
    checkpointEvery: 10,
  });
  const first = await (await startOrAttachTrain(workers.client, spec)).handle.result();
  assert.equal(first.reused, false);
  const store = openStore(e);
  const runId = trainRunId(spec.train);
  const record = await readTrainRun(store, runId);
  assert.ok(record, 'published');
  assert.ok(!Number.isFinite(record.final.trainLoss), `train loss ${record.final.trainLoss}`);
  const metrics = await store.getJson(
    runMetricsKey(runId),
    z.object({ final: z.object({ trainLoss: z.unknown() }) }),
  );
  assert.equal(typeof metrics.final.trainLoss, 'string');
  // Another experiment label, the same training: the stored run is reused, not trained again.
  const again = await (
    await startOrAttachTrain(workers.client, { ...spec, experiment: `${spec.experiment}b` })
  ).handle.result();
  assert.equal(again.reused, true);
});
