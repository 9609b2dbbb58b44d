/**
 * The ViT's ops and the vit-tiny student on the native TensorFlow backend (tfjs-node, built by infra/tfjs-native.sh),
 * in their own process for the reason test/ml-models-native.test.ts gives: loading tfjs-node registers the tfjs
 * union's gradients (Softmax, Erf, Concat, ...) for the whole process in place of ml/gradients.ts' ones, so this
 * checks those too against the float64 loops. LTH_NATIVE=off skips it on a machine without the native build.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { gelu, layerNorm, patchify, selfAttention } from '../ml/ops/transformer';
import { train } from '../ml/train';
import { LEARN_CONFIG } from './support/involution-reference';
import { transformerCases } from './support/vit-reference';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;
const native = () => selectBackend({ prefer: 'tensorflow', log: () => {} });

const OPS = {
  patchify,
  layerNorm: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(x, g, b),
  gelu,
  selfAttention: (x: tf.Tensor3D, w: Record<string, tf.Tensor>, heads: number) =>
    selfAttention(x, w as unknown as Parameters<typeof selfAttention>[1], heads),
};

for (const c of transformerCases(OPS)) {
  test(
    `${c.name}: matches float64 loops, forward and gradient, on the native backend`,
    { skip },
    async () => {
      await native();
      c.run();
    },
  );
}

test('vit-tiny learns MNIST (512 train / 200 test images) on the native backend', { skip }, async () => {
  await native();
  const data = {
    train: loadDataset('mnist', 'train', { limit: 512 }),
    test: loadDataset('mnist', 'test', { limit: 200 }),
  };
  const result = await train({ ...LEARN_CONFIG('vit-tiny'), iterations: 300 }, data);
  const first = result.evals[0]!;
  console.log(`native vit-tiny: test accuracy ${first.testAccuracy} -> ${result.final.testAccuracy}`);
  assert.ok(first.testAccuracy < 0.3, `untrained accuracy ${first.testAccuracy}`);
  assert.ok(result.final.testAccuracy > 0.3, `final test accuracy ${result.final.testAccuracy}`);
  assert.ok(
    result.final.testLoss < first.testLoss,
    `test loss ${first.testLoss} -> ${result.final.testLoss}`,
  );
});
