/**
 * Feature distillation, the ml/ side: the teachers' last feature maps (ModelDef.features), the student's projected
 * patch tokens (vitModel featureChannels), the feature loss on hand-computed values and inside the objective, and
 * gradients through the projection against finite differences.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { distillationLoss, featureKd, objectiveFor, softKd, crossEntropyToLabels } from '../ml/distill';
import { outputWidth, predictLogits } from '../ml/infer';
import { getModel, vitModel } from '../ml/models';
import { FEATURE_MAP_MODELS, MODEL_NAMES } from '../ml/models/names';
import { fromHost } from '../ml/tensors';
import { Rng } from '../ml/rng';

const quiet = { log: () => {} };

test('FEATURE_MAP_MODELS lists exactly the registered models with a feature map', () => {
  const withMap = MODEL_NAMES.filter((m) => getModel(m).features !== undefined);
  assert.deepEqual([...FEATURE_MAP_MODELS].sort(), [...withMap].sort());
  assert.deepEqual(getModel('cnn-teacher').featureShape, [7, 7, 64]);
  assert.equal(outputWidth('cnn-teacher', 'features'), 7 * 7 * 64);
  assert.throws(() => outputWidth('lenet-300-100', 'features'), /lenet-300-100 has no feature map/);
});

test('cnn-teacher: the feature map is what its classifier reads (forward = dense head of features)', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const model = getModel('cnn-teacher');
  const p = Object.fromEntries(Object.entries(model.init(2)).map(([n, h]) => [n, fromHost(h)]));
  const rng = new Rng(5);
  const x = tf.tensor4d(
    Float32Array.from({ length: 3 * 784 }, () => rng.normal()),
    [3, 28, 28, 1],
  );
  const map = model.features!(p, x);
  assert.deepEqual(map.shape, [3, 7, 7, 64]);
  assert.ok((await tf.min(map).data())[0]! >= 0, 'after the ReLU');
  const head = tf.tidy(() => {
    const h = tf.relu(tf.add(tf.matMul(tf.reshape(map, [3, -1]), p['fc1.weight']!), p['fc1.bias']!));
    return tf.add(tf.matMul(h, p['fc2.weight']!), p['fc2.bias']!);
  });
  assert.deepEqual(await head.data(), await model.forward(p, x, false).data());
  // predictLogits with outputs 'features' returns the same map, flattened (h, w, c), whatever the batch size.
  const host = Object.fromEntries(Object.entries(model.init(2)));
  const stored = await predictLogits('cnn-teacher', host, (await x.data()) as Float32Array, {
    outputs: 'features',
    batchSize: 2,
  });
  assert.equal(stored.length, 3 * 3136);
  const direct = await map.data();
  for (let i = 0; i < stored.length; i++)
    assert.ok(Math.abs(stored[i]! - direct[i]!) <= 1e-5 * (1 + Math.abs(direct[i]!)));
  tf.dispose([x, map, head, ...Object.values(p)]);
});

test('featureKd: the mean squared error over every element, on hand-computed values', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const s = tf.tensor3d([
    [
      [1, 2],
      [3, 4],
    ],
  ]);
  const t = tf.tensor3d([
    [
      [0, 2],
      [1, 1],
    ],
  ]);
  // differences 1, 0, 2, 3: squares 1, 0, 4, 9, mean 3.5; the gradient 2(s − t)/4.
  assert.equal((await featureKd(s, t).data())[0], 3.5);
  const g = tf.grad((v: tf.Tensor) => featureKd(v as tf.Tensor3D, t))(s);
  assert.deepEqual(Array.from(await g.data()), [0.5, 0, 1, 1.5]);
  assert.throws(() => featureKd(s, tf.tensor3d([[[0, 2]]])), /\[1, 2, 2\].*\[1, 1, 2\]/);
});

test('the objective adds weight·featureKd to the logit terms, and refuses a bad feature term', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const heads = [tf.tensor2d([[1, 0, -1]]), tf.tensor2d([[0.5, 0.2, 0]])];
  const labels = tf.tensor1d([2], 'int32');
  const teacher = { kind: 'logits' as const, values: tf.tensor2d([[2, 1, 0]]) };
  const features = { student: tf.tensor3d([[[1, 2]]]), teacher: tf.tensor3d([[[0, 0]]]) };
  const objective = objectiveFor('tokens', 1, { temperature: 2, features: { teacher: 0, weight: 0.25 } });
  const { total, parts } = distillationLoss(heads, labels, [teacher], objective, features);
  const ce = (await crossEntropyToLabels(heads[0]!, labels).data())[0]!;
  const kd = (await softKd(heads[1]!, tf.softmax(tf.div(teacher.values, 2)) as tf.Tensor2D, 2).data())[0]!;
  assert.ok(Math.abs(parts.features! - 2.5) < 1e-6, `features term ${parts.features}`);
  assert.ok(Math.abs((await total.data())[0]! - (ce + kd + 0.25 * 2.5)) < 1e-5);
  assert.throws(() => distillationLoss(heads, labels, [teacher], objective), /no feature targets/);
  assert.throws(
    () => objectiveFor('tokens', 1, { features: { teacher: 1, weight: 1 } }),
    /features.teacher: 1/,
  );
  assert.throws(() => objectiveFor('tokens', 1, { features: { teacher: 0, weight: 0 } }), /features.weight/);
});

test('a ViT with featureChannels: the same heads, projected patch tokens in grid order, gradients match finite differences', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const config = { patch: 7, dim: 8, depth: 1, heads: 2, mlpRatio: 2, distillTokens: 1 };
  const plain = vitModel('vit-test', config);
  const withFeatures = vitModel('vit-test', { ...config, featureChannels: 3 });
  assert.equal(withFeatures.grid, 4);
  const names = withFeatures.params.map((p) => p.name);
  assert.deepEqual(
    names.filter((n) => !plain.params.some((p) => p.name === n)),
    ['features.weight', 'features.bias'],
  );
  const p = Object.fromEntries(Object.entries(withFeatures.init(4)).map(([n, h]) => [n, fromHost(h)]));
  const rng = new Rng(9);
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * 784 }, () => rng.normal()),
    [2, 28, 28, 1],
  );
  const { heads, patches } = withFeatures.tokenOutputs(p, x, true);
  const plainHeads = plain.tokenLogits(p, x, true);
  for (let i = 0; i < 2; i++) {
    const a = await heads[i]!.data();
    const b = await plainHeads[i]!.data();
    a.forEach((v, j) => assert.ok(Math.abs(v - b[j]!) < 1e-6));
  }
  assert.ok(patches);
  assert.deepEqual(patches.shape, [2, 16, 3]);
  assert.equal(plain.tokenOutputs(p, x, true).patches, null);

  // d featureKd / d(features.weight) and d(patch.weight) against central differences (float32: loose tolerance).
  const target = tf.tensor3d(
    Float32Array.from({ length: 2 * 16 * 3 }, () => rng.normal()),
    [2, 16, 3],
  );
  const loss = (q: Record<string, tf.Tensor>) =>
    featureKd(withFeatures.tokenOutputs(q, x, true).patches as tf.Tensor3D, target);
  for (const name of ['features.weight', 'patch.weight', 'block1.attn.value.weight']) {
    const g = tf.grad((w: tf.Tensor) => loss({ ...p, [name]: w }))(p[name]!);
    const grad = await g.data();
    const base = await p[name]!.data();
    for (const i of [0, 5, base.length - 1]) {
      const at = (d: number) => {
        const v = Float32Array.from(base);
        v[i] = v[i]! + d;
        const w = tf.tensor(v, p[name]!.shape);
        const l = loss({ ...p, [name]: w });
        const out = l.dataSync()[0]!;
        tf.dispose([w, l]);
        return out;
      };
      const h = 1e-2;
      const fd = (at(h) - at(-h)) / (2 * h);
      assert.ok(
        Math.abs(fd - grad[i]!) <= 2e-3 + 2e-2 * Math.abs(fd),
        `${name}[${i}]: finite differences ${fd}, gradient ${grad[i]}`,
      );
    }
    g.dispose();
  }
});
