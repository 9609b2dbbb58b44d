// Rewind points: the state at step k captured during the dense run, masked and resumed, is what an IMP level
// trains from; rewinding to step 0 is the same as starting fresh from the initial weights.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { denseMasks, prune } from '../ml/pruning';
import { hostBytesEqual, type NamedTensors } from '../ml/tensors';
import { initialTrainState, maskTrainState, train, type TrainConfig, type TrainState } from '../ml/train';

const trainData = loadDataset('mnist', 'train', { limit: 256 });
const testData = loadDataset('mnist', 'test', { limit: 100 });
const config: TrainConfig = {
  model: 'lenet-300-100',
  dataset: 'mnist',
  optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  batchSize: 32,
  iterations: 24,
  evalEvery: 0,
  seed: 11,
};
const data = { train: trainData, test: testData };

function sameTensors(a: NamedTensors, b: NamedTensors): boolean {
  const names = Object.keys(a).sort();
  if (names.join() !== Object.keys(b).sort().join()) return false;
  return names.every((n) => hostBytesEqual(a[n]!, b[n]!));
}

test('rewinding to step 0 is a fresh start from the initial weights, bit for bit', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const init = getModel('lenet-300-100').init(config.seed);
  const fresh = await train(config, data, { initialWeights: init });
  const rewound = await train(config, data, { resumeFrom: initialTrainState(config, trainData.n, init) });
  assert.equal(rewound.state.step, config.iterations);
  assert.ok(sameTensors(fresh.state.weights, rewound.state.weights));
  assert.ok(sameTensors(fresh.state.optimizer, rewound.state.optimizer));
});

test('a snapshot at step k is the state of the run at k; a masked level resumes from it and keeps the mask', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const init = getModel('lenet-300-100').init(config.seed);
  let atK: TrainState | null = null;
  const dense = await train(config, data, {
    initialWeights: init,
    snapshotAt: [6],
    onSnapshot: async (s) => {
      atK = s;
    },
  });
  assert.ok(atK);
  const k = atK as TrainState;
  assert.equal(k.step, 6);
  const short = await train({ ...config, iterations: 6 }, data, { initialWeights: init });
  assert.ok(sameTensors(short.state.weights, k.weights), 'snapshot differs from a 6-step run');

  const params = getModel('lenet-300-100').params;
  const masks = prune(dense.state.weights, denseMasks(params), { kind: 'global-magnitude', fraction: 0.5 });
  const start = maskTrainState(k, masks);
  assert.equal(start.step, 6);
  assert.deepEqual(start.evals, []);
  for (const [name, m] of Object.entries(masks)) {
    const w = start.weights[name]!.data;
    const mom = start.optimizer[`momentum/${name}`]!.data;
    let pruned = 0;
    for (let i = 0; i < m.data.length; i++) {
      if (m.data[i] === 0) {
        pruned++;
        assert.ok(Object.is(w[i], 0) && Object.is(mom[i], 0), `${name}[${i}] not +0 after masking`);
      } else {
        assert.equal(w[i], k.weights[name]!.data[i]);
      }
    }
    assert.ok(pruned > 0);
  }
  // The snapshot itself is untouched: masking copies.
  const anyPrunedNonZero = Object.entries(masks).some(([name, m]) =>
    m.data.some((v, i) => v === 0 && k.weights[name]!.data[i] !== 0),
  );
  assert.ok(anyPrunedNonZero, 'maskTrainState modified the state it was given');
  const level = await train(config, data, { resumeFrom: start, masks });
  assert.equal(level.state.step, config.iterations);
  for (const [name, m] of Object.entries(masks)) {
    const w = level.state.weights[name]!.data;
    for (let i = 0; i < m.data.length; i++) if (m.data[i] === 0) assert.ok(Object.is(w[i], 0));
  }
});

test('snapshotAt refuses steps outside the run', async () => {
  await selectBackend({ prefer: 'wasm', log: () => {} });
  await assert.rejects(train(config, data, { snapshotAt: [0], onSnapshot: async () => {} }), /snapshotAt: 0/);
  await assert.rejects(
    train(config, data, { snapshotAt: [25], onSnapshot: async () => {} }),
    /snapshotAt: 25/,
  );
});
