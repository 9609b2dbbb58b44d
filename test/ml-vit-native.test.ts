/**
 * The ViT's ops and the vit-tiny student on the native TensorFlow backend (tfjs-node, built by infra/tfjs-native.sh),
 * in their own process for the reason test/ml-models-native.test.ts gives: loading tfjs-node registers the tfjs
 * union's gradients (Softmax, Erf, Concat, ...) for the whole process in place of ml/gradients.ts' ones, so this
 * checks those too against the float64 loops. LTH_NATIVE=off skips it on a machine without the native build.
 */
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { gelu, layerNorm, patchify, selfAttention } from '../ml/ops/transformer';
import { assertVitLearns, transformerCases } from './support/vit-reference';

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
  await assertVitLearns('native');
});
