/**
 * Dropout and drop-path in the ViT student: seeded masks (the same seed gives the same step on every call, another
 * seed another mask), inverted scaling, whole residual branches dropped per sample, nothing at evaluation, and a
 * training run that resumes from any checkpoint bit-identical to one that never stopped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { vitModel } from '../ml/models';
import { dropout, dropPath } from '../ml/ops/transformer';
import { Rng } from '../ml/rng';
import { fromHost, hostBytesEqual } from '../ml/tensors';
import { stateFromTensors, stateToTensors, train, type TrainConfig, type TrainState } from '../ml/train';

const quiet = { log: () => {} };
const small = { patch: 7, dim: 16, depth: 3, heads: 2, mlpRatio: 2, distillTokens: 1 };

test('dropout: seeded, inverted (kept elements scaled by 1/(1 − rate)), the expectation kept', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const x = tf.ones([200, 50]);
  const a = await dropout(x, 0.25, 7).data();
  assert.deepEqual(a, await dropout(x, 0.25, 7).data(), 'the same seed, the same mask');
  assert.notDeepEqual(a, await dropout(x, 0.25, 8).data(), 'another seed, another mask');
  const kept = a.filter((v) => v !== 0);
  kept.forEach((v) => assert.ok(Math.abs(v - 1 / 0.75) < 1e-6));
  const fraction = kept.length / a.length;
  assert.ok(Math.abs(fraction - 0.75) < 0.02, `kept ${fraction}`);
  assert.equal(dropout(x, 0, 7), x, 'rate 0 is the identity');
  tf.dispose(x);
});

test('drop-path: a whole sample’s branch is dropped or kept (scaled)', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const branch = tf.ones([400, 5, 3]);
  const v = await dropPath(branch, 0.3, 11).data();
  let dropped = 0;
  for (let b = 0; b < 400; b++) {
    const row = Array.from(v.subarray(b * 15, (b + 1) * 15));
    const first = row[0]!;
    assert.ok(
      row.every((r) => r === first),
      `sample ${b} is all or nothing`,
    );
    if (first === 0) dropped++;
    else assert.ok(Math.abs(first - 1 / 0.7) < 1e-6);
  }
  assert.ok(Math.abs(dropped / 400 - 0.3) < 0.06, `dropped ${dropped}/400`);
  tf.dispose(branch);
});

test('a ViT with dropout and drop-path: masks from the step’s seed while training, none at evaluation', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const plain = vitModel('vit-test', small);
  const regular = vitModel('vit-test', { ...small, dropout: 0.2, dropPath: 0.3 });
  assert.deepEqual(
    regular.params.map((p) => p.name),
    plain.params.map((p) => p.name),
    'no parameters added',
  );
  const p = Object.fromEntries(Object.entries(plain.init(1)).map(([n, h]) => [n, fromHost(h)]));
  const rng = new Rng(2);
  const x = tf.tensor4d(
    Float32Array.from({ length: 8 * 784 }, () => rng.normal()),
    [8, 28, 28, 1],
  );
  const out = async (m: typeof plain, training: boolean, seed?: number) =>
    m.forward(p, x, training, seed === undefined ? undefined : { seed }).data();
  assert.deepEqual(await out(regular, false), await out(plain, false), 'evaluation draws no mask');
  assert.deepEqual(
    await out(plain, true, 3),
    await out(plain, false),
    'a model without them ignores the seed',
  );
  const s3 = await out(regular, true, 3);
  assert.deepEqual(s3, await out(regular, true, 3), 'the same step, the same masks');
  assert.notDeepEqual(s3, await out(regular, true, 4), 'another step, other masks');
  assert.notDeepEqual(s3, await out(plain, true, 3), 'training with them differs from without');
  assert.throws(() => regular.forward(p, x, true), /need the step's noise seed/);
  tf.dispose([x, ...Object.values(p)]);
});

test('training with dropout and drop-path resumes bit-identical from any checkpoint', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const model = vitModel('vit-tiny', { ...small, dropout: 0.1, dropPath: 0.2 });
  const cfg: TrainConfig = {
    model: 'vit-tiny',
    dataset: 'mnist',
    optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    batchSize: 16,
    iterations: 6,
    evalEvery: 0,
    seed: 5,
    trainLimit: 48,
    testLimit: 32,
  };
  const data = {
    train: loadDataset('mnist', 'train', { limit: 48 }),
    test: loadDataset('mnist', 'test', { limit: 32 }),
  };
  const checkpoints = new Map<number, TrainState>();
  const full = await train(cfg, data, {
    model,
    initialWeights: model.init(cfg.seed),
    checkpointEvery: 1,
    onCheckpoint: async (s) => {
      checkpoints.set(s.step, s);
    },
  });
  const plain = vitModel('vit-tiny', small);
  const without = await train(cfg, data, { model: plain, initialWeights: plain.init(cfg.seed) });
  assert.ok(
    !hostBytesEqual(
      full.state.weights['block1.mlp.fc1.weight']!,
      without.state.weights['block1.mlp.fc1.weight']!,
    ),
    'the masks change the trajectory',
  );
  for (const k of [2, 4]) {
    const { tensors, metadata } = stateToTensors(checkpoints.get(k)!);
    const resumeFrom = stateFromTensors(
      tensors,
      JSON.parse(JSON.stringify(metadata)) as Record<string, string>,
    );
    const resumed = await train(cfg, data, { model, resumeFrom });
    for (const [name, t] of Object.entries(full.state.weights))
      assert.ok(hostBytesEqual(t, resumed.state.weights[name]!), `resume from ${k}: ${name}`);
    assert.ok(Object.is(resumed.state.lastLoss, full.state.lastLoss));
  }
});
