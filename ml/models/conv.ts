import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';
import type { NamedTensors } from '../tensors.js';
import { initParams } from './init.js';
import { paramGetter } from './params.js';
import { MNIST_INPUT, type ModelDef, type ModelInput, type ParamSpec } from './types.js';

const KERNEL = 3;
const HIDDEN = [256, 256] as const;

export interface ConvNetSpec {
  name: string;
  /** Output channels of the 3x3 convolutions; each inner list is one block, followed by a 2x2 max pool. */
  blocks: number[][];
  /** Widths of the hidden dense layers between the flattened feature map and the 10 outputs (default 256, 256). */
  hidden?: number[];
  /**
   * Max-pool before the ReLU instead of after. The two commute (ReLU is monotonic), so values and gradients are
   * the same, but the ReLU and its gradient then touch a quarter of the elements: on native TensorFlow, whose
   * ReLU gradient is several kernels per element, that is a third of cnn-teacher's step. conv-2/conv-4 keep the
   * paper's order, as measured in bench/results/backends.json.
   */
  poolBeforeRelu?: boolean;
}

interface Layout {
  params: ParamSpec[];
  /** fan_in of each weight, for Kaiming init: K*K*Cin for convolutions, the input width for dense layers. */
  fanIn: Map<string, number>;
  convs: { name: string; poolAfter: boolean }[];
  /** The last feature map's [h, w, c]. */
  map: [number, number, number];
  flat: number;
  dense: number;
}

function layout(spec: ConvNetSpec, input: ModelInput): Layout {
  const params: ParamSpec[] = [];
  const fanIn = new Map<string, number>();
  const convs: Layout['convs'] = [];
  let [h, w, c] = input.shape;
  let i = 0;
  for (const block of spec.blocks) {
    block.forEach((out, j) => {
      i++;
      const name = `conv${i}`;
      params.push({
        name: `${name}.weight`,
        shape: [KERNEL, KERNEL, c, out],
        kind: 'weight',
        prunable: true,
        torch: { name: `convs.${i - 1}.weight`, layout: 'conv' },
      });
      params.push({
        name: `${name}.bias`,
        shape: [out],
        kind: 'bias',
        prunable: false,
        torch: { name: `convs.${i - 1}.bias`, layout: 'as-is' },
      });
      fanIn.set(`${name}.weight`, KERNEL * KERNEL * c);
      convs.push({ name, poolAfter: j === block.length - 1 });
      c = out;
    });
    // 'valid' 2x2 pooling floors odd sizes (28 -> 14 -> 7 -> 3 for conv-6 on MNIST), as torch's MaxPool2d(2).
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  const flat = h * w * c;
  if (flat === 0) throw new Error(`${spec.name}: a ${input.shape.join('×')} input pools away to nothing`);
  const widths = [flat, ...(spec.hidden ?? HIDDEN), input.classes];
  for (let k = 0; k < widths.length - 1; k++) {
    const name = `fc${k + 1}`;
    params.push({
      name: `${name}.weight`,
      shape: [widths[k] as number, widths[k + 1] as number],
      kind: 'weight',
      prunable: true,
      // The first dense layer reads the feature map flattened (h, w, c); PyTorch flattens NCHW (c, h, w).
      torch: { name: `fcs.${k}.weight`, layout: k === 0 ? { flattened: [h, w, c] } : 'linear' },
    });
    params.push({
      name: `${name}.bias`,
      shape: [widths[k + 1] as number],
      kind: 'bias',
      prunable: false,
      torch: { name: `fcs.${k}.bias`, layout: 'as-is' },
    });
    fanIn.set(`${name}.weight`, widths[k] as number);
  }
  return { params, fanIn, convs, map: [h, w, c], flat, dense: widths.length - 1 };
}

/**
 * Frankle & Carbin's Conv-2/4/6 family (VGG-like: 3x3 'same' convolutions, 2x2 max pooling, FC 256-256-10, ReLU),
 * sized for 28x28x1 inputs; other block and dense widths give other nets of the same kind (the CNN teacher). NHWC; conv weights [3, 3, Cin, Cout]; dense weights [in, out] (x @ W); the feature
 * map is flattened in (h, w, c) order. Convolution and pooling run on tf.conv2d / tf.maxPool, whose gradients
 * ml/gradients.ts builds from kernels every backend has (see ml/ops/conv.ts).
 */
export function convNet(spec: ConvNetSpec, input: ModelInput = MNIST_INPUT): ModelDef {
  const { params, fanIn, convs, map, flat, dense } = layout(spec, input);
  const param = paramGetter(spec.name);
  /** The convolutional blocks: [B, h, w, c] after the last block's pool and ReLU. */
  const featureMap = (p: Record<string, tf.Tensor>, x: tf.Tensor): tf.Tensor4D =>
    tf.tidy(() => {
      let h = tf.reshape(x, [-1, ...input.shape]) as tf.Tensor4D;
      for (const c of convs) {
        // Per-layer tidy frees each layer's temporaries at once (the tape keeps what backprop needs), which
        // bounds peak memory when evaluating a 1000-image batch of 28x28x64 activations.
        h = tf.tidy(() => {
          const z = tf.add(
            tf.conv2d(h, param(p, `${c.name}.weight`) as tf.Tensor4D, 1, 'same'),
            param(p, `${c.name}.bias`),
          );
          if (!c.poolAfter) return tf.relu(z) as tf.Tensor4D;
          return spec.poolBeforeRelu
            ? (tf.relu(tf.maxPool(z as tf.Tensor4D, 2, 2, 'valid')) as tf.Tensor4D)
            : tf.maxPool(tf.relu(z) as tf.Tensor4D, 2, 2, 'valid');
        });
      }
      return h;
    });
  return {
    name: spec.name,
    inputShape: [...input.shape],
    numClasses: input.classes,
    params,
    featureShape: map,
    init(seed: number): NamedTensors {
      return initParams(seed, params, (p) => fanIn.get(p.name) as number);
    },
    features: featureMap,
    forward(p, x, _training) {
      return tf.tidy(() => {
        let f = tf.reshape(featureMap(p, x), [-1, flat]) as tf.Tensor2D;
        for (let k = 1; k <= dense; k++) {
          const z = tf.add(tf.matMul(f, param(p, `fc${k}.weight`) as tf.Tensor2D), param(p, `fc${k}.bias`));
          f = (k < dense ? tf.relu(z) : z) as tf.Tensor2D;
        }
        return f;
      });
    },
  };
}

/** Frankle & Carbin's Conv-2, Conv-4 and Conv-6: 2, 4 or 6 convolutions in blocks of two (64, 128, 256). */
export const CONV_NETS = {
  'conv-2': { name: 'conv-2', blocks: [[64, 64]] },
  'conv-4': {
    name: 'conv-4',
    blocks: [
      [64, 64],
      [128, 128],
    ],
  },
  'conv-6': {
    name: 'conv-6',
    blocks: [
      [64, 64],
      [128, 128],
      [256, 256],
    ],
  },
} as const satisfies Record<string, ConvNetSpec>;

const convSpec = (s: (typeof CONV_NETS)[keyof typeof CONV_NETS]): ConvNetSpec => ({
  name: s.name,
  blocks: s.blocks.map((b) => [...b]),
});

export const conv2 = (input?: ModelInput): ModelDef => convNet(convSpec(CONV_NETS['conv-2']), input);
export const conv4 = (input?: ModelInput): ModelDef => convNet(convSpec(CONV_NETS['conv-4']), input);
export const conv6 = (input?: ModelInput): ModelDef => convNet(convSpec(CONV_NETS['conv-6']), input);
