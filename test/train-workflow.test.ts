// The first workflow end to end on the real Temporal server and MinIO: a small LeNet-300-100 run,
// its artifacts in the store, its progress query, its search attributes, and idempotent starts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

import { startOrAttachTrain } from '../client/runs';
import { temporalBinary } from '../infra/embedded-stack';
import { openStore } from '../workers/connection';
import { parseTrainSpec } from '../contract/train';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { type TrainStatus } from '../contract/train';
import { testEndpoints } from './support/env';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `wf${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const spec = parseTrainSpec({
  experiment: tag,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    iterations: 80,
    evalEvery: 40,
    seed: 3,
    trainLimit: 640,
    testLimit: 200,
  },
  checkpointEvery: 25,
});

test('trainWorkflow trains on the compute worker and publishes its artifacts', async () => {
  const run = await startOrAttachTrain(workers.client, spec);
  assert.equal(run.started, true);
  const result = await run.handle.result();

  assert.equal(result.steps, 80);
  assert.equal(result.reused, false);
  assert.ok(
    result.final.testAccuracy > 0.5,
    `test accuracy ${result.final.testAccuracy} should be far above chance`,
  );
  assert.deepEqual(
    result.evals.map((x) => x.step),
    [0, 40, 80],
  );
  assert.match(result.backend, /^wasm/);

  const store = openStore(e);
  const weights = await store.getTensors(result.weights.key, { expectSha256: result.weights.sha256 });
  assert.deepEqual(Object.keys(weights.tensors).sort(), [
    'fc1.bias',
    'fc1.weight',
    'fc2.bias',
    'fc2.weight',
    'fc3.bias',
    'fc3.weight',
  ]);
  assert.deepEqual(weights.tensors['fc1.weight']?.shape, [784, 300]);
  const manifest = await store.readManifest(result.manifestKey);
  assert.equal((manifest as { runId?: string }).runId, result.runId);
  // Checkpoints are scratch space: once the manifest is published they are removed.
  assert.deepEqual(await store.list(`runs/${result.runId}/checkpoints/`), []);

  const status = await run.handle.query<TrainStatus>('status');
  assert.equal(status.phase, 'done');
  assert.equal(status.result?.weights.sha256, result.weights.sha256);
  assert.equal(status.progress?.step, 80);

  // The history this run produced must replay against the current workflow code; with
  // LTH_RECORD_HISTORIES=1 it is also saved as a fixture for test/workflow-replay.test.ts.
  const history = await run.handle.fetchHistory();
  await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, run.workflowId);
  if (process.env.LTH_RECORD_HISTORIES === '1') {
    const json = execFileSync(temporalBinary(), [
      'workflow',
      'show',
      '--workflow-id',
      run.workflowId,
      '--address',
      e.temporal.address,
      '--namespace',
      e.temporal.namespace,
      '--output',
      'json',
    ]);
    fs.writeFileSync(path.join(__dirname, 'histories', 'train-workflow.json'), json);
  }

  const description = await run.handle.describe();
  const attrs = Object.fromEntries(
    description.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]),
  );
  assert.equal(attrs.Experiment, tag);
  assert.equal(attrs.Phase, 'done');
  assert.equal(attrs.RunKind, 'train');
  assert.equal(attrs.TestAccuracy, result.final.testAccuracy);
});

test('starting the same spec again attaches to the finished run', async () => {
  const again = await startOrAttachTrain(workers.client, spec);
  assert.equal(again.started, false);
  const first = await again.handle.result();
  const description = await again.handle.describe();
  assert.equal(description.status.name, 'COMPLETED');
  assert.equal(first.steps, 80);
});

test('a finished run whose weights were removed is only attached to, unless started again with rerun, which recomputes them to the same bytes', async () => {
  const store = openStore(e);
  const before = await (await startOrAttachTrain(workers.client, spec)).handle.result();
  await store.remove(before.weights.key);
  // Attached: the finished run answers with what it recorded, and nothing is recomputed.
  const attached = await startOrAttachTrain(workers.client, spec);
  assert.equal(attached.started, false);
  assert.equal(await store.exists(before.weights.key), false);

  const firstExecution = (await attached.handle.describe()).runId;
  const again = await startOrAttachTrain(workers.client, spec, { rerun: true });
  assert.equal(again.started, true);
  assert.notEqual(
    (await again.handle.describe()).runId,
    firstExecution,
    'a second execution under the same id',
  );
  const after = await again.handle.result();
  assert.equal(after.reused, false, 'the damaged run is trained again, not reused');
  assert.equal(after.weights.key, before.weights.key);
  assert.equal(after.weights.sha256, before.weights.sha256);
  await store.getTensors(after.weights.key, { expectSha256: before.weights.sha256 });
  // A rerun of an intact finished run reuses everything it stored.
  const intact = await (await startOrAttachTrain(workers.client, spec, { rerun: true })).handle.result();
  assert.equal(intact.reused, true);
  assert.equal(intact.weights.sha256, before.weights.sha256);
});

test('the same training under another experiment label reuses the stored artifacts', async () => {
  const relabelled = parseTrainSpec({ ...spec, experiment: `${tag}-copy` });
  const run = await startOrAttachTrain(workers.client, relabelled);
  assert.equal(run.started, true);
  const result = await run.handle.result();
  assert.equal(result.reused, true);
  const original = await startOrAttachTrain(workers.client, spec);
  assert.equal(result.weights.sha256, (await original.handle.result()).weights.sha256);
});

test('an invalid spec fails the workflow at once, without retries, naming the field', async () => {
  const handle = await workers.client.workflow.start('trainWorkflow', {
    args: [{ experiment: tag, train: { iterations: -5, batchSize: 'big' } }],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-invalid`,
  });
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause as { type?: string; message?: string; nonRetryable?: boolean } | undefined;
    assert.equal(cause?.type, 'SpecError');
    assert.match(cause?.message ?? '', /train\.iterations/);
    assert.match(cause?.message ?? '', /train\.batchSize/);
    return true;
  });
});
