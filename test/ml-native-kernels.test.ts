/**
 * Native TensorFlow's one-op gradients (ml/native/kernels.ts): the ReLU gradient through TensorFlow's ReluGrad equals
 * the composite dy·step(x) value for value (ReluGrad's zeros are +0 where dy·0 can be −0), and a training step runs
 * it in place of the composite's kernels; the softmax cross-entropy is one SoftmaxCrossEntropyWithLogits. Its own process: loading the native backend changes the process's gradients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { NATIVE_RELU_GRAD, NATIVE_SOFTMAX_XENT } from '../ml/native/kernels';
import { crossEntropy } from '../ml/train';
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
  for (let i = 0; i < a.length; i++) assert.ok(a[i] === b[i], `[${i}] x=${values[i]}: ${a[i]} vs ${b[i]}`);

  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const profile = await tf.profile(() => tf.grad((v: tf.Tensor) => tf.sum(tf.relu(v)))(x));
  const names = profile.kernels.map((k) => k.name);
  assert.ok(names.includes(NATIVE_RELU_GRAD), names.join(' '));
  assert.ok(!names.includes('Step') && !names.includes('Select'), `no composite step: ${names.join(' ')}`);
  tf.dispose([x, dy, grad, composite]);
});

test(
  'the softmax cross-entropy on native TensorFlow is one op, equal to the composite within float32 rounding',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const rng = new Rng(8);
    const logits = tf.tensor2d(
      Float32Array.from({ length: 64 * 10 }, () => 4 * rng.normal()),
      [64, 10],
    );
    const labels = Int32Array.from({ length: 64 }, () => Math.floor(rng.float() * 10));
    const oneHot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), 10), 'float32') as tf.Tensor2D;
    const composite = (l: tf.Tensor) =>
      tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(l as tf.Tensor2D)), 1))) as tf.Scalar;
    const native = (l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, oneHot);
    const [a, b] = [(await native(logits).data())[0]!, (await composite(logits).data())[0]!];
    assert.ok(Math.abs(a - b) <= 1e-6 * Math.abs(b), `loss ${a} vs ${b}`);
    const [ga, gb] = [await tf.grad(native)(logits).data(), await tf.grad(composite)(logits).data()];
    for (let i = 0; i < ga.length; i++)
      assert.ok(Math.abs(ga[i]! - gb[i]!) <= 1e-7, `grad[${i}] ${ga[i]} vs ${gb[i]}`);

    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
    const profile = await tf.profile(() => tf.grad(native)(logits));
    const names = profile.kernels.map((k) => k.name);
    assert.ok(names.includes(NATIVE_SOFTMAX_XENT), names.join(' '));
    assert.ok(!names.some((n) => /logSoftmax|Exp|Log$/.test(n)), `no composite: ${names.join(' ')}`);
  },
);
