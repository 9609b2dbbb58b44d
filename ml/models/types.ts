import type * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensors.js';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** weight: drawn at random; bias: starts at 0; gain (a normalisation's scale): starts at 1. */
  kind: 'weight' | 'bias' | 'gain';
  prunable: boolean;
  /** The same parameter in the PyTorch model of this architecture (ml/export, bench/peer/lth_models.py). */
  torch: TorchParam;
}

/** A parameter's name in the PyTorch `state_dict` and how its layout maps onto PyTorch's. */
export interface TorchParam {
  name: string;
  layout: TorchLayout;
}

/**
 * How a parameter's values move between this project's layout (NHWC activations, `x @ W`) and PyTorch's
 * (NCHW, `x @ Wᵀ`):
 *   'as-is'     vectors (biases, a normalisation's gain, PyTorch's `weight`)
 *   'linear'    [in, out] → nn.Linear's [out, in]
 *   'conv'      [kh, kw, in, out] (HWIO) → nn.Conv2d's [out, in, kh, kw] (OIHW)
 *   'conv1x1'   a 1×1 convolution kept as [in, out] → [out, in, 1, 1]
 *   flattened   a dense layer after a [h, w, c] map flattened in (h, w, c) order → [out, c·h·w], the order of
 *               PyTorch's flatten of the same map in NCHW
 *   shape       the same values under PyTorch's shape (a leading broadcast axis on learned tokens)
 */
export type TorchLayout =
  'as-is' | 'linear' | 'conv' | 'conv1x1' | { flattened: [number, number, number] } | { shape: number[] };

/** The seed of one training step's random masks (the Trainer derives it from the run's seed and the step). */
export interface NoiseSeed {
  seed: number;
  /**
   * The step's noise already drawn from `seed` (ModelDef.noiseTensors), which forward then uses instead of drawing
   * it: a step that runs as a graph takes them as inputs.
   */
  tensors?: Record<string, tf.Tensor>;
}

/** What a model is built for: one example's [h, w, c] and the number of classes. */
export interface ModelInput {
  shape: readonly [number, number, number];
  classes: number;
}

/** MNIST and Fashion-MNIST: what every model is built for unless told otherwise. */
export const MNIST_INPUT: ModelInput = { shape: [28, 28, 1], classes: 10 };

export interface ModelDef {
  name: string;
  /** Shape of one example, without the batch dimension (e.g. [28, 28, 1]). */
  inputShape: number[];
  numClasses: number;
  params: ParamSpec[];
  /** Fresh parameters drawn from ml/rng.ts, so the same seed gives the same bits on every backend. */
  init(seed: number): NamedTensors;
  /**
   * x: [batch, ...inputShape] float32. Returns logits [batch, numClasses]. A model with random regularisation
   * (dropout, drop-path) draws it from `noise` while training, so that a step's masks are a pure function of the run's
   * seed and the step (exact resume); models without any ignore it.
   */
  forward(params: Record<string, tf.Tensor>, x: tf.Tensor, training: boolean, noise?: NoiseSeed): tf.Tensor2D;
  /**
   * The last feature map before the classifier, [batch, h, w, c] (the target of feature distillation), for models
   * that have one; `featureShape` is its [h, w, c].
   */
  features?(params: Record<string, tf.Tensor>, x: tf.Tensor): tf.Tensor4D;
  featureShape?: [number, number, number];
  /**
   * True when `forward` draws from the noise seed while training (dropout, drop-path): its steps then differ by more
   * than their inputs, so a step traced once may not be replayed (ml/native/traced-step.ts).
   */
  stochastic?: boolean;
  /**
   * For a stochastic model: the noise a training step of `batch` samples draws from `noise.seed`, as named tensors
   * the caller owns (the same values forward would draw). With it a stochastic model's step may run as a graph.
   */
  noiseTensors?(noise: NoiseSeed, batch: number): Record<string, tf.Tensor>;
  /**
   * For a net that is only dense layers (the flattened input, then h·W + b and ReLU, the last without): the layers,
   * which let native TensorFlow train it without the tape (ml/native/dense-step.ts). `forward` must compute
   * exactly this, as tf.add(tf.matMul(h, W), b) and tf.relu.
   */
  dense?: {
    inputSize: number;
    layers: { weight: string; bias: string; relu: boolean }[];
  };
}
