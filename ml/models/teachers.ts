/**
 * Two light teachers for distillation, with different inductive biases, for 28×28×1 inputs and 10 classes.
 *
 * `cnn-teacher`: convolution (one kernel shared by all pixels, mixing channels): conv3×3(32), pool,
 * conv3×3(64), pool, FC 128-10; ReLU after every conv and hidden FC. The conv-2/conv-4 code with other widths,
 * pooling before the ReLU (the same values; see ConvNetSpec.poolBeforeRelu).
 *
 * `involution-teacher`: involution (a kernel per pixel, generated from that pixel's features, shared by the
 * channels of a group; ml/ops/involution.ts) does all the spatial mixing after a 3×3 stem:
 *   stem   conv3×3(1 → 32), max pool 2×2, ReLU                                          28×28 → 14×14×32
 *   inv1   x ← relu(pool(W1ᵀ(x + involution(x; K=3, G=4, r=4)) + b)), 1×1 32 → 64, pool    → 7×7×64
 *   inv2   x ← relu(W2ᵀ(x + involution(x; K=3, G=8, r=4)) + b), 1×1 64 → 64                 → 7×7×64
 *   head   flatten (h, w, c), FC 128 + ReLU, FC 10
 * The identity added to the involution's output (as in RedNet's residual blocks) lets a block start out as a
 * plain 1×1 convolution and learn the spatial part on top. The blocks run channels first ([C, H, W, N], see
 * ml/ops/involution.ts), from the stem's output to the head's flatten. K = 3 rather than the paper's 7 keeps
 * the cost near cnn-teacher's: involution is K² memory-bound passes over the feature map, and K = 7 in both
 * blocks made a training step 3-6x slower (ml/README.md); involutionNet() builds other sizes.
 *
 * Initialisation: Kaiming normal with fan_in (3·3·Cin for the stem, the input width otherwise; ml/models/init.ts),
 * biases zero, except the involution's span weights (C/r → G·K²), drawn with std sqrt(2 / fan_in) / K: each
 * output sums K² kernel taps times inputs, so taps of variance ~1/K² keep the block's output at its input's
 * scale (the kernel generator's RMS norm makes the taps' scale independent of x's).
 *
 * Parameters: 421,642 (cnn-teacher) and 412,270 (involution-teacher); multiply-adds per sample in the forward
 * pass: 4.24M and 1.53M (ml/README.md has the breakdown and measured speeds).
 */
import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';
import { involutionLayerCF, swapBatchAndChannels, type InvolutionOptions } from '../ops/involution.js';
import type { NamedTensors } from '../tensors.js';
import { convNet } from './conv.js';
import { initParams } from './init.js';
import { paramGetter } from './params.js';
import { MNIST_INPUT, type ModelDef, type ModelInput, type ParamSpec, type TorchLayout } from './types.js';

export const cnnTeacher = (input?: ModelInput): ModelDef =>
  convNet({ name: 'cnn-teacher', blocks: [[32], [64]], hidden: [128], poolBeforeRelu: true }, input);

export interface InvolutionBlockSpec extends InvolutionOptions {
  /** r: the kernel generator reduces C channels to C/r. */
  reduction: number;
  /** Output channels of the 1×1 convolution after the involution. */
  out: number;
  /** 2×2 max pool after the block. */
  pool: boolean;
}

export interface InvolutionNetSpec {
  name: string;
  /** Channels of the 3×3 stem convolution (followed by ReLU and a 2×2 max pool). */
  stem: number;
  blocks: InvolutionBlockSpec[];
  hidden: number[];
}

/** Kaiming std, divided by this: the span weights' initialisation (see above). */
function initDivisor(name: string, blocks: InvolutionBlockSpec[]): number {
  const m = /^inv(\d+)\.span\.weight$/.exec(name);
  return m ? (blocks[Number(m[1]) - 1] as InvolutionBlockSpec).kernelSize : 1;
}

export function involutionNet(spec: InvolutionNetSpec, input: ModelInput = MNIST_INPUT): ModelDef {
  const INPUT = input.shape;
  const params: ParamSpec[] = [];
  const fanIn = new Map<string, number>();
  // A weight has a fan-in and a PyTorch layout; a bias has neither. Names are PyTorch's too (lth_models.py).
  const add = (name: string, shape: number[], weight?: { fan: number; torch: TorchLayout }) => {
    params.push({
      name,
      shape,
      kind: weight ? 'weight' : 'bias',
      prunable: weight !== undefined,
      torch: { name, layout: weight?.torch ?? 'as-is' },
    });
    if (weight) fanIn.set(name, weight.fan);
  };
  add('stem.weight', [3, 3, INPUT[2], spec.stem], { fan: 9 * INPUT[2], torch: 'conv' });
  add('stem.bias', [spec.stem]);
  let [h, w, c] = [Math.floor(INPUT[0] / 2), Math.floor(INPUT[1] / 2), spec.stem];
  spec.blocks.forEach((b, i) => {
    const red = c / b.reduction;
    if (!Number.isInteger(red) || c % b.groups !== 0) {
      throw new Error(
        `${spec.name}: block ${i + 1}: ${c} channels, reduction ${b.reduction}, groups ${b.groups}`,
      );
    }
    const taps = b.groups * b.kernelSize * b.kernelSize;
    add(`inv${i + 1}.reduce.weight`, [c, red], { fan: c, torch: 'conv1x1' });
    add(`inv${i + 1}.reduce.bias`, [red]);
    add(`inv${i + 1}.span.weight`, [red, taps], { fan: red, torch: 'conv1x1' });
    add(`inv${i + 1}.span.bias`, [taps]);
    add(`mix${i + 1}.weight`, [c, b.out], { fan: c, torch: 'conv1x1' });
    add(`mix${i + 1}.bias`, [b.out]);
    c = b.out;
    if (b.pool) [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
  });
  const flat = h * w * c;
  const widths = [flat, ...spec.hidden, input.classes];
  for (let k = 0; k < widths.length - 1; k++) {
    add(`fc${k + 1}.weight`, [widths[k] as number, widths[k + 1] as number], {
      fan: widths[k] as number,
      torch: k === 0 ? { flattened: [h, w, c] } : 'linear',
    });
    add(`fc${k + 1}.bias`, [widths[k + 1] as number]);
  }
  const dense = widths.length - 1;

  const param = paramGetter(spec.name);
  return {
    name: spec.name,
    inputShape: [...INPUT],
    numClasses: input.classes,
    params,
    init(seed: number): NamedTensors {
      return initParams(
        seed,
        params,
        (p) => fanIn.get(p.name) as number,
        (p) => initDivisor(p.name, spec.blocks),
      );
    },
    forward(p, x, _training) {
      return tf.tidy(() => {
        const stem = tf.tidy(() => {
          const z = tf.add(
            tf.conv2d(
              tf.reshape(x, [-1, ...INPUT]) as tf.Tensor4D,
              param(p, 'stem.weight') as tf.Tensor4D,
              1,
              'same',
            ),
            param(p, 'stem.bias'),
          );
          // Pooling before the ReLU: the same values as after it, with a quarter of the ReLU's work.
          return swapBatchAndChannels(tf.relu(tf.maxPool(z as tf.Tensor4D, 2, 2, 'valid')) as tf.Tensor4D);
        });
        let a: tf.Tensor4D = stem; // [C, H, W, N]
        spec.blocks.forEach((b, i) => {
          const name = `inv${i + 1}`;
          // One tidy per block frees its temporaries at once (the tape keeps what backprop needs).
          a = tf.tidy(() => {
            const [cin, bh, bw, n] = a.shape;
            const inv = involutionLayerCF(
              a,
              {
                reduce: param(p, `${name}.reduce.weight`),
                reduceBias: param(p, `${name}.reduce.bias`),
                span: param(p, `${name}.span.weight`),
                spanBias: param(p, `${name}.span.bias`),
              },
              b,
            );
            const pixels = tf.reshape(tf.add(a, inv), [cin, bh * bw * n]);
            // 1×1 conv, channels first: Wᵀ [out, C] × [C, H·W·N]; the bias broadcasts along the pixels.
            const mixed = tf.add(
              tf.matMul(tf.transpose(param(p, `mix${i + 1}.weight`)), pixels),
              tf.reshape(param(p, `mix${i + 1}.bias`), [b.out, 1]),
            );
            const pre = tf.reshape(mixed, [b.out, bh, bw, n]) as tf.Tensor4D;
            // maxPool pools the two middle axes; here they are H and W.
            return tf.relu(b.pool ? tf.maxPool(pre, 2, 2, 'valid') : pre) as tf.Tensor4D;
          });
        });
        let f = tf.reshape(swapBatchAndChannels(a), [-1, flat]) as tf.Tensor2D;
        for (let k = 1; k <= dense; k++) {
          const z = tf.add(tf.matMul(f, param(p, `fc${k}.weight`) as tf.Tensor2D), param(p, `fc${k}.bias`));
          f = (k < dense ? tf.relu(z) : z) as tf.Tensor2D;
        }
        return f;
      });
    },
  };
}

export const involutionTeacher = (input?: ModelInput): ModelDef =>
  involutionNet(
    {
      name: 'involution-teacher',
      stem: 32,
      blocks: [
        { kernelSize: 3, groups: 4, reduction: 4, out: 64, pool: true },
        { kernelSize: 3, groups: 8, reduction: 4, out: 64, pool: false },
      ],
      hidden: [128],
    },
    input,
  );
