// Healing the teacher outputs a distillation reads, on the real services. A tiny LeNet teacher is trained and its
// logits precomputed for a ViT student that trains two epochs of random shifts (one logit set per epoch); the
// student's weights of that undisturbed run are the reference. Stored objects are then damaged behind the store's
// back with the raw S3 client (a flipped byte with its checksum header kept, as bit rot leaves it; a deletion), and
// the same spec runs again: it must complete, list exactly the damaged keys in `healed`, and publish a student with
// the reference's SHA-256, every logit object back with its bytes. What cannot be derived (a set given by its key,
// damaged teacher weights) fails with a non-retryable cause naming the key. The logit precompute's plan takes a
// store outage during its verification for the transient fault it is, not for damage.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';

import { teacherSetSpec } from '../activities/distill';
import { createLogitSets } from '../activities/logits';
import { parseDistillSpec, type DistillSpecInput } from '../contract/distill';
import { distillWorkflowId, trainRunId } from '../contract/ids';
import { parsePrecomputeSpec } from '../contract/precompute';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { endpointsToEnv } from '../infra/endpoints';
import {
  finalWeightsKey,
  IntegrityError,
  readLogitManifest,
  s3ConfigFromEnv,
  StoreUnavailableError,
  type ArtifactStore,
} from '../store';
import { fsck } from '../store/fsck';
import { openStore } from '../workers/connection';
import { precomputeLogitsWorkflow } from '../workflows/logits';
import { lthRunner, ok } from './support/cli';
import { deleteExecution } from './support/delete-execution';
import { runDistill } from './support/distill';
import { testEndpoints } from './support/env';
import { rawClient } from './support/s3';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const bucket = e.s3.bucket;
const tag = `hl${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const store: ArtifactStore = openStore(e);
const cfg = s3ConfigFromEnv(endpointsToEnv(e));
assert.ok(cfg);
const raw = rawClient(cfg);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });

const teacher = { name: 'mlp', train: tinyLenetTrain(73, { iterations: 30, evalEvery: 30 }) };
const studentTrain = {
  model: 'vit-tiny' as const,
  dataset: 'mnist' as const,
  optimizer: { kind: 'adam' as const, lr: 1e-3 },
  batchSize: 32,
  iterations: 12,
  evalEvery: 6,
  seed: 3,
  trainLimit: 192,
  testLimit: 64,
};
// 192 samples in batches of 32: 6 steps an epoch, so 2 epochs and a logit set for each; the checkpoint at step 5
// is written before the student first reads epoch 1's set.
const specInput: DistillSpecInput = {
  experiment: tag,
  student: { dim: 16, depth: 1, heads: 2 },
  teachers: [teacher],
  kd: { mode: 'deit-soft', temperature: 2 },
  train: studentTrain,
  augmentation: { policy: 'random-shift', seed: 9 },
  checkpointEvery: 5,
};
const spec = parseDistillSpec(specInput);
const teacherSpec = spec.teachers[0] as Parameters<typeof teacherSetSpec>[1];

/** A flipped byte in the middle, the checksum header kept: what bit rot does. */
async function flipByte(key: string): Promise<void> {
  const { bytes, ref } = await store.getBytes(key);
  const b = Buffer.from(bytes);
  const i = Math.floor(b.length / 2);
  b[i] = (b[i] as number) ^ 0x01;
  await raw.putObject(bucket, key, b, b.length, { sha256: ref.sha256 });
}

/** Puts back the bytes (and checksum header) `key` had. */
async function restore(key: string, bytes: Buffer, sha256: string): Promise<void> {
  await raw.putObject(bucket, key, bytes, bytes.length, { sha256 });
}

/** Every object under these prefixes with its content hash (verified against its own header). */
async function snapshot(prefixes: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const prefix of prefixes)
    for (const { key } of await store.list(prefix)) out.set(key, (await store.verify(key)).sha256);
  return out;
}

/** The failure's innermost cause: the activity's error as Temporal carries it. */
function rootCause(err: unknown): Error & { type?: string; nonRetryable?: boolean; details?: unknown[] } {
  let at = err as Error;
  while (at.cause instanceof Error) at = at.cause;
  return at;
}

let reference = { runId: '', sha256: '', sets: [] as string[] };
let setObjects = new Map<string, string>();
const folderOf = (manifestKey: string) => manifestKey.replace(/manifest\.json$/, '');
const shard0 = (manifestKey: string) => `${folderOf(manifestKey)}shard-0.bin`;

test('a damaged and a missing logit shard are recomputed to their bytes; the student is the undisturbed one', async () => {
  const first = await runDistill(workers.client, specInput);
  assert.equal(first.result.healed, undefined, 'an undisturbed run heals nothing');
  const sets = first.result.teachers[0]!.manifestKeys;
  assert.equal(sets.length, 2, 'one logit set per epoch of random shifts');
  reference = { runId: first.result.runId, sha256: first.result.weights.sha256, sets };
  setObjects = await snapshot(sets.map(folderOf));
  for (const m of sets)
    assert.equal((await readLogitManifest(store, m)).shards.length, 1, `${m} is one shard`);

  // The student's result goes, so that it trains again; epoch 0's shard goes too (met when its set is opened),
  // epoch 1's shard rots (met mid-training, after the checkpoint at step 5).
  for (const { key } of await store.list(`runs/${reference.runId}/`)) await store.remove(key);
  await store.remove(shard0(sets[0]!));
  await flipByte(shard0(sets[1]!));

  const again = await runDistill(workers.client, specInput, '.healed');
  assert.equal(again.result.reused, false);
  assert.deepEqual(again.result.healed, [shard0(sets[0]!), shard0(sets[1]!)]);
  assert.equal(again.result.weights.sha256, reference.sha256, 'the student has the undisturbed bytes');
  const now = await snapshot(sets.map(folderOf));
  assert.deepEqual([...now.entries()].sort(), [...setObjects.entries()].sort());
  for (const m of sets) assert.equal((await fsck(store, { prefix: folderOf(m) })).clean, true);
});

test('lth distill heals a damaged logit manifest and a damaged student, and says so', async () => {
  assert.ok(reference.sha256, 'the first test ran the distillation');
  const studentWeights = finalWeightsKey(reference.runId);
  await flipByte(studentWeights);
  await flipByte(reference.sets[0]!);
  // lth attaches to a completed distillation: delete it, then the same spec starts a new execution.
  await deleteExecution(workers.client, distillWorkflowId(spec));
  const dir = mkdtempSync(path.join(tmpdir(), 'lth-heal-logits-'));
  const file = path.join(dir, 'distill.json');
  writeFileSync(file, JSON.stringify(specInput));
  const ran = ok(await lth(['distill', '--config', file], 300_000), 'lth distill (rerun)');
  assert.ok(
    ran.stdout.includes(`[recomputed damaged: ${studentWeights}, ${reference.sets[0]}]`),
    `lth distill lists what it recomputed:\n${ran.stdout}`,
  );
  assert.ok(ran.stdout.includes(`sha256 ${reference.sha256}`), `the student's bytes:\n${ran.stdout}`);
  const now = await snapshot(reference.sets.map(folderOf));
  assert.deepEqual([...now.entries()].sort(), [...setObjects.entries()].sort());
  assert.equal((await fsck(store, { prefix: `runs/${reference.runId}/` })).clean, true);
});

test('a damaged shard of a set given by its key cannot be derived: the run fails naming the key', async () => {
  // A set without augmentation, precomputed on its own and given to the student by its key.
  const pre = await workers.client.workflow.execute(precomputeLogitsWorkflow, {
    args: [
      parsePrecomputeSpec({
        experiment: tag,
        teacher,
        dataset: 'mnist',
        split: 'train',
        limit: studentTrain.trainLimit,
      }),
    ],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-precompute`,
  });
  const key = shard0(pre.manifestKey);
  const { bytes, ref } = await store.getBytes(key);
  await flipByte(key);
  const given: DistillSpecInput = {
    ...specInput,
    teachers: [{ name: 'mlp', logits: pre.manifestKey }],
    augmentation: { policy: 'none', seed: 0 },
  };
  await assert.rejects(runDistill(workers.client, given), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = rootCause(err);
    assert.equal(cause.type, 'UnderivableError');
    assert.equal(cause.nonRetryable, true);
    assert.match(
      cause.message,
      new RegExp(`'${key.replace(/\./g, '\\.')}' is damaged and cannot be recomputed`),
    );
    assert.match(cause.message, /given to the distillation by its key/);
    assert.deepEqual((cause.details?.[0] as { key?: string }).key, key);
    return true;
  });
  await restore(key, bytes, ref.sha256);
});

test('damaged teacher weights, the input of its logits, fail the distillation naming their key', async () => {
  const weights = finalWeightsKey(trainRunId(teacherSpec.train));
  const { bytes, ref } = await store.getBytes(weights);
  await flipByte(weights);
  await store.remove(shard0(reference.sets[0]!));
  try {
    // Another student seed: a new distillation, which must read the teacher.
    const other = { ...specInput, train: { ...studentTrain, seed: 4 } };
    await assert.rejects(runDistill(workers.client, other), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = rootCause(err);
      assert.equal(cause.nonRetryable, true);
      assert.ok(cause.message.includes(`'${weights}'`), cause.message);
      assert.equal((cause.details?.[0] as { key?: string }).key, weights);
      return true;
    });
  } finally {
    await restore(weights, bytes, ref.sha256);
  }
  // With its input back, the shard is derived again.
  const healed = await runDistill(
    workers.client,
    { ...specInput, train: { ...studentTrain, seed: 4 } },
    '.after',
  );
  assert.deepEqual(healed.result.healed, [shard0(reference.sets[0]!)]);
});

test('the precompute plan takes a store outage during its verification for an outage, and damage for damage', async () => {
  assert.ok(reference.sha256, 'the first test precomputed the sets');
  const setSpec = teacherSetSpec(spec, teacherSpec, 0, 'logits');
  // The store, but reading the logit set's manifest fails with `err` (the teacher's run reads as ever).
  const failing = (err: Error): ArtifactStore => {
    const s = Object.create(store) as ArtifactStore;
    s.readManifest = (key, opts) =>
      key === reference.sets[0] ? Promise.reject(err) : store.readManifest(key, opts);
    return s;
  };
  const log = () => undefined;
  const intact = await createLogitSets({ store, log }).plan(setSpec);
  assert.equal(intact.manifestKey, reference.sets[0]);
  assert.equal(intact.complete, true);
  const outage = new StoreUnavailableError('127.0.0.1:1', 'the store did not answer');
  await assert.rejects(
    createLogitSets({ store: failing(outage), log }).plan(setSpec),
    (err) => err === outage,
  );
  const damaged = new IntegrityError(intact.manifestKey, 'a'.repeat(64), 'b'.repeat(64));
  const replan = await createLogitSets({ store: failing(damaged), log }).plan(setSpec);
  assert.equal(replan.complete, false, 'a set that does not verify is recomputed');
});
