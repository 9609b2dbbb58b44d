// Teacher-logit precompute end to end on the real Temporal server and MinIO: a tiny trained teacher, its logits
// in content-addressed shards with the manifest last, read back through LogitReader against the teacher run
// in-process; an identical rerun does no teacher work; a corrupted shard is detected and only it is recomputed.
// The first run's history replays, and is saved to test/histories/ with LTH_RECORD_HISTORIES=1.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

import { startOrAttachTrain } from '../client/runs';
import { endpointsToEnv } from '../infra/endpoints';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { predictLogits } from '../ml/infer';
import { LogitReader, s3ConfigFromEnv } from '../store';
import { openStore } from '../workers/connection';
import { precomputeLogitsWorkflow } from '../workflows/logits';
import { augmentationLabel, parsePrecomputeSpec } from '../contract/precompute';
import { parseTrainSpec } from '../contract/train';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { testEndpoints } from './support/env';
import { useTestWorkers } from './support/workers';
import { rawClient } from './support/s3';

const e = testEndpoints();
const tag = `lg${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const teacherTrain = {
  model: 'lenet-300-100' as const,
  dataset: 'mnist' as const,
  optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9 },
  batchSize: 32,
  iterations: 40,
  evalEvery: 40,
  seed: 9,
  trainLimit: 320,
  testLimit: 100,
};

async function precompute(spec: ReturnType<typeof parsePrecomputeSpec>, id: string) {
  return workers.client.workflow.execute(precomputeLogitsWorkflow, {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-${id}`,
  });
}

test('logits of a trained teacher are precomputed into shards, reused on rerun, and repaired when corrupt', async () => {
  const trained = await startOrAttachTrain(
    workers.client,
    parseTrainSpec({ experiment: tag, train: teacherTrain }),
  );
  const run = await trained.handle.result();

  const spec = parsePrecomputeSpec({
    experiment: tag,
    teacher: { name: 'tiny-lenet', train: teacherTrain },
    split: 'test',
    limit: 250,
    augmentation: { policy: 'random-shift', seed: 3 },
    format: 'float32',
    shardSize: 100,
  });
  const first = await precompute(spec, 'first');
  assert.equal(first.reused, false);
  assert.equal(first.computedShards, 3);
  assert.deepEqual(
    first.shards.map((s) => [s.start, s.end]),
    [
      [0, 100],
      [100, 200],
      [200, 250],
    ],
  );

  // The history of this run (plan, three shards, publish) must replay against the current workflow code; with
  // LTH_RECORD_HISTORIES=1 it is also saved as a fixture for test/workflow-replay.test.ts.
  const firstId = `${tag}-first`;
  const history = await workers.client.workflow.getHandle(firstId).fetchHistory();
  await Worker.runReplayHistory({ workflowsPath: require.resolve('../workflows') }, history, firstId);
  if (process.env.LTH_RECORD_HISTORIES === '1') {
    fs.writeFileSync(path.join(__dirname, 'histories', 'logits-precompute.json'), historyToJSON(history));
  }

  // The stored logits are the teacher's on the augmented views, bit for bit (same backend: wasm).
  const store = openStore(e);
  const identity = { dataset: 'mnist', split: 'test', augmentation: augmentationLabel(spec.augmentation) };
  const reader = await LogitReader.open(store, [first.manifestKey], identity);
  const batch = await reader.read(Int32Array.from({ length: 250 }, (_, i) => i));
  await reader.close();
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const data = loadDataset('mnist', 'test', { limit: 250 });
  const weights = (await store.getTensors(run.weights.key)).tensors;
  const images = augmentImages(
    data,
    Int32Array.from({ length: 250 }, (_, i) => i),
    spec.augmentation,
    0,
  );
  const expected = await predictLogits('lenet-300-100', weights, images);
  assert.deepEqual(batch.teachers[0]!.values, expected);

  // A student on other views is refused.
  await assert.rejects(
    LogitReader.open(store, [first.manifestKey], { ...identity, augmentation: { policy: 'none', seed: 0 } }),
    /augmentation.policy/,
  );

  // The same spec again: the manifest verifies, no shard is touched.
  const again = await precompute(spec, 'again');
  assert.equal(again.reused, true);
  assert.equal(again.computedShards, 0);

  // Corrupt shard 1 behind the store's back (keeping its recorded checksum): only it is recomputed.
  const victim = first.shards[1]!;
  const cfg = s3ConfigFromEnv(endpointsToEnv(e));
  assert.ok(cfg);
  const raw = rawClient(cfg);
  const forged = Buffer.alloc(victim.bytes, 7);
  await raw.putObject(cfg.bucket, victim.key, forged, forged.length, { sha256: victim.sha256 });
  const repaired = await precompute(spec, 'repaired');
  assert.equal(repaired.reused, false);
  assert.equal(repaired.computedShards, 1);
  assert.equal(repaired.skippedShards, 2);
  assert.equal(repaired.shards[1]!.sha256, victim.sha256, 'the recomputed shard has the same content');
});

test('a teacher that was never trained fails at once, naming teacher.train', async () => {
  const spec = parsePrecomputeSpec({
    experiment: tag,
    teacher: { name: 'untrained', train: { ...teacherTrain, seed: 12345 } },
    split: 'test',
    limit: 50,
  });
  await assert.rejects(precompute(spec, 'untrained'), (err: Error) => {
    const cause = (err as { cause?: { cause?: Error } }).cause?.cause;
    return /teacher\.train: no finished training run/.test(cause?.message ?? '');
  });
});
