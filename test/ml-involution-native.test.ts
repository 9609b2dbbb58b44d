/**
 * Involution and the two teachers on the native TensorFlow backend (tfjs-node, built by infra/tfjs-native.sh).
 * A separate file for the reason test/ml-models-native.test.ts gives: loading tfjs-node registers the tfjs union's
 * gradients for the whole process, replacing ml/gradients.ts' ones, so wasm training must not share a process
 * with it. The involution's own gradient (tf.customGrad in ml/ops/involution.ts) is the same on every backend;
 * the kernel generator's matMul, RMS norm and slices go through the union's gradients here.
 * LTH_NATIVE=off skips it on a machine without the native build.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../ml/backend';
import { getModel } from '../ml/models';
import { Rng } from '../ml/rng';
import { fromHost } from '../ml/tensors';
import {
  assertTeacherLearns,
  CASES,
  checkAggregation,
  checkLayer,
  TEACHERS,
} from './support/involution-reference';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;
const quiet = { log: () => {} };
const native = () => selectBackend({ prefer: 'tensorflow', ...quiet });

test(
  'involution matches the direct loop, forward and gradients, on the native backend',
  { skip },
  async () => {
    await native();
    CASES.forEach((c, i) => checkAggregation(c, 10 + i));
  },
);

test(
  'an involution layer matches the loop and finite differences on the native backend',
  { skip },
  async () => {
    await native();
    CASES.forEach((c, i) => checkLayer(c, 20 + i));
  },
);

function logits(name: string, x: Float32Array): number[] {
  const model = getModel(name);
  return tf.tidy(() => {
    const params: Record<string, tf.Tensor> = {};
    for (const [n, t] of Object.entries(model.init(1))) params[n] = fromHost(t);
    return Array.from(model.forward(params, tf.tensor4d(x, [2, 28, 28, 1]), false).dataSync());
  });
}

test('the teachers’ native forward is deterministic and agrees with the cpu backend', { skip }, async () => {
  const rng = new Rng(2);
  const x = Float32Array.from({ length: 2 * 784 }, () => rng.normal());
  for (const name of TEACHERS) {
    await selectBackend({ prefer: 'cpu', ...quiet });
    const cpu = logits(name, x);
    await native();
    const [a, b] = [logits(name, x), logits(name, x)];
    assert.deepEqual(a, b, `${name}: same logits twice`);
    const scale = Math.max(...cpu.map(Math.abs));
    cpu.forEach((v, i) => assert.ok(Math.abs(v - (a[i] as number)) <= 1e-4 * scale, `${name} logit ${i}`));
  }
});

for (const name of TEACHERS) {
  test(`${name} learns MNIST (512 train / 200 test images) on the native backend`, { skip }, async () => {
    await native();
    await assertTeacherLearns(name, 'native');
  });
}
