// Float64 references for the ViT's ops (ml/ops/transformer.ts): direct loops, and a check that runs an op on the
// current backend and compares its output, and its gradient, with the loop's value and the loop's own central
// differences in float64. Shared by test/ml-vit.test.ts (cpu, wasm) and test/ml-vit-native.test.ts.
import assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs-core';

import { loadDataset } from '../../ml/data';
import { Rng } from '../../ml/rng';
import { train } from '../../ml/train';
import { LEARN_CONFIG } from './involution-reference';

export interface Arg {
  shape: number[];
  data: Float64Array;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export function randomArg(rng: Rng, shape: number[], lo = -1, hi = 1): Arg {
  return { shape, data: Float64Array.from({ length: size(shape) }, () => lo + (hi - lo) * rng.float()) };
}

/** erf by its Maclaurin series: exact to ~1e-13 for |z| < 3, which is all the tests use. */
export function erf64(z: number): number {
  if (Math.abs(z) >= 3) throw new Error(`erf64: |${z}| >= 3 is outside the series' accurate range`);
  let term = z;
  let sum = z;
  for (let n = 1; n < 100; n++) {
    term *= (-z * z) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function gelu64(x: Arg): Arg {
  return { shape: x.shape, data: x.data.map((v) => 0.5 * v * (1 + erf64(v / Math.SQRT2))) };
}

export function layerNorm64(x: Arg, gain: Arg, bias: Arg, eps = 1e-5): Arg {
  const d = x.shape[x.shape.length - 1] as number;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    const row = x.data.subarray(r * d, (r + 1) * d);
    const mean = row.reduce((a, b) => a + b, 0) / d;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
    for (let i = 0; i < d; i++) {
      out[r * d + i] =
        (((row[i] as number) - mean) / Math.sqrt(variance + eps)) * (gain.data[i] as number) +
        (bias.data[i] as number);
    }
  }
  return { shape: x.shape, data: out };
}

export function patchify64(x: Arg, p: number): Arg {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const gh = h / p;
  const gw = w / p;
  const k = p * p * c;
  const out = new Float64Array(b * gh * gw * k);
  for (let n = 0; n < b; n++)
    for (let i = 0; i < gh; i++)
      for (let j = 0; j < gw; j++)
        for (let py = 0; py < p; py++)
          for (let px = 0; px < p; px++)
            for (let ch = 0; ch < c; ch++) {
              const src = ((n * h + i * p + py) * w + j * p + px) * c + ch;
              const dst = ((n * gh + i) * gw + j) * k + (py * p + px) * c + ch;
              out[dst] = x.data[src] as number;
            }
  return { shape: [b, gh * gw, k], data: out };
}

/** y[b, n, :] = x[b, n, :] @ W + bias. */
function linear64(x: Float64Array, rows: number, din: number, w: Arg, bias: Arg): Float64Array {
  const dout = w.shape[1] as number;
  const out = new Float64Array(rows * dout);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < dout; o++) {
      let s = bias.data[o] as number;
      for (let i = 0; i < din; i++) s += (x[r * din + i] as number) * (w.data[i * dout + o] as number);
      out[r * dout + o] = s;
    }
  return out;
}

/** Multi-head self-attention as in ml/ops/transformer.ts, one (image, head, query) at a time. */
export function attention64(x: Arg, w: Arg[], heads: number): Arg {
  const [b, n, d] = x.shape as [number, number, number];
  const [wq, bq, wk, bk, wv, bv, wo, bo] = w as [Arg, Arg, Arg, Arg, Arg, Arg, Arg, Arg];
  const q = linear64(x.data, b * n, d, wq, bq);
  const k = linear64(x.data, b * n, d, wk, bk);
  const v = linear64(x.data, b * n, d, wv, bv);
  const dh = d / heads;
  const mixed = new Float64Array(b * n * d);
  for (let img = 0; img < b; img++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < n; i++) {
        const scores = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let e = 0; e < dh; e++)
            s +=
              (q[(img * n + i) * d + h * dh + e] as number) * (k[(img * n + j) * d + h * dh + e] as number);
          scores[j] = s / Math.sqrt(dh);
        }
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const z = exps.reduce((a, c) => a + c, 0);
        for (let e = 0; e < dh; e++) {
          let s = 0;
          for (let j = 0; j < n; j++)
            s += ((exps[j] as number) / z) * (v[(img * n + j) * d + h * dh + e] as number);
          mixed[(img * n + i) * d + h * dh + e] = s;
        }
      }
  return { shape: [b, n, d], data: linear64(mixed, b * n, d, wo, bo) };
}

/**
 * Runs `op` on the current backend with `args` as float32 tensors and compares (1) its output with `ref`'s and (2)
 * the gradient of Σ op(args) ⊙ R, for every argument, with central differences (h = 1e-6) of Σ ref(args) ⊙ R in
 * float64. Tolerances are relative to the largest magnitude of each quantity (float32 rounding).
 */
export function checkAgainstReference(
  name: string,
  op: (...xs: tf.Tensor[]) => tf.Tensor,
  ref: (...xs: Arg[]) => Arg,
  args: Arg[],
  tol = { value: 1e-5, grad: 2e-4 },
): void {
  const rng = new Rng(1234);
  const expected = ref(...args);
  const r = randomArg(rng, expected.shape);
  const inputs = args.map((a) => tf.tensor(Float32Array.from(a.data), a.shape, 'float32'));
  const rT = tf.tensor(Float32Array.from(r.data), r.shape, 'float32');
  try {
    const got = tf.tidy(() =>
      op(...inputs)
        .dataSync()
        .slice(),
    );
    assert.equal(got.length, expected.data.length, `${name}: output size`);
    const scale = Math.max(1e-6, ...Array.from(expected.data, Math.abs));
    expected.data.forEach((v, i) =>
      assert.ok(
        Math.abs((got[i] as number) - v) <= tol.value * scale,
        `${name}: output[${i}] ${got[i]} vs float64 ${v}`,
      ),
    );
    const grads = tf.tidy(() =>
      tf
        .grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), rT)))(inputs)
        .map((g) => g.dataSync().slice()),
    );
    const dot = (y: Arg) => y.data.reduce((s, v, i) => s + v * (r.data[i] as number), 0);
    const numerics = args.map((a, k) => {
      const numeric = new Float64Array(a.data.length);
      for (let i = 0; i < a.data.length; i++) {
        const at = (delta: number) => {
          const moved = { shape: a.shape, data: a.data.slice() };
          moved.data[i] = (moved.data[i] as number) + delta;
          return dot(ref(...args.map((b, j) => (j === k ? moved : b))));
        };
        numeric[i] = (at(1e-6) - at(-1e-6)) / 2e-6;
      }
      return numeric;
    });
    // One scale for all arguments: some gradients are exactly 0 in theory (a key bias shifts every score of a
    // query alike), and float32 leaves them at rounding level of the others.
    const gScale = Math.max(1e-6, ...numerics.flatMap((n) => Array.from(n, Math.abs)));
    numerics.forEach((numeric, k) => {
      const g = grads[k] as Float32Array;
      numeric.forEach((v, i) =>
        assert.ok(
          Math.abs((g[i] as number) - v) <= tol.grad * gScale,
          `${name}: d/d arg${k}[${i}] ${g[i]} vs float64 ${v}`,
        ),
      );
    });
  } finally {
    tf.dispose([...inputs, rT]);
  }
}

/** The op cases every backend runs, with their float64 references. */
export function transformerCases(ops: {
  patchify: (x: tf.Tensor4D, p: number) => tf.Tensor;
  layerNorm: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  gelu: (x: tf.Tensor) => tf.Tensor;
  selfAttention: (x: tf.Tensor3D, w: Record<string, tf.Tensor>, heads: number) => tf.Tensor;
}): { name: string; run: () => void }[] {
  const rng = new Rng(7);
  return [
    {
      name: 'patchify 2×2 patches of 2-channel 4×6 images',
      run: () =>
        checkAgainstReference(
          'patchify',
          (x) => ops.patchify(x as tf.Tensor4D, 2),
          (x) => patchify64(x, 2),
          [randomArg(rng, [2, 4, 6, 2])],
        ),
    },
    {
      name: 'layerNorm over the last axis of [2, 3, 5]',
      run: () =>
        checkAgainstReference('layerNorm', ops.layerNorm, (x, g, b) => layerNorm64(x!, g!, b!), [
          randomArg(rng, [2, 3, 5], -2, 2),
          randomArg(rng, [5], 0.5, 1.5),
          randomArg(rng, [5]),
        ]),
    },
    {
      name: 'gelu on [-4, 4]',
      run: () => checkAgainstReference('gelu', ops.gelu, gelu64, [randomArg(rng, [3, 7], -4, 4)]),
    },
    {
      name: 'self-attention, 2 images × 5 tokens × 6 features, 2 heads',
      run: () => {
        const d = 6;
        const keys = ['query', 'queryBias', 'key', 'keyBias', 'value', 'valueBias', 'out', 'outBias'];
        const weights = keys.map((k) => randomArg(rng, k.endsWith('Bias') ? [d] : [d, d], -0.7, 0.7));
        checkAgainstReference(
          'selfAttention',
          (x, ...w) =>
            ops.selfAttention(
              x as tf.Tensor3D,
              Object.fromEntries(keys.map((k, i) => [k, w[i] as tf.Tensor])),
              2,
            ),
          (x, ...w) => attention64(x, w, 2),
          [randomArg(rng, [2, 5, d]), ...weights],
          { value: 1e-5, grad: 5e-4 },
        );
      },
    },
  ];
}

/**
 * Trains vit-tiny with LEARN_CONFIG for 300 steps on 512 MNIST images on the current backend and checks that it
 * learned: near chance before, over 30% test accuracy after (chance is 10%; a ViT has no convolutional prior and
 * needs more than 512 images to do well: 0.42-0.43 here), test loss down.
 */
export async function assertVitLearns(backend: string): Promise<void> {
  const data = {
    train: loadDataset('mnist', 'train', { limit: 512 }),
    test: loadDataset('mnist', 'test', { limit: 200 }),
  };
  const result = await train({ ...LEARN_CONFIG('vit-tiny'), iterations: 300 }, data);
  const first = result.evals[0]!;
  console.log(`${backend} vit-tiny: test accuracy ${first.testAccuracy} -> ${result.final.testAccuracy}`);
  assert.ok(first.testAccuracy < 0.3, `untrained accuracy ${first.testAccuracy}`);
  assert.ok(result.final.testAccuracy > 0.3, `final test accuracy ${result.final.testAccuracy}`);
  assert.ok(
    result.final.testLoss < first.testLoss,
    `test loss ${first.testLoss} -> ${result.final.testLoss}`,
  );
}
