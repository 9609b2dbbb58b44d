/**
 * Involution written out as plain nested loops in float64 (ml/ops/involution.ts' definition, term by term), and
 * the checks of ml/ops/involution.ts against it that test/ml-involution.test.ts runs on cpu and wasm and
 * test/ml-involution-native.test.ts on native TensorFlow.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  INVOLUTION_RMS_EPS,
  involution,
  involutionKernel,
  involutionLayer,
  type InvolutionWeights,
} from '../../ml/ops/involution';
import { Rng } from '../../ml/rng';
import { loadDataset, type Dataset } from '../../ml/data';
import { train, type TrainConfig } from '../../ml/train';
import { assertClose } from './assert-close';

export interface Case {
  label: string;
  n: number;
  h: number;
  w: number;
  c: number;
  groups: number;
  kernelSize: number;
  /** C / r: width of the kernel generator's hidden layer. */
  hidden: number;
}

export const CASES: Case[] = [
  { label: 'N=2 H=W=5 C=4 G=2 K=3', n: 2, h: 5, w: 5, c: 4, groups: 2, kernelSize: 3, hidden: 2 },
  {
    label: 'N=1 H=4 W=6 C=6 G=3 K=5 (kernel wider than half the image)',
    n: 1,
    h: 4,
    w: 6,
    c: 6,
    groups: 3,
    kernelSize: 5,
    hidden: 3,
  },
  { label: 'N=3 H=3 W=2 C=2 G=1 K=1', n: 3, h: 3, w: 2, c: 2, groups: 1, kernelSize: 1, hidden: 2 },
  {
    label: 'N=1 H=W=3 C=3 G=3 K=3 (one channel per group)',
    n: 1,
    h: 3,
    w: 3,
    c: 3,
    groups: 3,
    kernelSize: 3,
    hidden: 1,
  },
];

const taps = (c: Case) => c.groups * c.kernelSize * c.kernelSize;

export function randArray(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.float());
}

/** Calls f(n, h, w, ch, i, j, xIndex, kernelIndex, yIndex) for every tap whose input pixel is inside x. */
function forEachTap(c: Case, f: (xi: number, ki: number, yi: number) => void): void {
  const { n: N, h: H, w: W, c: C, groups: G, kernelSize: K } = c;
  const p = (K - 1) / 2;
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let ch = 0; ch < C; ch++)
          for (let i = 0; i < K; i++)
            for (let j = 0; j < K; j++) {
              const [hh, ww] = [h + i - p, w + j - p];
              if (hh < 0 || hh >= H || ww < 0 || ww >= W) continue;
              const g = Math.floor(ch / (C / G));
              f(
                ((n * H + hh) * W + ww) * C + ch,
                ((n * H + h) * W + w) * G * K * K + g * K * K + i * K + j,
                ((n * H + h) * W + w) * C + ch,
              );
            }
}

/** y[n,h,w,c] = Σ_ij kernel[n,h,w, g(c)·K² + i·K + j] · x[n, h+i−p, w+j−p, c]. */
export function aggregateLoop(c: Case, x: ArrayLike<number>, kernel: ArrayLike<number>): Float64Array {
  const y = new Float64Array(c.n * c.h * c.w * c.c);
  forEachTap(c, (xi, ki, yi) => (y[yi] = (y[yi] as number) + (kernel[ki] as number) * (x[xi] as number)));
  return y;
}

/** Gradients of Σ dy · aggregateLoop(x, kernel), by the product rule on every term. */
export function aggregateGradLoop(
  c: Case,
  x: ArrayLike<number>,
  kernel: ArrayLike<number>,
  dy: ArrayLike<number>,
): { dx: Float64Array; dk: Float64Array } {
  const dx = new Float64Array(x.length);
  const dk = new Float64Array(kernel.length);
  forEachTap(c, (xi, ki, yi) => {
    dx[xi] = (dx[xi] as number) + (dy[yi] as number) * (kernel[ki] as number);
    dk[ki] = (dk[ki] as number) + (dy[yi] as number) * (x[xi] as number);
  });
  return { dx, dk };
}

export interface HostWeights {
  reduce: ArrayLike<number>; // [C, hidden]
  reduceBias: ArrayLike<number>; // [hidden]
  span: ArrayLike<number>; // [hidden, G·K²]
  spanBias: ArrayLike<number>; // [G·K²]
}

/** kernel[p, o] = Σ_r relu(rms(x[p] · reduce + reduceBias))[r] · span[r, o] + spanBias[o], per pixel p. */
export function kernelLoop(c: Case, x: ArrayLike<number>, wts: HostWeights): Float64Array {
  const pixels = c.n * c.h * c.w;
  const o = taps(c);
  const kernel = new Float64Array(pixels * o);
  const pre = new Float64Array(c.hidden);
  for (let p = 0; p < pixels; p++) {
    let sq = 0;
    for (let r = 0; r < c.hidden; r++) {
      let s = wts.reduceBias[r] as number;
      for (let ch = 0; ch < c.c; ch++)
        s += (x[p * c.c + ch] as number) * (wts.reduce[ch * c.hidden + r] as number);
      pre[r] = s;
      sq += s * s;
    }
    const scale = 1 / Math.sqrt(sq / c.hidden + INVOLUTION_RMS_EPS);
    for (let k = 0; k < o; k++) {
      let s = wts.spanBias[k] as number;
      for (let r = 0; r < c.hidden; r++)
        s += Math.max(0, (pre[r] as number) * scale) * (wts.span[r * o + k] as number);
      kernel[p * o + k] = s;
    }
  }
  return kernel;
}

export function layerLoop(c: Case, x: ArrayLike<number>, wts: HostWeights): Float64Array {
  return aggregateLoop(c, x, kernelLoop(c, x, wts));
}

/** The aggregation (forward, dx, dkernel) against the loops, on the current backend. */
export function checkAggregation(c: Case, seed: number): void {
  const rng = new Rng(seed);
  const x = randArray(rng, c.n * c.h * c.w * c.c);
  const kernel = randArray(rng, c.n * c.h * c.w * taps(c));
  const dy = randArray(rng, x.length);
  const opts = { kernelSize: c.kernelSize, groups: c.groups };
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.c]);
    const kt = tf.tensor4d(kernel, [c.n, c.h, c.w, taps(c)]);
    const dyt = tf.tensor4d(dy, [c.n, c.h, c.w, c.c]);
    const y = involution(xt, kt, opts);
    assert.deepEqual(y.shape, [c.n, c.h, c.w, c.c]);
    assertClose(`${c.label} y`, y.dataSync(), aggregateLoop(c, x, kernel), 1e-5);
    const [gx, gk] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(involution(a as tf.Tensor4D, b as tf.Tensor4D, opts), dyt)),
    )([xt, kt]);
    const ref = aggregateGradLoop(c, x, kernel, dy);
    assertClose(`${c.label} dx`, (gx as tf.Tensor).dataSync(), ref.dx, 1e-5);
    assertClose(`${c.label} dkernel`, (gk as tf.Tensor).dataSync(), ref.dk, 1e-5);
  });
  assert.equal(tf.memory().numTensors, before, `${c.label}: no tensors leak`);
}

/**
 * The whole layer (kernel generation with its RMS norm, then aggregation): forward against layerLoop, the
 * kernel against kernelLoop, and the gradients with respect to x and all four weights against central finite
 * differences of layerLoop in float64.
 */
export function checkLayer(c: Case, seed: number): void {
  const rng = new Rng(seed);
  const o = taps(c);
  const host = {
    x: randArray(rng, c.n * c.h * c.w * c.c),
    reduce: randArray(rng, c.c * c.hidden),
    reduceBias: randArray(rng, c.hidden, -0.5, 0.5),
    span: randArray(rng, c.hidden * o),
    spanBias: randArray(rng, o, -0.5, 0.5),
  };
  const shapes: Record<keyof typeof host, number[]> = {
    x: [c.n, c.h, c.w, c.c],
    reduce: [c.c, c.hidden],
    reduceBias: [c.hidden],
    span: [c.hidden, o],
    spanBias: [o],
  };
  const names = Object.keys(host) as (keyof typeof host)[];
  const dy = randArray(rng, c.n * c.h * c.w * c.c);
  const opts = { kernelSize: c.kernelSize, groups: c.groups };
  const weightsOf = (ts: Record<keyof typeof host, tf.Tensor>): InvolutionWeights => ({
    reduce: ts.reduce,
    reduceBias: ts.reduceBias,
    span: ts.span,
    spanBias: ts.spanBias,
  });
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const ts = Object.fromEntries(names.map((k) => [k, tf.tensor(host[k], shapes[k])])) as Record<
      keyof typeof host,
      tf.Tensor
    >;
    const x = ts.x as tf.Tensor4D;
    assertClose(
      `${c.label} kernel`,
      involutionKernel(x, weightsOf(ts), opts).dataSync(),
      kernelLoop(c, host.x, host),
      1e-5,
    );
    assertClose(
      `${c.label} layer y`,
      involutionLayer(x, weightsOf(ts), opts).dataSync(),
      layerLoop(c, host.x, host),
      1e-5,
    );
    const dyt = tf.tensor4d(dy, shapes.x as [number, number, number, number]);
    const grads = tf.grads((...args: tf.Tensor[]) => {
      const m = Object.fromEntries(names.map((k, i) => [k, args[i]])) as Record<keyof typeof host, tf.Tensor>;
      return tf.sum(tf.mul(involutionLayer(m.x as tf.Tensor4D, weightsOf(m), opts), dyt));
    })(names.map((k) => ts[k]));
    // Central differences of Σ dy · layerLoop in float64: the step is small enough for 1e-6 accuracy and the
    // chance that it crosses a ReLU kink is negligible with these random inputs.
    const eps = 1e-6;
    const objective = (h: typeof host) => {
      const y = layerLoop(c, h.x, h);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += (y[i] as number) * (dy[i] as number);
      return s;
    };
    names.forEach((k, gi) => {
      const base = Float64Array.from(host[k]);
      const numeric = new Float64Array(base.length);
      for (let i = 0; i < base.length; i++) {
        const at = (d: number) => {
          const v = Float64Array.from(base);
          v[i] = (v[i] as number) + d;
          return objective({ ...host, [k]: v });
        };
        numeric[i] = (at(eps) - at(-eps)) / (2 * eps);
      }
      assertClose(`${c.label} d/d${k}`, (grads[gi] as tf.Tensor).dataSync(), numeric, 2e-4);
    });
  });
  assert.equal(tf.memory().numTensors, before, `${c.label}: no tensors leak`);
}

/**
 * 512 training images, 200 test images, Adam: 150 steps of 32 (about 9 epochs of the subset). Chance is 10%; the
 * cnn-teacher reaches 94% and the involution-teacher 84.5% (the same on wasm and native).
 */
export const LEARN_CONFIG = (model: string): TrainConfig => ({
  model,
  dataset: 'mnist',
  optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  batchSize: 32,
  iterations: 150,
  evalEvery: 0,
  seed: 1,
});

export const TEACHERS = ['cnn-teacher', 'involution-teacher'];

let learnData: { train: Dataset; test: Dataset } | null = null;

/**
 * Trains teacher `name` with LEARN_CONFIG on 512 MNIST images on the current backend and checks that it learned:
 * near chance before, over 75% test accuracy after, test loss down at least threefold.
 */
export async function assertTeacherLearns(name: string, backend: string): Promise<void> {
  learnData ??= {
    train: loadDataset('mnist', 'train', { limit: 512 }),
    test: loadDataset('mnist', 'test', { limit: 200 }),
  };
  const result = await train(LEARN_CONFIG(name), learnData);
  const first = result.evals[0]!;
  assert.ok(first.testAccuracy < 0.3, `untrained accuracy ${first.testAccuracy}`);
  assert.ok(result.final.testAccuracy > 0.75, `final test accuracy ${result.final.testAccuracy}`);
  assert.ok(
    result.final.testLoss < first.testLoss / 3,
    `test loss ${first.testLoss} -> ${result.final.testLoss}`,
  );
  console.log(
    `${backend} ${name}: test accuracy ${first.testAccuracy} -> ${result.final.testAccuracy}, ` +
      `train accuracy ${result.final.trainAccuracy}`,
  );
}
