/**
 * Every registered model: parameter names, shapes and counts against its architecture, Kaiming init that is
 * deterministic and backend-independent, forward shapes, a few steps of training on wasm, and masks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel, isModelName, MODEL_NAMES } from '../ml/models';
import { Rng } from '../ml/rng';
import { fromHost, hostBytesEqual, hostTensor } from '../ml/tensors';
import { evaluate, train, type TrainConfig } from '../ml/train';
import { randomMasks } from './support/random-weights';

const quiet = { log: () => {} };
async function use(backend: BackendName): Promise<void> {
  await selectBackend({ prefer: backend, threads: backend === 'wasm' ? 1 : undefined, ...quiet });
}

/**
 * The architectures, written out independently of ml/models: [name, shape] of every parameter in order.
 * Conv nets (Frankle & Carbin 2019, Figure 2, for 28x28x1): 3x3 'same' convs, 2x2 pools halve 28 -> 14 -> 7.
 */
function expectedParams(name: string): [string, number[]][] {
  const conv = (i: number, cin: number, cout: number): [string, number[]][] => [
    [`conv${i}.weight`, [3, 3, cin, cout]],
    [`conv${i}.bias`, [cout]],
  ];
  const fc = (i: number, fin: number, fout: number): [string, number[]][] => [
    [`fc${i}.weight`, [fin, fout]],
    [`fc${i}.bias`, [fout]],
  ];
  switch (name) {
    case 'lenet-300-100':
      return [...fc(1, 784, 300), ...fc(2, 300, 100), ...fc(3, 100, 10)];
    case 'conv-2':
      return [
        ...conv(1, 1, 64),
        ...conv(2, 64, 64),
        ...fc(1, 14 * 14 * 64, 256),
        ...fc(2, 256, 256),
        ...fc(3, 256, 10),
      ];
    case 'conv-4':
      return [
        ...conv(1, 1, 64),
        ...conv(2, 64, 64),
        ...conv(3, 64, 128),
        ...conv(4, 128, 128),
        ...fc(1, 7 * 7 * 128, 256),
        ...fc(2, 256, 256),
        ...fc(3, 256, 10),
      ];
    case 'conv-6':
      // 28 -> 14 -> 7 -> 3: the third pool floors, as torch's MaxPool2d(2).
      return [
        ...conv(1, 1, 64),
        ...conv(2, 64, 64),
        ...conv(3, 64, 128),
        ...conv(4, 128, 128),
        ...conv(5, 128, 256),
        ...conv(6, 256, 256),
        ...fc(1, 3 * 3 * 256, 256),
        ...fc(2, 256, 256),
        ...fc(3, 256, 10),
      ];
    case 'cnn-teacher':
      return [...conv(1, 1, 32), ...conv(2, 32, 64), ...fc(1, 7 * 7 * 64, 128), ...fc(2, 128, 10)];
    case 'involution-teacher': {
      // Stem 3x3 conv + pool (28 -> 14), then per block: the kernel generator C -> C/4 -> G*K*K (K = 3; G = 4,
      // then 8) and the 1x1 conv after the involution; pool after the first block only (14 -> 7).
      const inv = (i: number, c: number, g: number, out: number): [string, number[]][] => [
        [`inv${i}.reduce.weight`, [c, c / 4]],
        [`inv${i}.reduce.bias`, [c / 4]],
        [`inv${i}.span.weight`, [c / 4, g * 9]],
        [`inv${i}.span.bias`, [g * 9]],
        [`mix${i}.weight`, [c, out]],
        [`mix${i}.bias`, [out]],
      ];
      return [
        ['stem.weight', [3, 3, 1, 32]],
        ['stem.bias', [32]],
        ...inv(1, 32, 4, 64),
        ...inv(2, 64, 8, 64),
        ...fc(1, 7 * 7 * 64, 128),
        ...fc(2, 128, 10),
      ];
    }
    default:
      throw new Error(`test has no architecture for '${name}': add it`);
  }
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

test('the registry holds LeNet-300-100, conv-2, conv-4, conv-6 and the two teachers', () => {
  for (const name of ['lenet-300-100', 'conv-2', 'conv-4', 'conv-6', 'cnn-teacher', 'involution-teacher']) {
    assert.ok(isModelName(name), name);
  }
});

/**
 * The std of a weight's initialisation relative to Kaiming's sqrt(2 / fan_in): the involution's span weights are
 * scaled by 1/K (K = 3 in involution-teacher) so that a sum over K*K taps keeps its input's scale.
 */
const initScale = (model: string, param: string) =>
  model === 'involution-teacher' && /^inv\d+\.span\.weight$/.test(param) ? 1 / 3 : 1;

// The ViT student has its own architecture and initialisation tests (test/ml-vit.test.ts).
const KAIMING_MODELS = MODEL_NAMES.filter((n) => !n.startsWith('vit-'));

for (const name of KAIMING_MODELS) {
  test(`${name}: parameter names, shapes, counts and prunability match the architecture`, () => {
    const model = getModel(name);
    const expected = expectedParams(name);
    assert.deepEqual(
      model.params.map((p) => [p.name, p.shape]),
      expected,
    );
    for (const p of model.params) {
      assert.equal(p.kind, p.name.endsWith('.weight') ? 'weight' : 'bias', p.name);
      assert.equal(p.prunable, p.kind === 'weight', `${p.name}: weights prunable, biases not`);
    }
    const total = model.params.reduce((n, p) => n + count(p.shape), 0);
    const totals: Record<string, number> = {
      'lenet-300-100': 266_610,
      'conv-2': 3_317_450,
      'conv-4': 1_933_258,
      'conv-6': 1_802_698,
      'cnn-teacher': 421_642,
      'involution-teacher': 412_270,
    };
    assert.equal(total, totals[name]);
    assert.deepEqual(model.inputShape, [28, 28, 1]);
    assert.equal(model.numClasses, 10);
  });

  test(`${name}: Kaiming-normal init is deterministic, seed-dependent and the same on cpu and wasm`, async () => {
    const model = getModel(name);
    await use('cpu');
    const a = model.init(7);
    await use('wasm');
    const b = model.init(7);
    const c = model.init(8);
    for (const p of model.params) {
      const [ta, tb, tc] = [a[p.name], b[p.name], c[p.name]];
      assert.ok(ta && tb && tc, p.name);
      assert.deepEqual(ta.shape, p.shape, p.name);
      assert.ok(hostBytesEqual(ta, tb), `${p.name}: same bits on cpu and wasm`);
      if (p.kind === 'bias') {
        assert.ok(
          ta.data.every((v) => v === 0),
          `${p.name}: zero`,
        );
        continue;
      }
      assert.ok(!hostBytesEqual(ta, tc), `${p.name}: another seed, other values`);
      // N(0, 2 / fan_in), fan_in = K*K*Cin for a conv ([K, K, Cin, Cout]), the input width for a dense layer.
      const fanIn = count(p.shape.slice(0, -1));
      const expected = Math.sqrt(2 / fanIn) * initScale(name, p.name);
      let sq = 0;
      for (const v of ta.data) sq += v * v;
      const std = Math.sqrt(sq / ta.data.length);
      const tol = 4 / Math.sqrt(2 * ta.data.length); // ~4 standard errors of a sample std
      assert.ok(Math.abs(std / expected - 1) < tol, `${p.name}: std ${std} vs ${expected}`);
    }
  });
}

for (const name of MODEL_NAMES) {
  test(`${name}: forward on a batch of 2 gives finite [2, 10] logits that agree across cpu and wasm`, async () => {
    const model = getModel(name);
    const weights = model.init(1);
    const rng = new Rng(2);
    const x = hostTensor(
      'float32',
      [2, 28, 28, 1],
      Float32Array.from({ length: 2 * 784 }, () => rng.float()),
    );
    const out: Record<string, Float32Array> = {};
    for (const backend of ['cpu', 'wasm'] as BackendName[]) {
      await use(backend);
      const before = tf.memory().numTensors;
      const params: Record<string, tf.Tensor> = {};
      for (const [n, t] of Object.entries(weights)) params[n] = fromHost(t);
      const xt = fromHost(x);
      // A flat [batch, 784] input is accepted too, as the dataset stores it.
      const flat = tf.reshape(xt, [2, 784]);
      const [logits, logitsFlat] = [model.forward(params, xt, false), model.forward(params, flat, false)];
      assert.deepEqual(logits.shape, [2, 10]);
      out[backend] = logits.dataSync().slice() as Float32Array;
      assert.deepEqual(Array.from(logitsFlat.dataSync()), Array.from(out[backend]));
      assert.ok(out[backend].every(Number.isFinite));
      tf.dispose([logits, logitsFlat, flat, xt, ...Object.values(params)]);
      assert.equal(tf.memory().numTensors, before, 'forward leaks no tensors');
    }
    const [c, w] = [out.cpu as Float32Array, out.wasm as Float32Array];
    const scale = Math.max(...Array.from(c, Math.abs));
    c.forEach((v, i) =>
      assert.ok(Math.abs(v - (w[i] as number)) <= 1e-4 * scale, `logit ${i}: ${v} vs ${w[i]}`),
    );
  });
}

const train128 = loadDataset('mnist', 'train', { limit: 128 });
// train() also evaluates a test set at the start and the end; a small one keeps that cheap.
const test16 = loadDataset('mnist', 'test', { limit: 16 });

// The ViT starts slowly from its small DeiT initialisation (8 Adam steps cut its loss by 5%, 100 by 26%);
// test/ml-vit.test.ts trains it longer and checks that it learns.
for (const name of KAIMING_MODELS) {
  test(`${name}: a few Adam steps on 128 MNIST samples reduce the training loss on wasm`, async () => {
    await use('wasm');
    const model = getModel(name);
    const init = model.init(1);
    const config: TrainConfig = {
      model: name,
      dataset: 'mnist',
      optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
      batchSize: 32,
      iterations: 8,
      evalEvery: 0,
      seed: 1,
    };
    const before = await evaluate(model, init, train128);
    const result = await train(config, { train: train128, test: test16 }, { initialWeights: init });
    assert.ok(
      result.final.trainLoss < 0.7 * before.loss,
      `${name}: training loss ${before.loss.toFixed(3)} -> ${result.final.trainLoss.toFixed(3)}`,
    );
    console.log(
      `${name}: loss on the 128 samples ${before.loss.toFixed(3)} -> ${result.final.trainLoss.toFixed(3)}`,
    );
  });
}

test('conv-2: masks keep pruned conv and dense weights exactly 0 while the rest trains (wasm, sgd and adam)', async () => {
  await use('wasm');
  const model = getModel('conv-2');
  const init = model.init(3);
  const masks = randomMasks(model.params, 4, 0.3, 'uint8');
  for (const optimizer of [
    { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-3 },
    { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-3 },
  ] as const) {
    const config: TrainConfig = {
      model: 'conv-2',
      dataset: 'mnist',
      optimizer,
      batchSize: 16,
      iterations: 3,
      evalEvery: 0,
      seed: 5,
    };
    const data = { train: train128, test: test16 };
    const result = await train(config, data, { initialWeights: init, masks });
    for (const [pname, m] of Object.entries(masks)) {
      const w = result.state.weights[pname]?.data as Float32Array;
      const w0 = init[pname]?.data as Float32Array;
      let moved = 0;
      let kept = 0;
      for (let i = 0; i < m.data.length; i++) {
        if (m.data[i] === 0) {
          if (!Object.is(w[i], 0)) assert.fail(`${optimizer.kind} ${pname}[${i}] = ${w[i]} despite mask 0`);
        } else {
          kept++;
          if (w[i] !== w0[i]) moved++;
        }
      }
      assert.ok(
        moved > 0.5 * kept,
        `${optimizer.kind} ${pname}: kept weights train (${moved} of ${kept} moved)`,
      );
      for (const [slot, t] of Object.entries(result.state.optimizer)) {
        if (!slot.endsWith(`/${pname}`)) continue;
        for (let i = 0; i < m.data.length; i++) {
          if (m.data[i] === 0 && t.data[i] !== 0) assert.fail(`${slot}[${i}] = ${t.data[i]} despite mask 0`);
        }
      }
    }
    assert.ok(
      result.state.weights['conv1.bias']?.data.some((v) => v !== 0),
      'conv biases are not masked',
    );
  }
});

test('every model built for 32×32×3 and 100 classes: shapes follow the input, logits have the classes', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const input = { shape: [32, 32, 3] as const, classes: 100 };
  const shapeOf = (m: string, p: string) => getModel(m, input).params.find((q) => q.name === p)?.shape;
  assert.deepEqual(shapeOf('lenet-300-100', 'fc1.weight'), [3072, 300]);
  assert.deepEqual(shapeOf('lenet-300-100', 'fc3.weight'), [100, 100]);
  assert.deepEqual(shapeOf('conv-2', 'conv1.weight'), [3, 3, 3, 64]);
  assert.deepEqual(shapeOf('conv-2', 'fc1.weight'), [16 * 16 * 64, 256]);
  assert.deepEqual(shapeOf('conv-6', 'fc1.weight'), [4 * 4 * 256, 256]);
  assert.deepEqual(shapeOf('cnn-teacher', 'fc1.weight'), [8 * 8 * 64, 128]);
  assert.deepEqual(shapeOf('involution-teacher', 'stem.weight'), [3, 3, 3, 32]);
  assert.deepEqual(shapeOf('involution-teacher', 'fc1.weight'), [8 * 8 * 64, 128]);
  // vit-tiny, patch 4: an 8×8 grid of 48-value patches.
  assert.deepEqual(shapeOf('vit-tiny', 'patch.weight'), [48, 64]);
  assert.deepEqual(shapeOf('vit-tiny', 'position'), [65, 64]);
  assert.deepEqual(shapeOf('vit-tiny', 'head.weight'), [64, 100]);
  assert.equal(getModel('conv-2', input), getModel('conv-2', input), 'one definition per (model, input)');
  assert.equal(getModel('conv-2'), getModel('conv-2', { shape: [28, 28, 1], classes: 10 }));
  for (const name of MODEL_NAMES) {
    const model = getModel(name, input);
    assert.deepEqual(model.inputShape, [32, 32, 3]);
    const params = Object.fromEntries(
      Object.entries(model.init(1)).map(([n, h]) => [n, tf.tensor(h.data as Float32Array, h.shape)]),
    );
    const x = tf.randomNormal([2, 32, 32, 3]);
    const logits = model.forward(params, x, false);
    assert.deepEqual(logits.shape, [2, 100], name);
    tf.dispose([x, logits, ...Object.values(params)]);
  }
  assert.throws(() => getModel('vit-tiny', { shape: [30, 30, 3], classes: 10 }), /patch: must divide 30/);
  assert.throws(() => getModel('conv-6', { shape: [4, 4, 1], classes: 10 }), /pools away to nothing/);
});
