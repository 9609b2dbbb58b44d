// The native TensorFlow backend (tfjs-node with libtensorflow built by infra/tfjs-native.sh): it is
// preferred by 'auto', LeNet-300-100 learns on it, masks hold, and resume is bit-exact on it.
// Provisioning builds it on every machine; set LTH_NATIVE=off to skip these tests on one without it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { hostBytesEqual, hostTensor, type NamedTensors } from '../ml/tensors';
import { stateFromTensors, stateToTensors, train, type TrainConfig, type TrainState } from '../ml/train';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

const trainData = loadDataset('mnist', 'train', { limit: 1000 });
const testData = loadDataset('mnist', 'test', { limit: 300 });
const base: TrainConfig = {
  model: 'lenet-300-100',
  dataset: 'mnist',
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  batchSize: 50,
  iterations: 200,
  evalEvery: 50,
  seed: 5,
};

function halfMasks(): NamedTensors {
  const out: NamedTensors = {};
  for (const p of getModel('lenet-300-100').params.filter((q) => q.prunable)) {
    const m = hostTensor('float32', p.shape);
    // Every third weight pruned, spread over rows and columns so that no unit or class loses all inputs.
    for (let i = 0; i < m.data.length; i++) m.data[i] = (i * 7919) % 3 === 0 ? 0 : 1;
    out[p.name] = m;
  }
  return out;
}

test('auto prefers the native backend once it is built', { skip }, async () => {
  const info = await selectBackend({ prefer: 'auto', log: () => {} });
  assert.equal(
    info.name,
    'tensorflow',
    'native backend missing: run bash infra/tfjs-native.sh (or LTH_NATIVE=off)',
  );
  assert.equal(info.package, '@tensorflow/tfjs-node');
});

test(
  'LeNet-300-100 learns on the native backend and pruned weights stay exactly zero',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', log: () => {} });
    const masks = halfMasks();
    const r = await train(base, { train: trainData, test: testData }, { masks });
    assert.ok(r.final.testAccuracy > 0.8, `test accuracy ${r.final.testAccuracy}`);
    for (const [name, mask] of Object.entries(masks)) {
      const w = r.state.weights[name]!.data;
      for (let i = 0; i < w.length; i++)
        if (mask.data[i] === 0) assert.ok(Object.is(w[i], 0), `${name}[${i}] = ${w[i]}`);
    }
  },
);

test('resume is bit-exact on the native backend (SGD and Adam)', { skip }, async () => {
  await selectBackend({ prefer: 'tensorflow', log: () => {} });
  for (const optimizer of [
    base.optimizer,
    { kind: 'adam' as const, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  ]) {
    const cfg = { ...base, optimizer, iterations: 60, evalEvery: 20 };
    const data = { train: trainData, test: testData };
    const full = await train(cfg, data);
    const saved: TrainState[] = [];
    await train({ ...cfg }, data, {
      checkpointEvery: 23,
      onCheckpoint: async (s) => {
        saved.push(s);
      },
    });
    const { tensors, metadata } = stateToTensors(saved[0]!);
    const resumed = await train(cfg, data, { resumeFrom: stateFromTensors(tensors, metadata) });
    for (const [k, t] of Object.entries(full.state.weights)) {
      assert.ok(hostBytesEqual(t, resumed.state.weights[k]!), `${optimizer.kind}: ${k} differs after resume`);
    }
    assert.deepEqual(resumed.evals, full.evals);
  }
});
