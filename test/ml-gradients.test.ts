import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../ml/backend';
import { REGISTERED_GRADIENT_KERNELS } from '../ml/gradients';
import { Rng } from '../ml/rng';
import { crossEntropy } from '../ml/train';

type Fn = (...xs: tf.Tensor[]) => tf.Tensor;

function rand(rng: Rng, shape: number[], lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.float()),
    shape,
  );
}

/** Checks tf.grads of sum(f(xs) * R) against central differences of the same scalar. */
function checkGrad(name: string, f: Fn, inputs: tf.Tensor[], eps = 1e-2, tol = 2e-3): void {
  const rng = new Rng(99);
  const outShape = tf.tidy(() => f(...inputs).shape);
  const r = rand(rng, outShape);
  const scalar = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r));
  const grads = tf.tidy(() =>
    tf
      .grads(scalar)(inputs)
      .map((g) => g.arraySync()),
  );
  inputs.forEach((x, k) => {
    const base = x.dataSync().slice();
    const analytic = (grads[k] as number[] | number[][]).flat(Infinity as 1) as number[];
    assert.equal(analytic.length, base.length, `${name}: gradient ${k} has the input's size`);
    for (let i = 0; i < base.length; i++) {
      const at = (delta: number) =>
        tf.tidy(() => {
          const p = base.slice();
          p[i] = (p[i] as number) + delta;
          const xs = inputs.map((y, j) => (j === k ? tf.tensor(p, x.shape) : y));
          return scalar(...xs).dataSync()[0] as number;
        });
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      const a = analytic[i] as number;
      assert.ok(
        Math.abs(a - numeric) <= tol * Math.max(1, Math.abs(numeric)),
        `${name}: d/d input${k}[${i}] analytic ${a} vs numeric ${numeric}`,
      );
    }
  });
  tf.dispose(r);
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  test(`registered gradients match finite differences on ${backend}`, async () => {
    await selectBackend({ prefer: backend, threads: backend === 'wasm' ? 1 : undefined, log: () => {} });
    const rng = new Rng(1);
    const before = tf.memory().numTensors;
    const a34 = rand(rng, [3, 4]);
    const b4 = rand(rng, [4]);
    const b14 = rand(rng, [1, 4]);
    const a31 = rand(rng, [3, 1]);
    const pos = rand(rng, [3, 4], 0.5, 2);
    // Keep relu inputs away from the kink, where finite differences are meaningless.
    const away = tf.tensor(
      Float32Array.from({ length: 12 }, (_, i) => (i % 2 ? 1 : -1) * (0.2 + 0.1 * i)),
      [3, 4],
    );
    checkGrad('add broadcast', (x, y) => tf.add(x, y), [a34, b4]);
    checkGrad('add broadcast both', (x, y) => tf.add(x, y), [a31, b14]);
    checkGrad('sub broadcast', (x, y) => tf.sub(x, y), [a34, b14]);
    checkGrad('mul broadcast', (x, y) => tf.mul(x, y), [a34, b4]);
    checkGrad('neg', (x) => tf.neg(x), [a34]);
    checkGrad('sum axis', (x) => tf.sum(x, 1), [a34]);
    checkGrad('sum keepDims', (x) => tf.sum(x, 0, true), [a34]);
    checkGrad('sum all', (x) => tf.sum(x), [a34]);
    checkGrad('mean axis', (x) => tf.mean(x, 0), [a34]);
    checkGrad('mean all', (x) => tf.mean(x), [a34]);
    checkGrad('reshape', (x) => tf.reshape(x, [2, 6]), [a34]);
    checkGrad('relu', (x) => tf.relu(x), [away]);
    checkGrad('exp', (x) => tf.exp(x), [a34]);
    checkGrad('log', (x) => tf.log(x), [pos]);
    checkGrad('square', (x) => tf.square(x), [a34]);
    checkGrad('rsqrt', (x) => tf.rsqrt(x), [pos]);
    checkGrad('slice', (x) => tf.slice(x, [1, 1], [2, 2]), [a34]);
    checkGrad('slice to the end', (x) => tf.slice(x, [0, 2], [-1, -1]), [a34]);
    checkGrad('transpose', (x) => tf.transpose(x), [a34]);
    const a234 = rand(rng, [2, 3, 4]);
    checkGrad('transpose rank 3', (x) => tf.transpose(x, [1, 2, 0]), [a234]);
    const m23 = rand(rng, [2, 3]);
    const m34 = rand(rng, [3, 4]);
    const m32 = rand(rng, [3, 2]);
    const m43 = rand(rng, [4, 3]);
    checkGrad('matMul', (x, y) => tf.matMul(x, y), [m23, m34]);
    checkGrad('matMul transposeB', (x, y) => tf.matMul(x, y, false, true), [m23, m43]);
    checkGrad('matMul transposeA', (x, y) => tf.matMul(x, y, true, false), [m32, m34]);
    checkGrad('matMul both', (x, y) => tf.matMul(x, y, true, true), [m32, m43]);
    checkGrad('batched matMul', (x, y) => tf.matMul(x, y), [rand(rng, [2, 2, 3]), rand(rng, [2, 3, 2])]);
    checkGrad('erf', (x) => tf.erf(x), [a34]);
    checkGrad('softmax', (x) => tf.softmax(x), [a34]);
    checkGrad('softmax rank 3', (x) => tf.softmax(x), [a234]);
    checkGrad('concat axis 1', (x, y) => tf.concat([x, y], 1), [a34, rand(rng, [3, 2])]);
    checkGrad('concat axis 0', (x, y) => tf.concat([x, y], 0), [a34, b14]);
    const labels = tf.cast(tf.oneHot(tf.tensor1d([1, 0, 3], 'int32'), 4), 'float32');
    checkGrad('softmax cross-entropy', (x) => crossEntropy(x as tf.Tensor2D, labels as tf.Tensor2D), [a34]);
    tf.dispose([a34, b4, b14, a31, pos, away, a234, m23, m34, m32, m43, labels]);
    assert.ok(
      tf.memory().numTensors <= before + 5,
      'gradient checks leak no tensors beyond the batched inputs',
    );
  });
}

test('every kernel we register has a gradient in the registry', () => {
  for (const k of REGISTERED_GRADIENT_KERNELS) assert.ok(tf.getGradient(k), k);
});
