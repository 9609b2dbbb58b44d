import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensors.js';
import { initParams } from './init.js';
import { paramGetter } from './params.js';
import { MNIST_INPUT, type ModelDef, type ModelInput, type ParamSpec } from './types.js';

function lenetParams(DIMS: readonly number[]): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (let i = 0; i < DIMS.length - 1; i++) {
    const fin = DIMS[i] as number;
    const fout = DIMS[i + 1] as number;
    const name = `fc${i + 1}`;
    out.push({
      name: `${name}.weight`,
      shape: [fin, fout],
      kind: 'weight',
      prunable: true,
      torch: { name: `${name}.weight`, layout: 'linear' },
    });
    out.push({
      name: `${name}.bias`,
      shape: [fout],
      kind: 'bias',
      prunable: false,
      torch: { name: `${name}.bias`, layout: 'as-is' },
    });
  }
  return out;
}

const param = paramGetter('lenet-300-100');

/**
 * LeNet-300-100 (LeCun et al. 1998; the lottery-ticket paper's MNIST net): the flattened image, 300, 100, the
 * classes (784-300-100-10 on MNIST), ReLU.
 */
export function lenetModel(input: ModelInput = MNIST_INPUT): ModelDef {
  const DIMS = [input.shape[0] * input.shape[1] * input.shape[2], 300, 100, input.classes] as const;
  const PARAMS = lenetParams(DIMS);
  return {
    name: 'lenet-300-100',
    inputShape: [...input.shape],
    numClasses: input.classes,
    params: PARAMS,
    init(seed: number): NamedTensors {
      return initParams(seed, PARAMS, (p) => p.shape[0] as number);
    },
    dense: {
      inputSize: DIMS[0],
      layers: DIMS.slice(1).map((_, i) => ({
        weight: `fc${i + 1}.weight`,
        bias: `fc${i + 1}.bias`,
        relu: i < DIMS.length - 2,
      })),
    },
    forward(params, x, _training) {
      return tf.tidy(() => {
        let h: tf.Tensor2D = tf.reshape(x, [-1, DIMS[0]]);
        for (let i = 1; i < DIMS.length; i++) {
          const z = tf.add(
            tf.matMul(h, param(params, `fc${i}.weight`) as tf.Tensor2D),
            param(params, `fc${i}.bias`),
          );
          h = (i < DIMS.length - 1 ? tf.relu(z) : z) as tf.Tensor2D;
        }
        return h;
      });
    },
  };
}

export const lenet300100: ModelDef = lenetModel();
