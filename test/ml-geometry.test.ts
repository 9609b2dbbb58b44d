/**
 * ml/geometry against closed forms, on the cpu, wasm and native backends:
 *  - a linear regression with loss ½·mean (x·w − y)², whose Hessian is exactly H = XᵀX/n: top eigenvalues (against
 *    Jacobi's method in float64) within 1%, the Hutchinson trace within 5%, basin radii √(2τ / uᵀHu), PAC-Bayes σ
 *    from the draws' quadratic forms, ε-sharpness against the box's corners;
 *  - Hessian-vector products through softmax cross-entropy (softmax regression) against a float64 finite-difference
 *    reference of the analytic gradient, within 2e-4 relative (ReLU and max-pool nets, where finite differences are
 *    no reference: test/ml-hessian-exact.test.ts);
 *  - filter-normalised directions, linear paths, log-volumes and descriptors on hand cases.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendName } from '../ml/backend';
import {
  barrier,
  basinRadii,
  batchObjective,
  classifierLoss,
  distance,
  epsSharpness,
  filterNormalizedDirection,
  flatten,
  gaussian,
  hessianTrace,
  hessianVectorProduct,
  interpolatedBarrier,
  layerNorms,
  linearPath,
  linspace,
  logGamma,
  logVolume,
  maskJaccard,
  modelObjective,
  pacBayesSigma,
  paramSpace,
  signAgreement,
  slice1d,
  slice2d,
  topEigenvalues,
  type Objective,
  type Vec,
} from '../ml/geometry';
import { loadDataset } from '../ml/data';
import { getModel, type ParamSpec } from '../ml/models';
import { deriveSeed, Rng } from '../ml/rng';
import { hostTensor, type NamedTensors } from '../ml/tensors';

const quiet = { log: () => {} };
const BACKENDS: BackendName[] =
  process.env.LTH_NATIVE === 'off' ? ['cpu', 'wasm'] : ['cpu', 'wasm', 'tensorflow'];

function param(name: string, shape: number[], kind: ParamSpec['kind'] = 'weight'): ParamSpec {
  return { name, shape, kind, prunable: kind === 'weight', torch: { name, layout: 'as-is' } };
}

// ---- a quadratic: linear regression -------------------------------------------------------------------------------

const D = 6;
const N = 48;
// Columns scaled apart so the eigenvalues are distinct and spread (power iteration needs gaps).
const COLUMN_SCALE = [3, 2.2, 1.6, 1.1, 0.7, 0.4];

function regressionData(): { x: Float64Array; y: Float64Array; wStar: Float64Array } {
  const rng = new Rng(11);
  const x = new Float64Array(N * D);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < D; j++) x[i * D + j] = Math.fround(rng.normal() * (COLUMN_SCALE[j] as number));
  const wStar = Float64Array.from({ length: D }, () => Math.fround(rng.normal()));
  // y = X w* exactly in float64, rounded to float32: the minimum is (nearly) at w*, its loss (nearly) 0.
  const y = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += (x[i * D + j] as number) * (wStar[j] as number);
    y[i] = Math.fround(s);
  }
  return { x, y, wStar };
}

/** H = XᵀX / n in float64. */
function regressionHessian(x: Float64Array): number[][] {
  const h = Array.from({ length: D }, () => new Array<number>(D).fill(0));
  for (let i = 0; i < N; i++)
    for (let a = 0; a < D; a++)
      for (let b = 0; b < D; b++)
        (h[a] as number[])[b]! += ((x[i * D + a] as number) * (x[i * D + b] as number)) / N;
  return h;
}

/** Eigenvalues of a symmetric matrix by cyclic Jacobi rotations, in float64, largest first. */
function jacobiEigenvalues(m: number[][]): number[] {
  const a = m.map((r) => [...r]);
  const n = a.length;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p]![q]! ** 2;
    if (off < 1e-24) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p]![q]!) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const [akp, akq] = [a[k]![p]!, a[k]![q]!];
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const [apk, aqk] = [a[p]![k]!, a[q]![k]!];
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
      }
  }
  return a.map((r, i) => r[i]!).sort((u, v) => v - u);
}

function quadForm(h: number[][], u: Vec): number {
  let s = 0;
  for (let a = 0; a < D; a++)
    for (let b = 0; b < D; b++) s += (u[a] as number) * h[a]![b]! * (u[b] as number);
  return s;
}

/** The largest ½δᵀHδ over the corners of the box |δᵢ| ≤ ε(|θᵢ| + 1). */
function bestCorner(h: number[][], theta: Vec, eps: number): number {
  const box = Array.from(theta, (t) => eps * (Math.abs(t) + 1));
  let best = 0;
  for (let c = 0; c < 2 ** D; c++) {
    const corner = Float64Array.from(box, (b, j) => ((c >> j) & 1 ? b : -b));
    best = Math.max(best, 0.5 * quadForm(h, corner));
  }
  return best;
}

function regressionObjective(data: { x: Float64Array; y: Float64Array }): Objective {
  const space = paramSpace([param('w', [D, 1])]);
  const x = tf.tensor2d(Float32Array.from(data.x), [N, D]);
  const y = tf.tensor2d(Float32Array.from(data.y), [N, 1]);
  return batchObjective(space, [{ x, y, n: N }], {
    forward: (p, b) => tf.matMul(b.x as tf.Tensor2D, p.w as tf.Tensor2D),
    lossSum: (out, b) => tf.mul(tf.sum(tf.square(tf.sub(out, b.y))), 0.5) as tf.Scalar,
  });
}

for (const backend of BACKENDS) {
  test(`a quadratic's curvature, basin and flatness match their closed forms on ${backend}`, async () => {
    await selectBackend({ prefer: backend, ...quiet });
    const data = regressionData();
    const h = regressionHessian(data.x);
    const exact = jacobiEigenvalues(h);
    const objective = regressionObjective(data);
    try {
      const theta = Float64Array.from(data.wStar);
      const eig = await topEigenvalues(objective, theta, { k: 3, tol: 1e-6, maxIterations: 500 });
      eig.forEach((e, i) =>
        assert.ok(
          Math.abs(e.value - (exact[i] as number)) <= 0.01 * (exact[i] as number),
          `eigenvalue ${i}: ${e.value} vs ${exact[i]}`,
        ),
      );
      const trace = exact.reduce((s, v) => s + v, 0);
      const est = await hessianTrace(objective, theta, { samples: 400, relativeError: 0, seed: 3 });
      assert.ok(
        Math.abs(est.trace - trace) <= 0.05 * trace,
        `trace ${est.trace} ± ${est.standardError} vs ${trace}`,
      );
      assert.ok(
        est.standardError > 0 && est.standardError < 0.05 * trace,
        `standard error ${est.standardError}`,
      );

      // Basin: ½ r² uᵀHu = τ along each unit direction (the loss at w* is float32 rounding away from 0).
      const tau = 0.25;
      const basin = await basinRadii(objective, theta, { directions: 5, threshold: tau, steps: 30, seed: 5 });
      const base = (await objective.value(theta)).loss;
      basin.radii.forEach((r, m) => {
        const u = gaussian(objective.space, new Rng(deriveSeed(5, 'basin', m)));
        const unit = u.map((v) => v / Math.hypot(...u));
        const expected = Math.sqrt((2 * (tau + 0 * base)) / quadForm(h, unit));
        assert.ok(Math.abs(r - expected) <= 1e-3 * expected, `radius ${m}: ${r} vs ${expected}`);
      });
      assert.equal(basin.dimension, D);

      // PAC-Bayes: E[L(θ + σz)] − L(θ) = ½σ²·mean(zᵀHz) over the fixed draws, = δ at the σ returned.
      const delta = 0.2;
      const pac = await pacBayesSigma(objective, theta, {
        on: 'loss',
        deviation: delta,
        samples: 4,
        seed: 9,
      });
      const zhz =
        [0, 1, 2, 3]
          .map((m) => quadForm(h, gaussian(objective.space, new Rng(deriveSeed(9, 'pac-bayes', m)))))
          .reduce((s, v) => s + v, 0) / 4;
      const sigma = Math.sqrt((2 * delta) / zhz);
      assert.ok(Math.abs(pac.sigma - sigma) <= 1e-3 * sigma, `σ ${pac.sigma} vs ${sigma}`);

      // ε-sharpness: the maximum of ½δᵀHδ over the box is at a corner. Sign ascent is a local search: it never
      // exceeds the best corner and here reaches at least half of it (the separable case below: all of it).
      const eps = 1e-2;
      const best = bestCorner(h, theta, eps);
      const sharp = await epsSharpness(objective, theta, { epsilon: eps, steps: 20, seed: 1 });
      const gain = sharp.maxLoss - sharp.loss;
      assert.ok(
        gain <= best * 1.001 + 1e-6 && gain >= 0.5 * best,
        `sharpness gain ${gain}, best corner ${best}`,
      );
      assert.ok(Math.abs(sharp.sharpness - (100 * gain) / (1 + sharp.loss)) < 1e-9);
    } finally {
      objective.dispose();
    }
  });
}

test(`ε-sharpness of a separable quadratic reaches the box's best corner`, async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  // Each row of X has one nonzero column: H = XᵀX/n is diagonal, and ascent along signs finds the best corner.
  const x = new Float64Array(N * D);
  for (let i = 0; i < N; i++) x[i * D + (i % D)] = COLUMN_SCALE[i % D] as number;
  const wStar = Float64Array.from({ length: D }, (_, j) => (j % 2 ? 1 : -2));
  const y = Float64Array.from(
    { length: N },
    (_, i) => (x[i * D + (i % D)] as number) * (wStar[i % D] as number),
  );
  const objective = regressionObjective({ x, y });
  try {
    const eps = 1e-2;
    const best = bestCorner(regressionHessian(x), wStar, eps);
    const sharp = await epsSharpness(objective, wStar, { epsilon: eps, steps: 20, seed: 2 });
    const gain = sharp.maxLoss - sharp.loss;
    assert.ok(Math.abs(gain - best) <= 0.01 * best, `sharpness gain ${gain}, best corner ${best}`);
  } finally {
    objective.dispose();
  }
});

// ---- Hessian-vector products through softmax cross-entropy ---------------------------------------------------------

const IN = 5;
const CLASSES = 4;
const SAMPLES = 32;

function softmaxRegression() {
  const rng = new Rng(21);
  const x = Float64Array.from({ length: SAMPLES * IN }, () => Math.fround(rng.normal()));
  const labels = Int32Array.from({ length: SAMPLES }, () => rng.int(CLASSES));
  const w = Float64Array.from({ length: IN * CLASSES }, () => Math.fround(rng.normal() * 0.7));
  const b = Float64Array.from({ length: CLASSES }, () => Math.fround(rng.normal() * 0.3));
  return { x, labels, theta: Float64Array.from([...w, ...b]) };
}

/** The mean cross-entropy's gradient in float64, analytically: (1/n) Σ (softmax(xW + b) − onehot) ⊗ [x; 1]. */
function softmaxGradient64(x: Float64Array, labels: Int32Array, theta: Float64Array): Float64Array {
  const g = new Float64Array(theta.length);
  for (let i = 0; i < SAMPLES; i++) {
    const z = Array.from({ length: CLASSES }, (_, c) => {
      let s = theta[IN * CLASSES + c] as number;
      for (let j = 0; j < IN; j++) s += (x[i * IN + j] as number) * (theta[j * CLASSES + c] as number);
      return s;
    });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, v) => a + v, 0);
    for (let c = 0; c < CLASSES; c++) {
      const d = ((e[c] as number) / sum - (labels[i] === c ? 1 : 0)) / SAMPLES;
      for (let j = 0; j < IN; j++)
        g[j * CLASSES + c] = (g[j * CLASSES + c] as number) + d * (x[i * IN + j] as number);
      g[IN * CLASSES + c] = (g[IN * CLASSES + c] as number) + d;
    }
  }
  return g;
}

for (const backend of BACKENDS) {
  test(`Hessian-vector products through softmax cross-entropy agree with a float64 reference on ${backend}`, async () => {
    await selectBackend({ prefer: backend, ...quiet });
    const { x, labels, theta } = softmaxRegression();
    const space = paramSpace([param('w', [IN, CLASSES]), param('b', [CLASSES], 'bias')]);
    const xs = tf.tensor2d(Float32Array.from(x), [SAMPLES, IN]);
    const ys = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES), 'float32');
    const objective = batchObjective(
      space,
      [{ x: xs, y: ys, n: SAMPLES }],
      classifierLoss((p, bt) => tf.add(tf.matMul(bt.x as tf.Tensor2D, p.w as tf.Tensor2D), p.b as tf.Tensor)),
    );
    try {
      for (let trial = 0; trial < 3; trial++) {
        const v = gaussian(space, new Rng(100 + trial));
        const hv = await hessianVectorProduct(objective, theta, v);
        // Reference: central differences of the float64 analytic gradient with a float64-sized step.
        const h = 1e-5;
        const plus = softmaxGradient64(
          x,
          labels,
          theta.map((t, i) => t + h * (v[i] as number)),
        );
        const minus = softmaxGradient64(
          x,
          labels,
          theta.map((t, i) => t - h * (v[i] as number)),
        );
        const ref = plus.map((p, i) => (p - (minus[i] as number)) / (2 * h));
        const err = Math.hypot(...hv.map((a, i) => a - (ref[i] as number)));
        const scale = Math.hypot(...ref);
        assert.ok(err <= 2e-4 * scale, `trial ${trial}: |Hv − ref| = ${err}, |ref| = ${scale}`);
      }
    } finally {
      objective.dispose();
    }
  });
}

// ---- directions, paths, volumes, descriptors ----------------------------------------------------------------------

test('filter-normalised directions: each filter has the norm of the weights’ filter, pruned coordinates and biases 0', () => {
  const model = getModel('conv-2');
  const rng = new Rng(4);
  const weights: NamedTensors = {};
  const masks: NamedTensors = {};
  for (const p of model.params) {
    const t = hostTensor('float32', p.shape);
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
    weights[p.name] = t;
    if (p.prunable) {
      const m = hostTensor('uint8', p.shape);
      for (let i = 0; i < m.data.length; i++) m.data[i] = rng.float() < 0.3 ? 0 : 1;
      masks[p.name] = m;
    }
  }
  // One whole filter pruned: its direction must be 0, not NaN.
  const fc3 = masks['fc3.weight'] as { data: Uint8Array; shape: number[] };
  for (let r = 0; r < (fc3.shape[0] as number); r++) fc3.data[r * 10 + 3] = 0;
  const space = paramSpace(model.params, masks);
  const theta = flatten(space, weights);
  const d = filterNormalizedDirection(space, theta, 7);
  model.params.forEach((p, i) => {
    const o = space.offsets[i] as number;
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (p.kind !== 'weight') {
      for (let j = 0; j < size; j++) assert.equal(d[o + j], 0, `${p.name} is a bias: 0`);
      return;
    }
    const units = p.shape[p.shape.length - 1] as number;
    const [tn, dn] = [new Float64Array(units), new Float64Array(units)];
    for (let j = 0; j < size; j++) {
      if (!space.free[o + j]) {
        assert.equal(d[o + j], 0, `${p.name}[${j}] is pruned: 0`);
        continue;
      }
      tn[j % units] = (tn[j % units] as number) + (theta[o + j] as number) ** 2;
      dn[j % units] = (dn[j % units] as number) + (d[o + j] as number) ** 2;
    }
    for (let f = 0; f < units; f++) {
      const [a, b] = [Math.sqrt(tn[f] as number), Math.sqrt(dn[f] as number)];
      assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, a), `${p.name} filter ${f}: ${b} vs ${a}`);
    }
  });
  assert.ok(d.every((v) => Number.isFinite(v)));
});

test('slices and the linear path on LeNet: identical endpoints have barrier 0; the path starts and ends at the solutions', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const model = getModel('lenet-300-100');
  const data = loadDataset('mnist', 'test', { limit: 50 });
  const objective = modelObjective(model, data, { batchSize: 20 });
  try {
    const a = flatten(objective.space, model.init(1));
    const b = flatten(objective.space, model.init(2));
    const same = await linearPath(objective, a, a, { points: 5 });
    assert.equal(same.lossBarrier, 0);
    assert.equal(same.errorBarrier, 0);
    const path = await linearPath(objective, a, b, { points: 5 });
    assert.deepEqual(path.values[0], await objective.value(a));
    assert.deepEqual(path.values[4], await objective.value(b));
    const ends = ((path.values[0]?.loss ?? 0) + (path.values[4]?.loss ?? 0)) / 2;
    assert.equal(path.lossBarrier, Math.max(...path.values.map((v) => v.loss - ends)));

    const d = filterNormalizedDirection(objective.space, a, 3);
    const seen: number[] = [];
    const s1 = await slice1d(objective, a, d, { points: 5, onValue: (i) => void seen.push(i) });
    assert.deepEqual(s1.alphas, [-1, -0.5, 0, 0.5, 1]);
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(s1.values[2], await objective.value(a), 'α = 0 is the solution itself');
    // Resuming from known values evaluates only the rest and gives the same slice.
    const resumed: number[] = [];
    const again = await slice1d(objective, a, d, {
      points: 5,
      known: [s1.values[0] ?? null, s1.values[1] ?? null],
      onValue: (i) => void resumed.push(i),
    });
    assert.deepEqual(resumed, [2, 3, 4]);
    assert.deepEqual(again, s1);
    const s2 = await slice2d(objective, a, d, filterNormalizedDirection(objective.space, a, 4), {
      points: 3,
    });
    assert.equal(s2.values.length, 9);
    assert.deepEqual(s2.values[4], await objective.value(a), 'the centre of the grid is the solution');
  } finally {
    objective.dispose();
  }
});

test('log-gamma, log-volume and descriptors on hand cases', () => {
  assert.ok(Math.abs(logGamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-12);
  assert.ok(Math.abs(logGamma(10) - Math.log(362880)) < 1e-12);
  assert.ok(Math.abs(logGamma(3.5) - Math.log(3.32335097044784)) < 1e-12);
  // A disc of radius 2: ln(π·4); a ball of radius 1 in 3 dimensions: ln(4π/3).
  assert.ok(Math.abs(logVolume([2, 2, 2], 2) - Math.log(4 * Math.PI)) < 1e-12);
  assert.ok(Math.abs(logVolume([1], 3) - Math.log((4 * Math.PI) / 3)) < 1e-12);
  // n = 300,000 and radii 1 and 2: dominated by the larger, ln V_n + n ln 2 − ln 2.
  const n = 300_000;
  const lv = logVolume([1, 2], n);
  assert.ok(Number.isFinite(lv));
  assert.ok(Math.abs(lv - logVolume([2], n) + Math.log(2)) < 1e-6);

  const space = paramSpace([param('w', [2, 2]), param('b', [2], 'bias')], {
    w: { dtype: 'uint8', shape: [2, 2], data: Uint8Array.from([1, 0, 1, 1]) },
  });
  const theta = Float64Array.from([3, 100, -4, 1, 0, 2]);
  const ref = Float64Array.from([0, -100, -1, -1, 5, 2]);
  assert.equal(distance(space, theta, ref), Math.hypot(3, -3, 2, -5, 0));
  assert.deepEqual(layerNorms(space, theta), { w: Math.hypot(3, -4, 1), b: 2 });
  // Free and nonzero in both: (-4, -1) same, (1, -1) differs, (2, 2) same; 3 and 0 skipped.
  assert.equal(signAgreement(space, theta, ref), 2 / 3);
  const m = (v: number[]) => ({ w: { dtype: 'uint8' as const, shape: [4], data: Uint8Array.from(v) } });
  assert.equal(maskJaccard(m([1, 1, 0, 0]), m([1, 0, 1, 0])), 1 / 3);
  assert.equal(maskJaccard(m([1, 1, 0, 0]), m([1, 1, 0, 0])), 1);
});

test('barriers, named: against the endpoints’ mean (Frankle et al.) and against the line between them (Entezari et al.)', () => {
  const alphas = linspace(0, 1, 5);
  // A path that only descends from 2 to 0: no barrier between the endpoints, but half their gap over their mean.
  const descending = [2, 1.5, 1, 0.5, 0];
  assert.equal(interpolatedBarrier(alphas, descending), 0);
  assert.equal(barrier(descending), 1);
  // Equal endpoints: the two definitions agree.
  const bump = [1, 1.2, 1.5, 1.2, 1];
  assert.ok(Math.abs(interpolatedBarrier(alphas, bump) - 0.5) < 1e-12);
  assert.ok(Math.abs(barrier(bump) - 0.5) < 1e-12);
  // A bump on a slope: measured from the line (1.5 − 1.0 at α = 0.5).
  const slope = [2, 1.6, 1.5, 0.5, 0];
  assert.ok(Math.abs(interpolatedBarrier(alphas, slope) - 0.5) < 1e-12);
});
