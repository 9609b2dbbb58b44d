// Feature distillation end to end on the real services: the CNN teacher's last feature map is precomputed into
// float16 shards (one set per epoch's views, like its logits) by child workflows, and the student's projected patch
// tokens regress onto it beside the logit term; the stored maps equal the teacher run on the same views within half
// precision. Online, the teacher's map is computed per batch. Specs that cannot pair a student with a feature map are
// refused naming the field: in the spec, or (a patch grid that is not the map's) in the plan, before any teacher runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';

import { readTrainRun } from '../activities/run-records';
import { parseDistillSpec, type DistillSpecInput } from '../contract/distill';
import { distillWorkflowId, trainRunId } from '../contract/ids';
import { augmentationLabel, parsePrecomputeSpec } from '../contract/precompute';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { predictLogits } from '../ml/infer';
import { bytesPerSample, LogitReader, LogitSetMismatchError, readLogitManifest } from '../store';
import { openStore } from '../workers/connection';
import { testEndpoints } from './support/env';
import { runDistill } from './support/distill';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `df${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const teacherTrain = {
  model: 'cnn-teacher' as const,
  dataset: 'mnist' as const,
  optimizer: { kind: 'adam' as const, lr: 1e-3 },
  batchSize: 32,
  iterations: 20,
  evalEvery: 20,
  seed: 6,
  trainLimit: 96,
  testLimit: 64,
};
const augmentation = { policy: 'random-shift' as const, seed: 3, maxShift: 2 };

function spec(targets: 'stored' | 'online' = 'stored'): DistillSpecInput {
  return {
    experiment: tag,
    student: { dim: 16, depth: 1, heads: 2 },
    teachers: [{ name: 'cnn', train: teacherTrain }],
    kd: { mode: 'tokens', temperature: 2, features: { teacher: 'cnn', weight: 0.5 } },
    // 96 samples in batches of 32: 3 steps an epoch, 2 epochs.
    train: { ...teacherTrain, model: 'vit-tiny', iterations: 6, evalEvery: 6, seed: 2 },
    augmentation,
    targets,
    checkpointEvery: 4,
  };
}

const run = (input: DistillSpecInput, suffix = '') => runDistill(workers.client, input, suffix);

test('the CNN teacher’s feature maps are stored per epoch in float16 and the student regresses its patch tokens onto them', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const { handle, result } = await run(spec());
  const [cnn] = result.teachers;
  assert.ok(cnn?.featureKeys, 'the feature teacher has feature-map sets');
  assert.equal(cnn.featureKeys.length, 2, 'one set per epoch of views');
  assert.equal(cnn.manifestKeys.length, 2);
  assert.equal(result.steps, 6);
  assert.ok(Number.isFinite(result.final.testLoss));
  for (const child of ['features', 'features-e1'])
    assert.equal(
      (await workers.client.workflow.getHandle(`${handle.workflowId}.cnn.${child}`).describe()).status.name,
      'COMPLETED',
    );

  const store = openStore(e);
  const manifest = await readLogitManifest(store, cnn.featureKeys[0]!);
  assert.equal(manifest.outputs, 'features');
  assert.deepEqual(manifest.shape, [7, 7, 64]);
  assert.equal(manifest.format, 'float16');
  assert.equal(manifest.classes, 3136);
  // A 7×7×64 map in half precision: 6,272 bytes a sample, against 20 for the ten logits.
  assert.equal(bytesPerSample(manifest.format, manifest.classes), 6272);

  // The stored maps are the teacher on exactly each epoch's views.
  const given = parseDistillSpec(spec()).teachers[0]!;
  assert.ok('train' in given);
  const teacher = await readTrainRun(store, trainRunId(given.train));
  assert.ok(teacher);
  const weights = await store.getTensors(teacher.weights.key, { expectSha256: teacher.weights.sha256 });
  const data = loadDataset('mnist', 'train', { limit: 96 });
  const all = Int32Array.from({ length: data.n }, (_, i) => i);
  for (const epoch of [0, 1]) {
    const identity = {
      dataset: 'mnist',
      split: 'train',
      augmentation: augmentationLabel({ ...augmentation, epoch }),
    };
    const reader = await LogitReader.open(store, [cnn.featureKeys[epoch]!], identity, {
      outputs: 'features',
    });
    const stored = (await reader.read(all)).teachers[0]!.values;
    const online = await predictLogits(
      'cnn-teacher',
      weights.tensors,
      augmentImages(data, all, augmentation, epoch),
      {
        outputs: 'features',
      },
    );
    assert.equal(stored.length, online.length);
    for (let i = 0; i < online.length; i++) {
      const [a, b] = [stored[i]!, online[i]!];
      assert.ok(Math.abs(a - b) <= Math.abs(b) * 2 ** -10 + 2 ** -20, `epoch ${epoch} [${i}]: ${a} vs ${b}`);
    }
    // A feature set is not a logit set: a reader of logits refuses it, naming the field.
    await assert.rejects(LogitReader.open(store, [cnn.featureKeys[epoch]!], identity), (err: unknown) => {
      assert.ok(err instanceof LogitSetMismatchError);
      assert.equal(err.field, 'outputs');
      return true;
    });
  }

  // The student carries the projection to the teacher's 64 channels.
  const student = await store.getTensors(result.weights.key, { expectSha256: result.weights.sha256 });
  assert.deepEqual(student.tensors['features.weight']?.shape, [16, 64]);

  // The same student without the feature term is another run, on the same stored logits.
  const plain = await run({ ...spec(), kd: { mode: 'tokens', temperature: 2 } }, '.plain');
  assert.equal(plain.result.teachers[0]?.featureKeys, undefined);
  assert.deepEqual(plain.result.teachers[0]?.manifestKeys, cnn.manifestKeys);
  assert.notEqual(plain.result.runId, result.runId);
});

test('online, the teacher’s feature map is computed on each batch: no stored set', async () => {
  const { result } = await run(spec('online'));
  assert.deepEqual(result.teachers[0]?.manifestKeys, []);
  assert.equal(result.teachers[0]?.featureKeys, undefined);
  assert.equal(result.steps, 6);
  assert.ok(Number.isFinite(result.final.testLoss));
});

test('a feature term that cannot work is refused, naming the field', async () => {
  const bad =
    (kd: DistillSpecInput['kd'], teachers = spec().teachers) =>
    () =>
      parseDistillSpec({ ...spec(), kd, teachers });
  assert.throws(
    bad({ mode: 'tokens', features: { teacher: 'inv' } }),
    /kd.features.teacher: names no teacher of this spec \(cnn\)/,
  );
  assert.throws(
    bad({ mode: 'tokens', features: { teacher: 'mlp' } }, [
      { name: 'mlp', train: { ...teacherTrain, model: 'lenet-300-100' } },
    ]),
    /kd.features.teacher: lenet-300-100 has no feature map/,
  );
  assert.throws(bad({ mode: 'tokens', features: { teacher: 'cnn', weight: 0 } }), /kd.features.weight/);
  assert.throws(
    () =>
      parsePrecomputeSpec({
        experiment: tag,
        teacher: { name: 'cnn', train: teacherTrain },
        outputs: 'features',
        format: 'top-k',
        k: 3,
      }),
    /format: a feature map is stored as float32 or float16/,
  );
  // Patch 7 makes a 4×4 grid, the CNN teacher's map is 7×7: the plan refuses it before the teacher trains.
  const grid = { ...spec(), experiment: `${tag}-grid`, student: { dim: 16, depth: 1, heads: 2, patch: 7 } };
  const failed = await run(grid).then(
    () => assert.fail('a student whose grid is not the map’s must not train'),
    (err: unknown) => err,
  );
  assert.ok(failed instanceof WorkflowFailedError);
  assert.match(
    String(
      ((failed.cause as Error | undefined)?.cause as Error | undefined)?.message ?? failed.cause?.message,
    ),
    /student.patch: patch 7 makes a 4×4 grid of patches, cnn-teacher's feature map is 7×7/,
  );
  await assert.rejects(
    workers.client.workflow.getHandle(`${distillWorkflowId(parseDistillSpec(grid))}.cnn.train`).describe(),
    /not found/i,
  );
});
