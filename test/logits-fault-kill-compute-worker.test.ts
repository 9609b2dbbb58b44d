// Fault injection on a teacher-logit precompute, on the real services: the compute worker is SIGKILLed once some
// shards are stored and the workflow is still computing. A new compute worker takes over (the lost attempt times
// out on its heartbeat and is retried there), the workflow completes, the shards stored before the kill are kept
// as they were, and every shard of the published set verifies and holds exactly the logits that an undisturbed
// in-process computation with ml/ gives on the same (deterministic) WASM backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startOrAttachTrain } from '../client/runs';
import { loadDataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { predictLogits } from '../ml/infer';
import { getModel } from '../ml/models';
import {
  decodeLogitShard,
  logitSetKeys,
  readLogitManifest,
  readLogitShardHeader,
  roundToFloat16,
} from '../store';
import { precomputeLogitsWorkflow } from '../workflows/logits';
import { augmentationLabel, parsePrecomputeSpec, type PrecomputeStatus } from '../contract/precompute';
import { parseTrainSpec } from '../contract/train';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { testEndpoints } from './support/env';
import { useFaultInjection } from './support/workers';

const e = testEndpoints();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = `lgk${Date.now().toString(36)}`;
const harness = useFaultInjection(e, 100);

const teacherTrain = {
  model: 'lenet-300-100' as const,
  dataset: 'mnist' as const,
  optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9 },
  batchSize: 32,
  iterations: 40,
  evalEvery: 40,
  // Not the seed of test/logits-precompute.test.ts: this teacher and its logit set are this file's alone.
  seed: 17,
  trainLimit: 320,
  testLimit: 100,
};

const LIMIT = 3000;
const SHARD_SIZE = 250;
const SHARDS = LIMIT / SHARD_SIZE;

const spec = parsePrecomputeSpec({
  experiment: tag,
  teacher: { name: 'tiny-lenet-kill', train: teacherTrain },
  split: 'train',
  limit: LIMIT,
  augmentation: { policy: 'random-shift', seed: 5 },
  format: 'float16',
  shardSize: SHARD_SIZE,
  parallelism: 1,
  heartbeatTimeoutSeconds: 5,
});

test('a compute worker SIGKILLed mid-precompute: stored shards are kept and every logit is exact', async () => {
  const trainer = harness.spawnCompute();
  await trainer.ready;
  const trained = await startOrAttachTrain(
    harness.client,
    parseTrainSpec({ experiment: tag, train: teacherTrain }),
  );
  const teacher = await trained.handle.result();

  // The set's keys, as activities/logits.ts derives them, to watch the shards appear.
  const model = getModel(teacherTrain.model);
  const keys = logitSetKeys({
    teacherWeightsSha256: teacher.weights.sha256,
    dataset: 'mnist',
    split: 'train',
    augmentation: augmentationLabel(spec.augmentation),
    format: 'float16',
    classes: model.numClasses,
    sampleCount: LIMIT,
    shardSize: SHARD_SIZE,
  });
  assert.ok(!(await harness.store.exists(keys.manifestKey)), 'a fresh logit set');

  const handle = await harness.client.workflow.start(precomputeLogitsWorkflow, {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-precompute`,
  });

  // Kill once at least two shards are done and more than one is still to come.
  const deadline = Date.now() + 300_000;
  let seen: PrecomputeStatus;
  for (;;) {
    seen = await handle.query<PrecomputeStatus>('status');
    if (seen.phase === 'computing' && seen.done >= 2) break;
    assert.ok(['planning', 'computing'].includes(seen.phase), `killed too late: ${JSON.stringify(seen)}`);
    assert.ok(Date.now() < deadline, `two shards were not done within five minutes: ${JSON.stringify(seen)}`);
    await sleep(10);
  }
  trainer.child.kill('SIGKILL');
  assert.equal(await trainer.exited, 'SIGKILL');
  const during = await handle.query<PrecomputeStatus>('status');
  assert.equal(during.phase, 'computing', 'the kill must land while the workflow is still computing');
  assert.equal(during.shardCount, SHARDS);
  assert.ok(during.done >= 2 && during.done < SHARDS, `${during.done} of ${SHARDS} shards done at the kill`);

  // What was stored when the worker died (the shards reported done, maybe one more written just before).
  const stored = new Map<string, Date>();
  for (let i = 0; i < SHARDS; i++) {
    const key = keys.shardKey(i);
    if (await harness.store.exists(key)) stored.set(key, (await harness.store.stat(key)).lastModified);
  }
  assert.ok(stored.size >= during.done, `${stored.size} shards stored, ${during.done} reported done`);
  assert.ok(stored.size < SHARDS, 'some shards are still to be computed');

  const rescuer = harness.spawnCompute();
  await rescuer.ready;
  const result = await handle.result();

  assert.equal(result.reused, false);
  assert.equal(result.manifestKey, keys.manifestKey);
  assert.equal(result.sampleCount, LIMIT);
  assert.equal(result.skippedShards + result.computedShards, SHARDS);
  // Shards done before the kill are not computed again; the rescuer computes at least the rest.
  assert.ok(
    result.computedShards >= SHARDS - stored.size,
    `${result.computedShards} computed, ${stored.size} stored before the kill`,
  );
  const status = await handle.query<PrecomputeStatus>('status');
  assert.equal(status.phase, 'done');
  assert.equal(status.done, SHARDS);

  // Shards stored before the kill were kept, not rewritten.
  for (const [key, modified] of stored) {
    assert.equal(
      (await harness.store.stat(key)).lastModified.getTime(),
      modified.getTime(),
      `${key} was rewritten after the kill`,
    );
  }

  // Every shard of the published set verifies and holds the undisturbed computation's logits (float16-rounded).
  const manifest = await readLogitManifest(harness.store, result.manifestKey, { verify: 'content' });
  assert.equal(manifest.shards.length, SHARDS);
  assert.deepEqual(
    manifest.shards.map((s) => s.key),
    result.shards.map((s) => s.key),
  );
  const data = loadDataset('mnist', 'train', { limit: LIMIT });
  const weights = (
    await harness.store.getTensors(teacher.weights.key, { expectSha256: teacher.weights.sha256 })
  ).tensors;
  const images = augmentImages(
    data,
    Int32Array.from({ length: LIMIT }, (_, i) => i),
    spec.augmentation,
    spec.augmentation.epoch,
  );
  const expected = (await predictLogits(teacherTrain.model, weights, images)).map(roundToFloat16);
  const C = model.numClasses;
  for (const [i, ref] of manifest.shards.entries()) {
    assert.equal(ref.key, keys.shardKey(i));
    const { bytes } = await harness.store.getBytes(ref.key, { expectSha256: ref.sha256 });
    assert.equal(bytes.length, ref.bytes);
    const want = { format: 'float16' as const, classes: C, start: ref.start, end: ref.end };
    readLogitShardHeader(bytes, ref.key, want);
    const shard = decodeLogitShard(bytes, ref.key, want);
    assert.equal(shard.kind, 'logits');
    assert.deepEqual(shard.values, expected.slice(ref.start * C, ref.end * C), `shard ${i} logits`);
  }

  // Once published, the same spec is reused without any shard work.
  const again = await harness.client.workflow.execute(precomputeLogitsWorkflow, {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-again`,
  });
  assert.equal(again.reused, true);
  assert.equal(again.computedShards, 0);
  assert.equal(again.skippedShards, SHARDS);
  assert.equal(again.manifestKey, result.manifestKey);
});
