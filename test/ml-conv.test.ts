/**
 * Convolution and max pooling train on every backend: forward passes against direct loops and the cpu backend's
 * tf.conv2d, the gradients ml/gradients.ts registers for Conv2D and MaxPool against direct loops, finite
 * differences and (on cpu) tfjs' own backprop kernels, and the max-pool tie rule of each backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '../ml/backend';
import { REGISTERED_GRADIENT_KERNELS } from '../ml/gradients';
import { conv2dFilterGrad, conv2dInputGrad, conv2dPadding, type Padding4 } from '../ml/ops/conv';
import { Rng } from '../ml/rng';
import { assertClose } from './support/assert-close';

const BACKENDS: BackendName[] = ['cpu', 'wasm'];
const quiet = { log: () => {} };

async function use(backend: BackendName): Promise<void> {
  await selectBackend({ prefer: backend, threads: backend === 'wasm' ? 1 : undefined, ...quiet });
}

type Shape4 = [number, number, number, number];

function randArray(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.float());
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---- direct loops, in float64: the reference the kernels are checked against -------------------------------

function idx4(s: Shape4, a: number, b: number, c: number, d: number): number {
  return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

function convOutShape(xs: Shape4, ws: Shape4, p: Padding4): Shape4 {
  return [xs[0], xs[1] + p.top + p.bottom - ws[0] + 1, xs[2] + p.left + p.right - ws[1] + 1, ws[3]];
}

/** Visits every (output pixel, kernel tap) pair whose input pixel lies inside x: the whole of a stride-1 conv. */
function forEachTap(
  xs: Shape4,
  ws: Shape4,
  p: Padding4,
  f: (xi: number, wi: number, yi: number) => void,
): void {
  const ys = convOutShape(xs, ws, p);
  for (let n = 0; n < xs[0]; n++)
    for (let oh = 0; oh < ys[1]; oh++)
      for (let ow = 0; ow < ys[2]; ow++)
        for (let kh = 0; kh < ws[0]; kh++)
          for (let kw = 0; kw < ws[1]; kw++) {
            const ih = oh + kh - p.top;
            const iw = ow + kw - p.left;
            if (ih < 0 || ih >= xs[1] || iw < 0 || iw >= xs[2]) continue;
            for (let ci = 0; ci < xs[3]; ci++)
              for (let co = 0; co < ws[3]; co++) {
                f(idx4(xs, n, ih, iw, ci), idx4(ws, kh, kw, ci, co), idx4(ys, n, oh, ow, co));
              }
          }
}

function convLoop(x: Float32Array, xs: Shape4, w: Float32Array, ws: Shape4, p: Padding4): Float64Array {
  const y = new Float64Array(size(convOutShape(xs, ws, p)));
  forEachTap(xs, ws, p, (xi, wi, yi) => (y[yi] = (y[yi] as number) + (x[xi] as number) * (w[wi] as number)));
  return y;
}

function convGradLoop(
  x: Float32Array,
  xs: Shape4,
  w: Float32Array,
  ws: Shape4,
  dy: Float32Array,
  p: Padding4,
): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(size(xs));
  const dw = new Float64Array(size(ws));
  forEachTap(xs, ws, p, (xi, wi, yi) => {
    dx[xi] = (dx[xi] as number) + (dy[yi] as number) * (w[wi] as number);
    dw[wi] = (dw[wi] as number) + (dy[yi] as number) * (x[xi] as number);
  });
  return { dx, dw };
}

/** 'valid' max pooling; the gradient goes to the maximum of each window (inputs here have no ties). */
function maxPoolLoop(
  x: Float32Array,
  xs: Shape4,
  f: number,
  s: number,
  dy?: Float32Array,
): { y: Float64Array; dx: Float64Array; ys: Shape4 } {
  const ys: Shape4 = [xs[0], Math.floor((xs[1] - f) / s) + 1, Math.floor((xs[2] - f) / s) + 1, xs[3]];
  const y = new Float64Array(size(ys));
  const dx = new Float64Array(size(xs));
  for (let n = 0; n < xs[0]; n++)
    for (let oh = 0; oh < ys[1]; oh++)
      for (let ow = 0; ow < ys[2]; ow++)
        for (let c = 0; c < xs[3]; c++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < f; i++)
            for (let j = 0; j < f; j++) {
              const k = idx4(xs, n, oh * s + i, ow * s + j, c);
              if ((x[k] as number) > best) [best, at] = [x[k] as number, k];
            }
          const yi = idx4(ys, n, oh, ow, c);
          y[yi] = best;
          if (dy) dx[at] = (dx[at] as number) + (dy[yi] as number);
        }
  return { y, dx, ys };
}

/** The same check as test/ml-gradients.test.ts: tf.grads of sum(f(xs) * R) against central differences. */
function checkGrad(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  eps = 1e-2,
  tol = 2e-3,
) {
  const rng = new Rng(99);
  const outShape = tf.tidy(() => f(...inputs).shape);
  const r = tf.tensor(randArray(rng, size(outShape)), outShape);
  const scalar = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r));
  const grads = tf.tidy(() =>
    tf
      .grads(scalar)(inputs)
      .map((g) => g.dataSync().slice()),
  );
  inputs.forEach((x, k) => {
    const base = x.dataSync().slice();
    const analytic = grads[k] as Float32Array;
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

// ---- convolution ---------------------------------------------------------------------------------------------

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
interface ConvCase {
  label: string;
  xs: Shape4;
  ws: Shape4;
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { label: '3x3 same', xs: [2, 5, 6, 3], ws: [3, 3, 3, 4], pad: 'same' },
  { label: '3x3 valid', xs: [2, 5, 6, 3], ws: [3, 3, 3, 4], pad: 'valid' },
  { label: '5x3 same', xs: [1, 6, 5, 2], ws: [5, 3, 2, 3], pad: 'same' },
  {
    label: '3x3 explicit',
    xs: [2, 4, 5, 2],
    ws: [3, 3, 2, 3],
    pad: [
      [0, 0],
      [2, 0],
      [0, 1],
      [0, 0],
    ],
  },
  { label: '1 input channel', xs: [3, 7, 7, 1], ws: [3, 3, 1, 5], pad: 'same' },
];

function convCaseData(c: ConvCase, seed: number) {
  const rng = new Rng(seed);
  const x = randArray(rng, size(c.xs));
  const w = randArray(rng, size(c.ws));
  const p = conv2dPadding(c.xs, c.ws, { strides: 1, pad: c.pad });
  const dy = randArray(rng, size(convOutShape(c.xs, c.ws, p)));
  return { x, w, p, dy };
}

test('conv2d forward matches a direct loop and the cpu backend on every backend', async () => {
  const cpuOut = new Map<string, ArrayLike<number>>();
  for (const backend of BACKENDS) {
    await use(backend);
    const before = tf.memory().numTensors;
    CONV_CASES.forEach((c, k) => {
      const { x, w, p } = convCaseData(c, k + 1);
      const got = tf.tidy(() =>
        tf.conv2d(tf.tensor4d(x, c.xs), tf.tensor4d(w, c.ws), 1, c.pad).dataSync().slice(),
      );
      assertClose(`${backend} ${c.label} vs loop`, got, convLoop(x, c.xs, w, c.ws, p), 1e-5);
      if (backend === 'cpu') cpuOut.set(c.label, got);
      else assertClose(`${backend} ${c.label} vs cpu`, got, cpuOut.get(c.label) as ArrayLike<number>, 1e-5);
    });
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  }
});

for (const backend of BACKENDS) {
  test(`Conv2D gradients (input and filter) match a direct loop on ${backend}, through tf.grads and both input paths`, async () => {
    await use(backend);
    const before = tf.memory().numTensors;
    CONV_CASES.forEach((c, k) => {
      const { x, w, p, dy } = convCaseData(c, k + 1);
      const ref = convGradLoop(x, c.xs, w, c.ws, dy, p);
      const [gx, gw] = tf.tidy(() => {
        const r = tf.tensor(dy, convOutShape(c.xs, c.ws, p));
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, c.pad), r));
        return tf
          .grads(f)([tf.tensor4d(x, c.xs), tf.tensor4d(w, c.ws)])
          .map((g) => g.dataSync().slice());
      });
      assertClose(`${c.label}: dx`, gx as Float32Array, ref.dx, 1e-5);
      assertClose(`${c.label}: dw`, gw as Float32Array, ref.dw, 1e-5);
      // The registered gradient picks one input path per backend; both must be right everywhere.
      for (const via of ['conv', 'kernel'] as const) {
        const dx = tf.tidy(() =>
          conv2dInputGrad(tf.tensor4d(dy, convOutShape(c.xs, c.ws, p)), tf.tensor4d(w, c.ws), c.xs, p, via)
            .dataSync()
            .slice(),
        );
        assertClose(`${c.label}: dx via ${via}`, dx, ref.dx, 1e-5);
      }
      const dw = tf.tidy(() =>
        conv2dFilterGrad(tf.tensor4d(x, c.xs), tf.tensor4d(dy, convOutShape(c.xs, c.ws, p)), c.ws, p)
          .dataSync()
          .slice(),
      );
      assertClose(`${c.label}: dw direct`, dw, ref.dw, 1e-5);
    });
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  });

  test(`Conv2D and MaxPool gradients match finite differences on ${backend}`, async () => {
    await use(backend);
    const rng = new Rng(7);
    const x = tf.tensor4d(randArray(rng, 2 * 4 * 4 * 2), [2, 4, 4, 2]);
    const w = tf.tensor4d(randArray(rng, 3 * 3 * 2 * 3), [3, 3, 2, 3]);
    checkGrad('conv2d same', (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), [x, w]);
    checkGrad('conv2d valid', (a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'), [x, w]);
    // Values 0.1 apart (a shuffled ramp), so no window holds two values within eps of each other.
    const order = Array.from({ length: 2 * 4 * 6 * 3 }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.float() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const ramp = tf.tensor4d(
      order.map((v) => 0.1 * v - 3),
      [2, 4, 6, 3],
    );
    checkGrad('maxPool 2x2/2', (a) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'), [ramp]);
    checkGrad('maxPool 3x3/3', (a) => tf.maxPool(a as tf.Tensor4D, 3, 3, 'valid'), [ramp]);
    if (backend !== 'wasm') {
      checkGrad('maxPool 3x3/1 same', (a) => tf.maxPool(a as tf.Tensor4D, 3, 1, 'same'), [ramp]);
    }
    checkGrad(
      'conv -> relu -> pool',
      (a, b) => tf.maxPool(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')), 2, 2, 'valid'),
      [x, w],
      // Small steps: each ReLU or pool kink within eps of a point would break the difference quotient.
      1e-3,
      5e-3,
    );
    tf.dispose([x, w, ramp]);
  });
}

test('on cpu, the registered Conv2D gradient agrees with tfjs’ own backprop kernels at a layer-like size', async () => {
  await use('cpu');
  const rng = new Rng(3);
  const xs: Shape4 = [3, 14, 14, 8];
  const ws: Shape4 = [3, 3, 8, 16];
  const x = tf.tensor4d(randArray(rng, size(xs)), xs);
  const w = tf.tensor4d(randArray(rng, size(ws)), ws);
  const dy = tf.tensor4d(randArray(rng, 3 * 14 * 14 * 16), [3, 14, 14, 16]);
  const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), dy)),
  )([x, w]);
  const kernelDw = tf
    .engine()
    .runKernel(
      'Conv2DBackpropFilter',
      { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NHWC', dilations: 1, filterShape: ws },
    ) as tf.Tensor;
  const kernelDx = tf.conv2dTranspose(dy, w, xs, 1, 'same');
  const pad = conv2dPadding(xs, ws, { strides: 1, pad: 'same' });
  const viaConv = conv2dInputGrad(dy, w, xs, pad, 'conv');
  assertClose('dw vs Conv2DBackpropFilter', (gw as tf.Tensor).dataSync(), kernelDw.dataSync(), 1e-5);
  assertClose('dx vs Conv2DBackpropInput', (gx as tf.Tensor).dataSync(), kernelDx.dataSync(), 1e-5);
  assertClose('dx via conv vs Conv2DBackpropInput', viaConv.dataSync(), kernelDx.dataSync(), 1e-5);
  tf.dispose([x, w, dy, gx as tf.Tensor, gw as tf.Tensor, kernelDw, kernelDx, viaConv]);
});

test('wasm and cpu agree on a conv -> relu -> pool -> dense step at a layer-like size', async () => {
  const rng = new Rng(4);
  const xs: Shape4 = [4, 14, 14, 16];
  const ws: Shape4 = [3, 3, 16, 32];
  const x = randArray(rng, size(xs));
  const w = randArray(rng, size(ws));
  const b = randArray(rng, 32);
  const d = randArray(rng, 7 * 7 * 32 * 10, -0.1, 0.1);
  const results = new Map<BackendName, ArrayLike<number>[]>();
  for (const backend of BACKENDS) {
    await use(backend);
    const out = tf.tidy(() => {
      const f = (wt: tf.Tensor, bt: tf.Tensor, dt: tf.Tensor) => {
        const h = tf.maxPool(
          tf.relu(tf.add(tf.conv2d(tf.tensor4d(x, xs), wt as tf.Tensor4D, 1, 'same'), bt)) as tf.Tensor4D,
          2,
          2,
          'valid',
        );
        return tf.sum(tf.square(tf.matMul(tf.reshape(h, [4, -1]) as tf.Tensor2D, dt as tf.Tensor2D)));
      };
      const { value, grads } = tf.valueAndGrads(f)([
        tf.tensor4d(w, ws),
        tf.tensor1d(b),
        tf.tensor2d(d, [7 * 7 * 32, 10]),
      ]);
      return [value, ...grads].map((t) => t.dataSync().slice());
    });
    results.set(backend, out);
  }
  const [cpu, wasm] = [results.get('cpu') ?? [], results.get('wasm') ?? []];
  ['loss', 'dW', 'db', 'dDense'].forEach((name, i) =>
    assertClose(name, wasm[i] as Float32Array, cpu[i] as Float32Array, 1e-4),
  );
});

test('the Conv2D gradient refuses what it does not implement, with a clear message', async () => {
  await use('cpu');
  const x = tf.ones([1, 6, 6, 1]) as tf.Tensor4D;
  const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
  assert.throws(
    () => tf.grad((a: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, w, 2, 'same')))(x),
    /stride 1/,
  );
  assert.throws(
    () => conv2dPadding([1, 6, 6, 1], [3, 3, 1, 1], { strides: 1, pad: 'same', dilations: 2 }),
    /dilation 1/,
  );
  tf.dispose([x, w]);
});

// ---- max pooling ---------------------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  test(`maxPool forward and gradient match a direct loop on ${backend}`, async () => {
    await use(backend);
    const rng = new Rng(11);
    const before = tf.memory().numTensors;
    const refused: [string, () => unknown][] = [];
    for (const [xs, f, s] of [
      [[2, 8, 6, 3], 2, 2],
      [[2, 7, 7, 3], 2, 2], // 'valid' leaves the last row and column out of every window
      [[1, 9, 9, 2], 3, 3],
      [[1, 8, 7, 2], 3, 3],
      [[1, 7, 7, 2], 3, 2], // overlapping windows: the kernel fallback
      [[2, 5, 5, 2], 2, 1],
    ] as [Shape4, number, number][]) {
      // Distinct values in [-1, 1], so many windows have a negative maximum; ties are tested separately.
      const x = randArray(rng, size(xs));
      const ref = maxPoolLoop(x, xs, f, s);
      const dy = randArray(rng, size(ref.ys));
      const { dx: refDx } = maxPoolLoop(x, xs, f, s, dy);
      const label = `${xs} ${f}/${s}`;
      const y = tf.tidy(() => tf.maxPool(tf.tensor4d(x, xs), f, s, 'valid').dataSync().slice());
      assertClose(`${label}: y`, y, ref.y, 0);
      const grad = () =>
        tf.tidy(() => {
          const r = tf.tensor(dy, ref.ys);
          const pool = (a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, f, s, 'valid'), r));
          return tf.grad(pool)(tf.tensor4d(x, xs)).dataSync().slice();
        });
      if (backend === 'wasm' && f !== s) {
        refused.push([label, grad]);
        continue;
      }
      assertClose(`${label}: dx`, grad(), refDx, 1e-6);
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    // Last: a gradient that throws leaves the tape's saved tensors behind (tfjs does not free them).
    for (const [label, grad] of refused)
      assert.throws(grad, /only non-overlapping/, `${label}: refused on wasm`);
    assert.equal(refused.length, backend === 'wasm' ? 2 : 0);
  });
}

test('maxPool gradient: windows with a negative maximum, and ties split evenly, on every backend', async () => {
  // One image 2 high and 4 wide, row-major, so two 2x2 windows: columns 0-1 and 2-3.
  const cases: { x: number[]; dx: number[]; relu?: boolean }[] = [
    // wasm's own MaxPoolGrad kernel sends both windows' gradient to position 0 here.
    { x: [-0.5, -0.1, -3, -2, -0.3, -0.2, -1, -4], dx: [0, 1, 0, 0, 0, 0, 1, 0] },
    // Four 2s; two 3s.
    { x: [2, 2, 1, 3, 2, 2, 3, 0], dx: [0.25, 0.25, 0, 0.5, 0.25, 0.25, 0.5, 0] },
    // After a ReLU, a window of non-positive inputs is a window of tied zeros; the ReLU zeroes its gradient.
    { x: [-1, -2, 0.5, -1, -0.5, -3, 2, 1], dx: [0, 0, 0, 0, 0, 0, 1, 0], relu: true },
  ];
  for (const backend of BACKENDS) {
    await use(backend);
    for (const c of cases) {
      const g = tf.tidy(() => {
        const pool = (a: tf.Tensor) =>
          tf.sum(tf.maxPool((c.relu ? tf.relu(a) : a) as tf.Tensor4D, 2, 2, 'valid'));
        return Array.from(
          tf
            .grad(pool)(tf.tensor4d(c.x, [1, 2, 4, 1]))
            .dataSync(),
        );
      });
      assert.deepEqual(g, c.dx, `${backend}: x = ${c.x}`);
    }
  }
});

test('Conv2D and MaxPool are in the registered gradient set', () => {
  for (const k of [tf.Conv2D, tf.MaxPool]) {
    assert.ok(REGISTERED_GRADIENT_KERNELS.includes(k), k);
    assert.ok(tf.getGradient(k), k);
  }
});
