import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel, MODEL_NAMES } from '../ml/models';
import { hostTensor, type NamedTensors } from '../ml/tensors';
import {
  epochsToIterations,
  MlInputError,
  TrainingStoppedError,
  stepsPerEpoch,
  train,
  type TrainConfig,
  type TrainProgress,
  type TrainState,
} from '../ml/train';

const data = {
  train: loadDataset('mnist', 'train', { limit: 128 }),
  test: loadDataset('mnist', 'test', { limit: 64 }),
};
const base: TrainConfig = {
  model: 'lenet-300-100',
  dataset: 'mnist',
  optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  batchSize: 32,
  iterations: 12,
  evalEvery: 0,
  seed: 1,
};

test('epochs and iterations convert with partial last batches', () => {
  assert.equal(stepsPerEpoch(1000, 32), 32);
  assert.equal(stepsPerEpoch(60000, 60), 1000);
  assert.equal(epochsToIterations(1, 1000, 32), 32);
  assert.equal(epochsToIterations(40, 60000, 128), 40 * 469);
  assert.equal(epochsToIterations(2.5, 100, 16), 18);
  assert.equal(epochsToIterations(0, 100, 16), 0);
  assert.equal(epochsToIterations(0.1, 300, 10), 3);
  assert.throws(() => epochsToIterations(-1, 100, 16), MlInputError);
});

test('the loop yields between batches, reports progress, and checkpoints full copies on schedule', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const progress: TrainProgress[] = [];
  const checkpoints: TrainState[] = [];
  let inCallback = false;
  try {
    const r = await train({ ...base, evalEvery: 5 }, data, {
      checkpointEvery: 4,
      onCheckpoint: async (s) => {
        inCallback = true;
        // The loop awaits the callback (an upload) before going on.
        await new Promise((resolve) => setTimeout(resolve, 5));
        checkpoints.push(s);
        inCallback = false;
      },
      onProgress: (p) => {
        assert.equal(inCallback, false);
        progress.push(p);
      },
    });
    assert.deepEqual(
      checkpoints.map((c) => c.step),
      [4, 8, 12],
    );
    const [c4, c8] = checkpoints;
    assert.notEqual(c4!.weights['fc1.weight']!.data, c8!.weights['fc1.weight']!.data);
    assert.notEqual(checkpoints[2]!.weights['fc1.weight']!.data, r.state.weights['fc1.weight']!.data);
    assert.deepEqual(
      c8!.evals.map((e) => e.step),
      [0, 5],
    );
    assert.equal(typeof c4!.lastLoss, 'number');
    assert.deepEqual(c4!.rng, {
      version: 1,
      order: 'epochOrder',
      seed: 1,
      trainSize: 128,
      batchSize: 32,
      epoch: 1,
      position: 0,
    });
    assert.ok(Object.keys(c4!.optimizer).every((k) => k.startsWith('momentum/')));
    assert.deepEqual(
      progress.map((p) => p.step),
      [0, 5, 10, 12],
    );
    assert.ok(progress.filter((p) => p.step > 0).every((p) => Number.isFinite(p.loss)));
    assert.deepEqual(
      progress.filter((p) => p.testAccuracy !== undefined).map((p) => p.step),
      [0, 5, 10, 12],
    );
    assert.ok(ticks >= 12, `timers ran during training (${ticks} ticks)`);
  } finally {
    clearInterval(timer);
  }
});

test('abort stops the run with an AbortError and leaks no tensors', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const before = tf.memory().numTensors;
  const ac = new AbortController();
  await assert.rejects(
    train(base, data, {
      progressEvery: 1,
      onProgress: (p) => {
        if (p.step === 3) ac.abort();
      },
      signal: ac.signal,
    }),
    (e: Error) => e.name === 'AbortError' && /aborted at step 3/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, before);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(train(base, data, { signal: pre.signal }), { name: 'AbortError' });
  assert.equal(tf.memory().numTensors, before);
  // A failing checkpoint upload propagates and still cleans up.
  await assert.rejects(
    train(base, data, {
      checkpointEvery: 2,
      onCheckpoint: async () => {
        throw new Error('store unreachable');
      },
    }),
    /store unreachable/,
  );
  assert.equal(tf.memory().numTensors, before);
});

test('bad input is a non-retryable MlInputError that says what is wrong', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const bad = async (cfg: TrainConfig, opts: Parameters<typeof train>[2], re: RegExp) =>
    assert.rejects(
      train(cfg, data, opts),
      (e: Error) => e instanceof MlInputError && e.nonRetryable && re.test(e.message),
    );
  await bad({ ...base, optimizer: { kind: 'sgd', lr: -1, momentum: 0 } }, {}, /optimizer\.lr/);
  await bad(
    { ...base, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0, nesterov: true } },
    {},
    /nesterov needs momentum/,
  );
  await bad({ ...base, batchSize: 0 }, {}, /batchSize/);
  await bad(
    { ...base, model: 'resnet-50' },
    {},
    new RegExp(`unknown model 'resnet-50'; known models: ${MODEL_NAMES.join(', ')}`),
  );
  await bad(
    { ...base, dataset: 'fashion-mnist' },
    {},
    /train data is 'mnist' but the config says 'fashion-mnist'/,
  );
  await bad({ ...base, trainLimit: 64 }, {}, /trainLimit is 64/);
  const w = getModel('lenet-300-100').init(1);
  const missing = { ...w };
  delete missing['fc2.bias'];
  await bad(base, { initialWeights: missing }, /weights: missing 'fc2\.bias'/);
  await bad(
    base,
    { masks: { 'fc1.weight': hostTensor('uint8', [300, 784]) } },
    /mask 'fc1\.weight': shape \[300, 784\], expected \[784, 300\]/,
  );
  const twos: NamedTensors = {
    'fc3.weight': hostTensor('float32', [100, 10], new Float32Array(1000).fill(2)),
  };
  await bad(base, { masks: twos }, /masks must be 0 or 1/);
  await bad(base, { masks: { conv1: hostTensor('uint8', [1]) } }, /mask 'conv1' does not name a parameter/);
  await bad(base, { checkpointEvery: 3 }, /checkpointEvery given without onCheckpoint/);
});

test('the model initialises identically for a seed and differently across seeds', () => {
  const m = getModel('lenet-300-100');
  const a = m.init(5);
  const b = m.init(5);
  const c = m.init(6);
  for (const p of m.params) {
    assert.deepEqual(a[p.name]!.shape, p.shape);
    assert.deepEqual(a[p.name]!.data, b[p.name]!.data);
    if (p.kind === 'bias') assert.ok(a[p.name]!.data.every((v) => v === 0));
    else assert.notDeepEqual(a[p.name]!.data, c[p.name]!.data);
    assert.equal(p.prunable, p.kind === 'weight');
  }
  // Kaiming normal, fan_in: std = sqrt(2 / 784) for fc1.
  const d = a['fc1.weight']!.data;
  let s2 = 0;
  for (const v of d) s2 += v * v;
  assert.ok(Math.abs(Math.sqrt(s2 / d.length) / Math.sqrt(2 / 784) - 1) < 0.01);
});

test('a stop request checkpoints the current step, stops, and resuming from it is exact', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const reference = await train(base, data);
  const saved: TrainState[] = [];
  let steps = 0;
  await assert.rejects(
    train(base, data, {
      checkpointEvery: 4,
      onCheckpoint: async (s) => {
        saved.push(s);
      },
      onProgress: (p) => {
        steps = p.step;
      },
      progressEvery: 1,
      stopRequested: () => steps >= 7,
    }),
    (err: unknown) => err instanceof TrainingStoppedError && err.step === 7,
  );
  assert.deepEqual(
    saved.map((s) => s.step),
    [4, 7],
  );
  const resumed = await train(base, data, { resumeFrom: saved[1] });
  for (const [name, w] of Object.entries(reference.state.weights)) {
    assert.deepEqual(resumed.state.weights[name]?.data, w.data, name);
  }
});
