// predictLogits: the logits a model gives a block of images, batch size aside, agree with the training loop's own
// evaluation (same argmax accuracy) and with a single-batch computation.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { predictLogits } from '../ml/infer';
import { getModel } from '../ml/models';
import { train } from '../ml/train';

test('predictLogits matches evaluation accuracy and does not depend on the batch split', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const trainData = loadDataset('mnist', 'train', { limit: 300 });
  const testData = loadDataset('mnist', 'test', { limit: 120 });
  const result = await train(
    {
      model: 'lenet-300-100',
      dataset: 'mnist',
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      batchSize: 30,
      iterations: 30,
      evalEvery: 0,
      seed: 1,
    },
    { train: trainData, test: testData },
  );
  const batches: number[] = [];
  const logits = await predictLogits('lenet-300-100', result.state.weights, testData.images, {
    batchSize: 50,
    onBatch: (done) => void batches.push(done),
  });
  assert.deepEqual(batches, [50, 100, 120]);
  assert.equal(logits.length, 120 * 10);
  let correct = 0;
  for (let i = 0; i < 120; i++) {
    const row = logits.subarray(i * 10, (i + 1) * 10);
    if (row.indexOf(Math.max(...row)) === testData.labels[i]) correct++;
  }
  assert.equal(correct / 120, result.final.testAccuracy);
  const whole = await predictLogits('lenet-300-100', result.state.weights, testData.images, {
    batchSize: 1000,
  });
  for (let i = 0; i < logits.length; i++)
    assert.ok(Math.abs((logits[i] as number) - (whole[i] as number)) < 1e-4);
  await assert.rejects(
    predictLogits('lenet-300-100', getModel('conv-2').init(0), testData.images),
    /missing 'fc1.weight'|shape/,
  );
});
