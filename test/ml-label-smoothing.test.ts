/**
 * Label smoothing (TrainConfig.labelSmoothing, torch's CrossEntropyLoss(label_smoothing=ε)): the first step's loss
 * equals (1 − ε)·CE + ε·mean over classes of −log p, computed here in float64 from the model's logits; the native
 * dense step (LeNet) and the tape take the same targets; a distillation objective is refused with it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { fromHost } from '../ml/tensors';
import { train, Trainer, type TrainConfig } from '../ml/train';
import { oneHotHost } from '../ml/train/evaluate';

const data = loadDataset('mnist', 'train', { limit: 32 });

function config(labelSmoothing: number): TrainConfig {
  return {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 },
    batchSize: 32,
    iterations: 1,
    evalEvery: 0,
    seed: 2,
    labelSmoothing,
  };
}

/** torch's smoothed cross-entropy of `logits` for `labels`, in float64. */
function smoothedCe(logits: Float32Array, labels: Int32Array, k: number, eps: number): number {
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = Array.from(logits.subarray(i * k, (i + 1) * k), Number);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, z) => a + Math.exp(z - max), 0));
    const nll = lse - (row[labels[i] as number] as number);
    const uniform = row.reduce((a, z) => a + (lse - z), 0) / k;
    total += (1 - eps) * nll + eps * uniform;
  }
  return total / labels.length;
}

test('smoothed targets: (1 − ε) one-hot + ε/k, and nothing changes at ε = 0', () => {
  const y = oneHotHost([2, 0], 4, 0.1);
  assert.deepEqual(Array.from(y), [0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025].map(Math.fround));
  assert.deepEqual(Array.from(oneHotHost([1], 3)), [0, 1, 0]);
  assert.deepEqual(Array.from(oneHotHost([1], 3, 0)), [0, 1, 0]);
});

for (const backend of ['cpu', 'tensorflow'] as BackendName[]) {
  test(
    `the first step's loss on ${backend} is torch's smoothed cross-entropy`,
    { skip: backend === 'tensorflow' && process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false },
    async () => {
      await selectBackend({ prefer: backend, threads: 1, log: () => {} });
      const model = getModel('lenet-300-100');
      // Weights trained a little (no smoothing): the true class's logit stands above the others, where smoothing
      // changes the loss (at initialisation it hardly does).
      const weights = (
        await train(
          { ...config(0), iterations: 20 },
          { train: data, test: data },
          { initialWeights: model.init(2) },
        )
      ).state.weights;
      const trainer = new Trainer(config(0.1), data, { weights });
      // The first batch: step 0's indices.
      const indices = trainer.batchIndices(0);
      trainer.trainStep();
      const loss = await trainer.readLoss();
      const engine = trainer.engineInfo.name;
      trainer.dispose();
      const params = Object.fromEntries(Object.entries(weights).map(([n, h]) => [n, fromHost(h)]));
      const x = tf.tensor(
        Float32Array.from(
          { length: indices.length * 784 },
          (_, j) => data.images[(indices[Math.floor(j / 784)] as number) * 784 + (j % 784)] as number,
        ),
        [indices.length, 28, 28, 1],
      );
      const logits = tf.tidy(() => model.forward(params, x, false)).dataSync() as Float32Array;
      tf.dispose([x, ...Object.values(params)]);
      const labels = Int32Array.from(indices, (i) => data.labels[i] as number);
      const want = smoothedCe(logits, labels, 10, 0.1);
      assert.ok(loss !== null && Math.abs(loss - want) < 1e-5 * want, `${engine}: loss ${loss} vs ${want}`);
      // And it is not the plain cross-entropy.
      assert.ok(
        Math.abs(want - smoothedCe(logits, labels, 10, 0)) > 1e-2,
        `${want} vs ${smoothedCe(logits, labels, 10, 0)}`,
      );
      if (backend === 'tensorflow') assert.equal(engine, 'native-dense');
    },
  );
}

test('label smoothing with a distillation objective is refused', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const trainer = new Trainer(config(0.1), data, {
    weights: getModel('lenet-300-100').init(0),
    objective: 'opaque',
  });
  try {
    assert.throws(
      () =>
        trainer.trainStep({
          def: { prepare: async () => null, loss: () => tf.scalar(0) },
          extras: null,
        }),
      /labelSmoothing smooths the cross-entropy of plain training/,
    );
  } finally {
    trainer.dispose();
  }
});
