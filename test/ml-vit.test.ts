/**
 * The ViT student (ml/models/vit.ts) and its ops (ml/ops/transformer.ts) on the cpu and wasm backends: each op
 * against float64 loops, forward and gradient; the model's parameters, initialisation, heads and prediction; it
 * learns MNIST. Native TensorFlow: test/ml-vit-native.test.ts (own process).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendName } from '../ml/backend';
import { getModel, vitModel } from '../ml/models';
import { gelu, layerNorm, patchify, selfAttention } from '../ml/ops/transformer';
import { Rng } from '../ml/rng';
import { fromHost, hostTensor } from '../ml/tensors';
import { assertVitLearns, transformerCases } from './support/vit-reference';

const quiet = { log: () => {} };
async function use(backend: BackendName): Promise<void> {
  await selectBackend({ prefer: backend, threads: backend === 'wasm' ? 1 : undefined, ...quiet });
}

const OPS = {
  patchify,
  layerNorm: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(x, g, b),
  gelu,
  selfAttention: (x: tf.Tensor3D, w: Record<string, tf.Tensor>, heads: number) =>
    selfAttention(x, w as unknown as Parameters<typeof selfAttention>[1], heads),
};

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  for (const c of transformerCases(OPS)) {
    test(`${c.name}: matches float64 loops, forward and gradient, on ${backend}`, async () => {
      await use(backend);
      const before = tf.memory().numTensors;
      c.run();
      assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    });
  }
}

const params = (weights: Record<string, { dtype: string }>) =>
  Object.fromEntries(
    Object.entries(weights).map(([n, t]) => [n, fromHost(t as Parameters<typeof fromHost>[0])]),
  );

test('vit-tiny: parameters, counts, kinds and initialisation', () => {
  const model = getModel('vit-tiny');
  const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
  // patch 16·64+64; tokens 1·64; position 50·64; per block 2 norms (2·128), q/k/v/out 4·(64·64+64),
  // MLP 64·128+128 + 128·64+64; final norm 128; head 64·10+10.
  const perBlock = 2 * 128 + 4 * (64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64);
  const expected = 16 * 64 + 64 + 64 + 50 * 64 + 4 * perBlock + 128 + 650;
  assert.equal(
    model.params.reduce((n, p) => n + count(p.shape), 0),
    expected,
  );
  const init = model.init(3);
  for (const p of model.params) {
    const t = init[p.name]!;
    assert.deepEqual(t.shape, p.shape, p.name);
    if (p.kind === 'gain')
      assert.ok(
        t.data.every((v) => v === 1),
        `${p.name}: ones`,
      );
    else if (p.kind === 'bias')
      assert.ok(
        t.data.every((v) => v === 0),
        `${p.name}: zeros`,
      );
    else {
      const std = Math.sqrt(Array.from(t.data).reduce((s, v) => s + v * v, 0) / t.data.length);
      assert.ok(Math.abs(std / 0.02 - 1) < 4 / Math.sqrt(2 * t.data.length), `${p.name}: std ${std}`);
    }
    assert.equal(p.prunable, p.kind === 'weight' && p.name.endsWith('.weight'), p.name);
  }
});

test('distillation tokens: one head per token; the prediction averages their probabilities (or is the class head)', async () => {
  await use('cpu');
  const config = { patch: 7, dim: 8, depth: 1, heads: 2, mlpRatio: 2, distillTokens: 2 };
  const model = vitModel('vit-test', config);
  const classOnly = vitModel('vit-test-class', { ...config, predict: 'class' });
  const rng = new Rng(5);
  const x = hostTensor(
    'float32',
    [3, 28, 28, 1],
    Float32Array.from({ length: 3 * 784 }, () => rng.float()),
  );
  tf.tidy(() => {
    const p = params(model.init(1));
    const xt = fromHost(x);
    const heads = model.tokenLogits(p, xt, false);
    assert.equal(heads.length, 3);
    for (const h of heads) assert.deepEqual(h.shape, [3, 10]);
    assert.notDeepEqual(heads[0]!.dataSync(), heads[1]!.dataSync(), 'heads differ');
    const probs = heads.map((h) => tf.softmax(h).arraySync() as number[][]);
    const got = tf.exp(model.forward(p, xt, false)).arraySync() as number[][];
    got.forEach((row, i) =>
      row.forEach((v, j) => {
        const mean = probs.reduce((s, ph) => s + ph[i]![j]!, 0) / 3;
        assert.ok(Math.abs(v - mean) < 1e-6, `p[${i}, ${j}] ${v} vs ${mean}`);
      }),
    );
    assert.deepEqual(classOnly.forward(p, xt, false).dataSync(), heads[0]!.dataSync());
  });
});

test('a ViT config that cannot work is refused, naming the field', () => {
  const base = { patch: 4, dim: 64, depth: 1, heads: 4, mlpRatio: 2, distillTokens: 0 };
  assert.throws(() => vitModel('v', { ...base, patch: 5 }), /v: patch: must divide 28/);
  assert.throws(() => vitModel('v', { ...base, heads: 3 }), /v: heads: dim must be a multiple of heads/);
  assert.throws(() => vitModel('v', { ...base, mlpRatio: 1.01 }), /mlpRatio/);
});

test('vit-tiny learns MNIST (512 train / 200 test images) on wasm', async () => {
  await use('wasm');
  await assertVitLearns('wasm');
});
