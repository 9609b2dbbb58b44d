// Augmentation-consistent targets (TinyViT's lesson) and online teachers, on the real services. With augmentation
// on, a logit set is precomputed per epoch on exactly the views the student sees in that epoch; the stored
// targets equal the teacher run on the same views in this process (float32 bit for bit, float16 within its
// rounding). Online targets run the teachers on each batch instead and need no stored set.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseDistillSpec, type DistillSpecInput } from '../contract/distill';
import { distillWorkflowId } from '../contract/ids';
import { augmentationLabel } from '../contract/precompute';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { trainRunId } from '../contract/ids';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { predictLogits } from '../ml/infer';
import { LogitReader } from '../store';
import { readTrainRun } from '../activities/run-records';
import { openStore } from '../workers/connection';
import { distillWorkflow } from '../workflows/distill';
import { testEndpoints } from './support/env';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `dt${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const teacherTrain = {
  model: 'lenet-300-100' as const,
  dataset: 'mnist' as const,
  optimizer: { kind: 'adam' as const, lr: 1e-3 },
  batchSize: 32,
  iterations: 20,
  evalEvery: 20,
  seed: 4,
  trainLimit: 128,
  testLimit: 64,
};
const augmentation = { policy: 'random-shift' as const, seed: 7, maxShift: 2 };

function spec(format: 'float32' | 'float16', targets: 'stored' | 'online' = 'stored'): DistillSpecInput {
  return {
    experiment: tag,
    student: { dim: 16, depth: 1, heads: 2 },
    teachers: [{ name: `mlp-${format}`, train: teacherTrain, format }],
    kd: { mode: 'tokens', temperature: 2 },
    // 128 samples in batches of 32: 4 steps an epoch, 2 epochs.
    train: { ...teacherTrain, model: 'vit-tiny', iterations: 8, evalEvery: 8, seed: 1 },
    augmentation,
    targets,
    checkpointEvery: 4,
  };
}

/** The teacher's run id: of its training config as parsed (defaults filled in), as the plan computes it. */
function teacherRunId(): string {
  const t = parseDistillSpec(spec('float32')).teachers[0]!;
  assert.ok('train' in t);
  return trainRunId(t.train);
}

async function run(input: DistillSpecInput) {
  const s = parseDistillSpec(input);
  return workers.client.workflow.execute(distillWorkflow, {
    args: [s],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: distillWorkflowId(s),
  });
}

test('with augmentation a logit set per epoch holds the teacher on exactly the views of that epoch', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const data = loadDataset('mnist', 'train', { limit: 128 });
  const all = Int32Array.from({ length: data.n }, (_, i) => i);
  const store = openStore(e);
  for (const format of ['float32', 'float16'] as const) {
    const result = await run(spec(format));
    const keys = result.teachers[0]!.manifestKeys;
    assert.equal(keys.length, 2, 'one set per epoch');
    assert.notEqual(keys[0], keys[1]);
    const teacher = await readTrainRun(store, teacherRunId());
    assert.ok(teacher);
    const weights = await store.getTensors(teacher.weights.key, { expectSha256: teacher.weights.sha256 });
    for (const epoch of [0, 1]) {
      const reader = await LogitReader.open(store, [keys[epoch]!], {
        dataset: 'mnist',
        split: 'train',
        augmentation: augmentationLabel({ ...augmentation, epoch }),
      });
      const stored = (await reader.read(all)).teachers[0]!.values;
      const online = await predictLogits(
        'lenet-300-100',
        weights.tensors,
        augmentImages(data, all, augmentation, epoch),
      );
      assert.equal(stored.length, online.length);
      for (let i = 0; i < online.length; i++) {
        const [a, b] = [stored[i]!, online[i]!];
        if (format === 'float32') assert.ok(Object.is(a, b), `${format} epoch ${epoch} [${i}]: ${a} vs ${b}`);
        else
          assert.ok(Math.abs(a - b) <= Math.abs(b) * 2 ** -11 + 2 ** -24, `${format} [${i}]: ${a} vs ${b}`);
      }
    }
  }
  // Another epoch's views are other images: the sets differ.
  const [s0, s1] = (await run(spec('float32'))).teachers[0]!.manifestKeys;
  const r0 = await LogitReader.open(store, [s0!], {
    dataset: 'mnist',
    split: 'train',
    augmentation: augmentationLabel({ ...augmentation, epoch: 0 }),
  });
  const r1 = await LogitReader.open(store, [s1!], {
    dataset: 'mnist',
    split: 'train',
    augmentation: augmentationLabel({ ...augmentation, epoch: 1 }),
  });
  const [v0, v1] = [(await r0.read(all)).teachers[0]!.values, (await r1.read(all)).teachers[0]!.values];
  assert.ok(
    v0.some((v, i) => v !== v1[i]),
    'epochs 0 and 1 hold different views',
  );
});

test('online targets run the teachers on each batch: no logit set, the teacher run recorded instead', async () => {
  const result = await run(spec('float32', 'online'));
  assert.equal(result.reused, false);
  assert.deepEqual(result.teachers, [{ name: 'mlp-float32', manifestKeys: [], trainRunId: teacherRunId() }]);
  assert.equal(result.steps, 8);
  assert.ok(Number.isFinite(result.final.testLoss));
});

test('a stored set cannot stand for augmented views, and online targets need the teacher itself', () => {
  const base = spec('float32');
  assert.throws(
    () =>
      parseDistillSpec({
        ...base,
        teachers: [{ name: 'x', logits: 'logits/a/mnist/float32/manifest.json' }],
      }),
    /teachers.0.logits: a stored set holds one view per sample; with augmentation random-shift/,
  );
  assert.throws(
    () =>
      parseDistillSpec({
        ...base,
        augmentation: { policy: 'none' },
        targets: 'online',
        teachers: [{ name: 'x', logits: 'logits/a/mnist/float32/manifest.json' }],
      }),
    /teachers.0.logits: targets online run the teacher on each batch/,
  );
});
