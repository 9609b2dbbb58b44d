/**
 * The conv nets on the native TensorFlow backend (tfjs-node, built by infra/tfjs-native.sh). A separate file
 * because loading tfjs-node registers the tfjs union's gradients for the whole process, replacing ours; those
 * rely on Conv2DBackpropFilter, which wasm lacks, so wasm tests must not share a process with this one.
 * LTH_NATIVE=off skips it on a machine without the native build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { conv2dFilterGrad, conv2dInputGrad } from '../ml/ops/conv';
import { Rng } from '../ml/rng';
import { fromHost } from '../ml/tensors';
import { evaluate, train, type TrainConfig } from '../ml/train';
import { randomMasks } from './support/random-weights';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;
const quiet = { log: () => {} };
const train128 = loadDataset('mnist', 'train', { limit: 128 });
// train() also evaluates a test set at the start and the end; a small one keeps that cheap.
const test16 = loadDataset('mnist', 'test', { limit: 16 });

function logits(name: string, x: Float32Array): Float32Array {
  const model = getModel(name);
  return tf.tidy(() => {
    const params: Record<string, tf.Tensor> = {};
    for (const [n, t] of Object.entries(model.init(1))) params[n] = fromHost(t);
    return model
      .forward(params, tf.tensor4d(x, [2, 28, 28, 1]), false)
      .dataSync()
      .slice() as Float32Array;
  });
}

test('conv-2 and conv-4: native forward agrees with the cpu backend', { skip }, async () => {
  const rng = new Rng(2);
  const x = Float32Array.from({ length: 2 * 784 }, () => rng.float());
  for (const name of ['conv-2', 'conv-4']) {
    await selectBackend({ prefer: 'cpu', ...quiet });
    const cpu = logits(name, x);
    await selectBackend({ prefer: 'tensorflow', ...quiet });
    const native = logits(name, x);
    const scale = Math.max(...Array.from(cpu, Math.abs));
    cpu.forEach((v, i) =>
      assert.ok(Math.abs(v - (native[i] as number)) <= 1e-4 * scale, `${name} logit ${i}`),
    );
  }
});

test(
  'ml/ops/conv gradients agree with TensorFlow’s own backprop kernels on the native backend',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', ...quiet });
    const rng = new Rng(3);
    const rand = (shape: number[]) =>
      tf.tensor(
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.float() * 2 - 1),
        shape,
      );
    const x = rand([3, 14, 14, 8]) as tf.Tensor4D;
    const w = rand([3, 3, 8, 16]) as tf.Tensor4D;
    const close = (name: string, a: tf.Tensor, b: tf.Tensor) => {
      const [da, db] = [a.dataSync(), b.dataSync()];
      const scale = Math.max(...Array.from(db, Math.abs));
      da.forEach((v, i) => assert.ok(Math.abs(v - (db[i] as number)) <= 1e-5 * scale, `${name}[${i}]`));
    };
    // 'valid', 'same', and padding that is neither (TensorFlow's kernels take only the first two).
    for (const pad of [
      { top: 0, bottom: 0, left: 0, right: 0 },
      { top: 1, bottom: 1, left: 1, right: 1 },
      { top: 2, bottom: 0, left: 0, right: 1 },
    ]) {
      tf.tidy(() => {
        const padded = (a: tf.Tensor) =>
          tf.pad(a, [
            [0, 0],
            [pad.top, pad.bottom],
            [pad.left, pad.right],
            [0, 0],
          ]) as tf.Tensor4D;
        const y = tf.conv2d(padded(x), w, 1, 'valid');
        const dy = rand(y.shape) as tf.Tensor4D;
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(padded(a), b as tf.Tensor4D, 1, 'valid'), dy)),
        )([x, w]);
        const label = JSON.stringify(pad);
        close(`${label} dx via conv`, conv2dInputGrad(dy, w, x.shape, pad, 'conv'), gx as tf.Tensor);
        close(`${label} dx via kernel`, conv2dInputGrad(dy, w, x.shape, pad, 'kernel'), gx as tf.Tensor);
        close(`${label} dw`, conv2dFilterGrad(x, dy, w.shape, pad), gw as tf.Tensor);
      });
    }
    tf.dispose([x, w]);
  },
);

for (const name of ['conv-2', 'conv-4']) {
  test(
    `${name}: a few Adam steps on 128 MNIST samples reduce the training loss on the native backend`,
    { skip },
    async () => {
      await selectBackend({ prefer: 'tensorflow', ...quiet });
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
      assert.ok(result.final.trainLoss < 0.7 * before.loss, `${before.loss} -> ${result.final.trainLoss}`);
    },
  );
}

test('conv-4: masks keep pruned conv weights exactly 0 on the native backend', { skip }, async () => {
  await selectBackend({ prefer: 'tensorflow', ...quiet });
  const model = getModel('conv-4');
  const init = model.init(3);
  const masks = randomMasks(model.params, 4, 0.3, 'uint8');
  const config: TrainConfig = {
    model: 'conv-4',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-3 },
    batchSize: 16,
    iterations: 3,
    evalEvery: 0,
    seed: 5,
  };
  const result = await train(config, { train: train128, test: test16 }, { initialWeights: init, masks });
  for (const [pname, m] of Object.entries(masks)) {
    const w = result.state.weights[pname]?.data as Float32Array;
    const w0 = init[pname]?.data as Float32Array;
    let moved = 0;
    let kept = 0;
    for (let i = 0; i < m.data.length; i++) {
      if (m.data[i] === 0) {
        if (!Object.is(w[i], 0)) assert.fail(`${pname}[${i}] = ${w[i]} despite mask 0`);
      } else {
        kept++;
        if (w[i] !== w0[i]) moved++;
      }
    }
    assert.ok(moved > 0.5 * kept, `${pname}: kept weights train (${moved} of ${kept} moved)`);
  }
});
