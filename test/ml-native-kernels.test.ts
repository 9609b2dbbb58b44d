/**
 * Native TensorFlow's one-op gradients (ml/native-kernels.ts): the ReLU gradient through TensorFlow's ReluGrad equals
 * the composite dy·step(x) value for value (ReluGrad's zeros are +0 where dy·0 can be −0), and a training step runs
 * it in place of the composite's kernels. Its own process: loading the native backend changes the process's gradients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { NATIVE_RELU_GRAD } from '../ml/native-kernels';
import { Rng } from '../ml/rng';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

test('the ReLU gradient on native TensorFlow is one ReluGrad, equal to dy·step(x)', { skip }, async () => {
  await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  const rng = new Rng(4);
  const values = Float32Array.from({ length: 4096 }, (_, i) =>
    i % 7 === 0 ? 0 : i % 11 === 0 ? -0 : rng.normal(),
  );
  const x = tf.tensor2d(values, [64, 64]);
  const dy = tf.tensor2d(
    Float32Array.from({ length: 4096 }, () => rng.normal()),
    [64, 64],
  );
  const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dy)))(x);
  const composite = tf.mul(dy, tf.step(x));
  const [a, b] = [await grad.data(), await composite.data()];
  for (let i = 0; i < a.length; i++)
    assert.ok(a[i] === b[i], `[${i}] x=${values[i]}: ${a[i]} vs ${b[i]}`);

  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const profile = await tf.profile(() => tf.grad((v: tf.Tensor) => tf.sum(tf.relu(v)))(x));
  const names = profile.kernels.map((k) => k.name);
  assert.ok(names.includes(NATIVE_RELU_GRAD), names.join(' '));
  assert.ok(!names.includes('Step') && !names.includes('Select'), `no composite step: ${names.join(' ')}`);
  tf.dispose([x, dy, grad, composite]);
});
