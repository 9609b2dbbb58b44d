// Ensemble distillation end to end on the real Temporal server and MinIO: two teachers given by their training
// specs are trained and their logits precomputed as child workflows, then the ViT student (one distillation token
// per teacher) trains on the stored outputs; a rerun reuses the student; another mode reuses the teachers' sets;
// a logit set of other samples is refused, naming the field, before anything trains.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';

import { parseDistillSpec, type DistillSpecInput, type DistillStatus } from '../contract/distill';
import { testEndpoints } from './support/env';
import { runDistill } from './support/distill';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `ds${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const teacherTrain = (model: 'cnn-teacher' | 'lenet-300-100', seed: number) => ({
  model,
  dataset: 'mnist' as const,
  optimizer: { kind: 'adam' as const, lr: 1e-3 },
  batchSize: 32,
  iterations: 30,
  evalEvery: 30,
  seed,
  trainLimit: 192,
  testLimit: 64,
});

const base: DistillSpecInput = {
  experiment: tag,
  student: { dim: 16, depth: 1, heads: 2 },
  teachers: [
    { name: 'cnn', train: teacherTrain('cnn-teacher', 1) },
    { name: 'mlp', train: teacherTrain('lenet-300-100', 2) },
  ],
  kd: { mode: 'tokens', temperature: 2 },
  train: {
    model: 'vit-tiny',
    dataset: 'mnist',
    optimizer: { kind: 'adam', lr: 1e-3 },
    batchSize: 32,
    iterations: 12,
    evalEvery: 6,
    seed: 3,
    trainLimit: 192,
    testLimit: 64,
  },
  checkpointEvery: 5,
};

const run = (input: DistillSpecInput, suffix = '') => runDistill(workers.client, input, suffix);

test('teachers given by training spec are trained and precomputed first; the student learns from both tokens', async () => {
  const { handle, result } = await run(base);
  assert.equal(result.reused, false);
  assert.equal(result.teachers.length, 2);
  for (const t of result.teachers) {
    assert.equal(t.manifestKeys.length, 1, 'one set serves every epoch without augmentation');
    assert.match(t.manifestKeys[0]!, /^logits\/.+\/manifest\.json$/);
  }
  assert.equal(result.steps, 12);
  assert.ok(result.final.testAccuracy >= 0 && result.final.testAccuracy <= 1);
  const status = await handle.query<DistillStatus>('status');
  assert.equal(status.phase, 'done');
  assert.deepEqual(
    status.teachers.map((t) => [t.name, t.ready, t.making]),
    [
      ['cnn', true, false],
      ['mlp', true, false],
    ],
  );
  // The children ran under the distillation's id.
  const child = await workers.client.workflow.getHandle(`${handle.workflowId}.cnn.logits`).describe();
  assert.equal(child.status.name, 'COMPLETED');

  // The same spec again: the student's stored result, no training.
  const again = await run(base, '.again');
  assert.equal(again.result.reused, true);
  assert.deepEqual(again.result.weights, result.weights);

  // Another mode over the same teachers: their sets are found by the plan, no child workflow starts.
  const averaged = await run({ ...base, kd: { mode: 'average' } }, '.average');
  assert.equal(averaged.result.reused, false);
  assert.deepEqual(averaged.result.teachers, result.teachers);
  await assert.rejects(
    workers.client.workflow.getHandle(`${averaged.handle.workflowId}.cnn.train`).describe(),
    /not found/i,
  );
});

test('a logit set of other samples than the student trains on is refused, naming the field', async () => {
  const first = await run(base);
  const wrong = {
    ...base,
    teachers: [{ name: 'cnn', logits: first.result.teachers[0]!.manifestKeys[0]! }],
    kd: { mode: 'deit-soft' as const },
    train: { ...base.train, trainLimit: 160 },
  };
  await assert.rejects(run(wrong, '.wrong'), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = (err.cause as Error | undefined)?.cause as Error | undefined;
    assert.match(
      String(cause?.message ?? err.cause?.message),
      /teachers: the logit sets cover 192 samples, the student trains on 160/,
    );
    return true;
  });
});

test('a spec whose teachers do not fit its mode is refused before anything starts', () => {
  assert.throws(
    () => parseDistillSpec({ ...base, kd: { mode: 'deit-hard' } }),
    /teachers: kd.mode deit-hard takes 1 teacher/,
  );
  assert.throws(
    () => parseDistillSpec({ ...base, kd: { mode: 'tokens', temperature: 0 } }),
    /kd.temperature/,
  );
  assert.throws(
    () => parseDistillSpec({ ...base, train: { ...base.train, model: 'conv-2' } }),
    /train.model: the student must be a ViT/,
  );
  assert.throws(
    () => parseDistillSpec({ ...base, kd: { mode: 'deit-soft', alpha: 1 }, teachers: [] }),
    /teachers: kd.mode deit-soft takes 1 teacher/,
  );
});
