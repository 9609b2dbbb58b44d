/**
 * The exact Hessian on the project's own model families beyond dense and conv + pool (those are checked against
 * float64 references in test/ml-hessian-exact.test.ts): the involution teacher (involution, RMS norm, max-pool,
 * channels-first layout) and the ViT student (LayerNorm, GELU, softmax attention), on wasm and on native.
 *  - In second-order mode (ml/second-order.ts) the models compute with plain ops in place of their hand-written
 *    gradients: the logits and the gradient must be the same values as in training mode.
 *  - Hessian-vector products are symmetric (uᵀHw = wᵀHu): a first gradient that a second pass sees only in part
 *    (a saved intermediate acting as a constant, the failure this guards against) breaks the symmetry.
 *  - The ViT is smooth (no kinks), so its product must also agree with central differences of training-mode
 *    gradients (float32, a step of 1e-2 along the unit direction).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset, type Dataset } from '../ml/data';
import {
  classifierLoss,
  dot,
  flatten,
  gaussian,
  hessianVectorProduct,
  modelObjective,
  norm,
} from '../ml/geometry';
import { getModel, type ModelDef } from '../ml/models';
import { Rng } from '../ml/rng';
import { withSecondOrder } from '../ml/second-order';
import { namedFromHost, type NamedTensors } from '../ml/tensors';
import { batchTensors } from '../ml/train/evaluate';

const quiet = { log: () => {} };
const BACKENDS: BackendName[] = process.env.LTH_NATIVE === 'off' ? ['wasm'] : ['wasm', 'tensorflow'];

for (const backend of BACKENDS) {
  for (const name of ['involution-teacher', 'vit-tiny'] as const) {
    test(`the exact Hessian of ${name} is symmetric and its second-order forms compute the same function on ${backend}`, async () => {
      await selectBackend({ prefer: backend, ...quiet });
      const model = getModel(name);
      const data = loadDataset('mnist', 'train', { limit: 6 });
      const objective = modelObjective(model, data, { batchSize: 6 });
      try {
        const theta = flatten(objective.space, model.init(3));
        const weights = model.init(3);
        const [plain, second] = [
          gradientOf(model, data, weights, false),
          gradientOf(model, data, weights, true),
        ];
        const rel = (a: Float32Array, b: Float32Array) =>
          norm(Float64Array.from(a, (v, i) => v - (b[i] as number))) / norm(Float64Array.from(b));
        assert.ok(
          rel(second.logits, plain.logits) < 1e-5,
          `logits differ by ${rel(second.logits, plain.logits)}`,
        );
        // One vector: some gradients are zero in exact arithmetic (the attention's key bias), so per tensor the
        // relative error of rounding would mean nothing.
        const flat = (gs: Float32Array[]) => Float32Array.from(gs.flatMap((g) => Array.from(g)));
        const r = rel(flat(second.grads), flat(plain.grads));
        assert.ok(r < 1e-4, `gradients differ by ${r}`);

        const [u, w] = [gaussian(objective.space, new Rng(1)), gaussian(objective.space, new Rng(2))];
        const [hu, hw] = [
          await hessianVectorProduct(objective, theta, u),
          await hessianVectorProduct(objective, theta, w),
        ];
        const [uHw, wHu] = [dot(u, hw), dot(w, hu)];
        assert.ok(
          Math.abs(uHw - wHu) <= 1e-3 * Math.sqrt(dot(u, hu) ** 2 + dot(w, hw) ** 2),
          `uᵀHw ${uHw} vs wᵀHu ${wHu}`,
        );
        if (name === 'vit-tiny') {
          const size = norm(u);
          const unit = u.map((x) => x / size);
          const eps = 1e-2;
          const step = (s: number) => theta.map((t, i) => t + s * (unit[i] as number));
          const [plus, minus] = [
            (await objective.gradient(step(eps))).gradient,
            (await objective.gradient(step(-eps))).gradient,
          ];
          const fd = plus.map((p, i) => ((p - (minus[i] as number)) * size) / (2 * eps));
          const err = norm(hu.map((h, i) => h - (fd[i] as number))) / norm(fd);
          assert.ok(err < 2e-3, `vit-tiny: exact vs central differences ${err}`);
        }
      } finally {
        objective.dispose();
      }
    });
  }
}

/**
 * The gradient of the summed cross-entropy of `data` at `weights`, in training mode (the fused loss, the models'
 * hand-written gradients) or in second-order mode (crossEntropySum, plain forms), with the logits.
 */
function gradientOf(
  model: ModelDef,
  data: Dataset,
  weights: NamedTensors,
  secondOrder: boolean,
): { logits: Float32Array; grads: Float32Array[] } {
  return tf.tidy(() => {
    const { x, y } = batchTensors(
      model,
      data,
      Int32Array.from({ length: data.n }, (_, i) => i),
    );
    const names = model.params.map((p) => p.name);
    const params = namedFromHost(weights);
    const loss = classifierLoss((p, b) => model.forward(p, b.x, false));
    const run = () => {
      const batch = { x, y, n: data.n };
      const grads = tf.grads((...ws: tf.Tensor[]) => {
        const named: Record<string, tf.Tensor> = {};
        names.forEach((n, i) => (named[n] = ws[i] as tf.Tensor));
        return loss.lossSum(loss.forward(named, batch), batch);
      })(names.map((n) => params[n] as tf.Tensor));
      return {
        logits: model.forward(params, x, false).dataSync() as Float32Array,
        grads: grads.map((g) => g.dataSync() as Float32Array),
      };
    };
    return secondOrder ? withSecondOrder(run) : run();
  });
}
