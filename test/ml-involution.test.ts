/**
 * Involution (ml/ops/involution.ts) on the cpu and wasm backends: the aggregation and the whole layer against
 * direct float64 loops (forward, and gradients against the loops' analytic gradient and central differences),
 * its input checks, and the two teachers (ml/models/teachers.ts): they learn on a small MNIST subset on wasm,
 * and their forward pass is deterministic. Native TensorFlow: test/ml-involution-native.test.ts (own process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../ml/backend';
import { getModel } from '../ml/models';
import { involution, involutionCF, involutionLayer } from '../ml/ops/involution';
import { Rng } from '../ml/rng';
import { fromHost, hostTensor } from '../ml/tensors';
import {
  assertTeacherLearns,
  CASES,
  checkAggregation,
  checkLayer,
  TEACHERS,
} from './support/involution-reference';

const quiet = { log: () => {} };
async function use(backend: BackendName): Promise<void> {
  await selectBackend({ prefer: backend, threads: backend === 'wasm' ? 1 : undefined, ...quiet });
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  test(`involution matches the direct loop, forward and gradients, on ${backend}`, async () => {
    await use(backend);
    CASES.forEach((c, i) => checkAggregation(c, 10 + i));
  });

  test(`an involution layer (kernel generation + aggregation) matches the loop and finite differences on ${backend}`, async () => {
    await use(backend);
    CASES.forEach((c, i) => checkLayer(c, 20 + i));
  });
}

test('involution refuses an even kernel, channels that do not split into groups, and a mis-shaped kernel', async () => {
  await use('cpu');
  tf.tidy(() => {
    const x = tf.zeros([1, 4, 4, 6]) as tf.Tensor4D;
    assert.throws(
      () => involution(x, tf.zeros([1, 4, 4, 2 * 4]) as tf.Tensor4D, { kernelSize: 2, groups: 2 }),
      /kernelSize must be a positive odd integer, got 2/,
    );
    assert.throws(
      () => involution(x, tf.zeros([1, 4, 4, 4 * 9]) as tf.Tensor4D, { kernelSize: 3, groups: 4 }),
      /6 channels do not split into 4 groups/,
    );
    assert.throws(
      () => involution(x, tf.zeros([1, 4, 4, 9]) as tf.Tensor4D, { kernelSize: 3, groups: 2 }),
      /kernel is \[1, 4, 4, 9\], expected \[1, 4, 4, 18\]/,
    );
    assert.throws(
      () => involutionCF(tf.zeros([6, 4, 4, 1]) as tf.Tensor4D, [], { kernelSize: 3, groups: 2 }),
      /0 kernel taps, expected K² = 9/,
    );
    const w = {
      reduce: tf.zeros([6, 3]),
      reduceBias: tf.zeros([3]),
      span: tf.zeros([3, 10]),
      spanBias: tf.zeros([18]),
    };
    assert.throws(
      () => involutionLayer(x, w, { kernelSize: 3, groups: 2 }),
      /span is \[3, 10\], expected \[3, 18\]/,
    );
  });
});

test('with a kernel that is 1 at the centre tap and 0 elsewhere, involution is the identity', async () => {
  await use('wasm');
  const rng = new Rng(5);
  const [n, h, w, c, g, k] = [2, 4, 5, 6, 3, 3];
  const x = tf.tensor4d(
    Float32Array.from({ length: n * h * w * c }, () => rng.float()),
    [n, h, w, c],
  );
  const kernel = hostTensor('float32', [n, h, w, g * k * k]);
  for (let p = 0; p < n * h * w; p++)
    for (let gi = 0; gi < g; gi++) kernel.data[p * g * k * k + gi * k * k + 4] = 1;
  const y = involution(x, fromHost(kernel) as tf.Tensor4D, { kernelSize: k, groups: g });
  assert.deepEqual(Array.from(y.dataSync()), Array.from(x.dataSync()));
  tf.dispose([x, y]);
});

test('the teachers’ forward pass is deterministic: the same logits, bit for bit, from the same weights and input', async () => {
  await use('wasm');
  const rng = new Rng(6);
  const x = Float32Array.from({ length: 3 * 784 }, () => rng.normal());
  for (const name of TEACHERS) {
    const model = getModel(name);
    const run = () =>
      tf.tidy(() => {
        const params: Record<string, tf.Tensor> = {};
        for (const [k, t] of Object.entries(model.init(4))) params[k] = fromHost(t);
        return Array.from(model.forward(params, tf.tensor4d(x, [3, 28, 28, 1]), false).dataSync());
      });
    const [a, b] = [run(), run()];
    assert.deepEqual(a, b, name);
    assert.ok(new Set(a).size > 1 && a.every(Number.isFinite), `${name}: finite, varied logits`);
  }
});

for (const name of TEACHERS) {
  test(`${name} learns MNIST (512 train / 200 test images) on wasm`, async () => {
    await use('wasm');
    const before = tf.memory().numTensors;
    await assertTeacherLearns(name, 'wasm');
    assert.equal(tf.memory().numTensors, before, 'train() leaves no tensors behind');
  });
}
