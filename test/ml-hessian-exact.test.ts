/**
 * The exact Hessian on the hard cases the geometry meets in use, on cpu, wasm and native: a ReLU MLP and a conv +
 * max-pool + ReLU net, each with a mask, against float64 references with the activation pattern and pooling argmax
 * frozen at the point (test/support/hessian-reference.ts: the full Hessian by second differences of the frozen loss):
 *  - Hessian-vector products within 1e-4 relative;
 *  - the top-3 eigenvalues (power iteration with deflation) within 1% of Jacobi's;
 *  - Hutchinson's trace within 3 standard errors of the exact trace;
 *  - central differences of gradients, the old method, are far off on the same nets (so this test would have
 *    caught it), while the exact product is symmetric (uᵀHv = vᵀHu).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend, type BackendName } from '../ml/backend';
import {
  batchObjective,
  classifierLoss,
  dot,
  gaussian,
  hessianTrace,
  hessianVectorProduct,
  norm,
  paramSpace,
  topEigenvalues,
  type Objective,
} from '../ml/geometry';
import { Rng } from '../ml/rng';
import { hostTensor, type NamedTensors } from '../ml/tensors';
import {
  convPool,
  hessian64,
  mlp,
  multiply,
  problemBatch,
  randomProblem,
  symmetricEigenvalues,
  type Net,
  type Problem,
} from './support/hessian-reference';

const quiet = { log: () => {} };
const BACKENDS: BackendName[] =
  process.env.LTH_NATIVE === 'off' ? ['cpu', 'wasm'] : ['cpu', 'wasm', 'tensorflow'];

const NETS: { net: Net; examples: number }[] = [
  { net: mlp('relu-mlp', [10, 8, 6, 3]), examples: 24 },
  { net: convPool('conv-pool', 6, 3, 5, 4), examples: 12 },
];

function masksOf(problem: Problem): NamedTensors {
  const out: NamedTensors = {};
  let o = 0;
  for (const p of problem.net.params) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (p.prunable) {
      const m = hostTensor('float32', p.shape);
      for (let i = 0; i < size; i++) m.data[i] = problem.free[o + i] as number;
      out[p.name] = m;
    }
    o += size;
  }
  return out;
}

function objectiveOf(problem: Problem): Objective {
  const space = paramSpace(problem.net.params, masksOf(problem));
  return batchObjective(space, [problemBatch(problem)], classifierLoss(problem.net.forward));
}

// The references are computed once per net (seconds each) and shared by the backends.
const references = NETS.map(({ net, examples }) => {
  const problem = randomProblem(net, examples, 7);
  return { problem, hessian: hessian64(problem) };
});

for (const backend of BACKENDS) {
  for (const { problem, hessian } of references) {
    const name = problem.net.name;
    test(`exact Hessian-vector products on a ${name} match the float64 reference on ${backend}`, async () => {
      await selectBackend({ prefer: backend, ...quiet });
      const objective = objectiveOf(problem);
      try {
        const space = objective.space;
        // Pruned coordinates of the direction are ignored, whatever the caller put there.
        for (let trial = 0; trial < 3; trial++) {
          const v = Float64Array.from({ length: space.size }, () => 0);
          const rng = new Rng(40 + trial);
          for (let i = 0; i < v.length; i++) v[i] = rng.normal();
          const hv = await hessianVectorProduct(objective, problem.theta, v);
          const restricted = v.map((x, i) => (space.free[i] ? x : 0));
          const ref = multiply(hessian, restricted);
          const err = norm(hv.map((a, i) => a - (ref[i] as number)));
          assert.ok(err <= 1e-4 * norm(ref), `trial ${trial}: |Hv − ref| = ${err}, |ref| = ${norm(ref)}`);
          for (let i = 0; i < hv.length; i++) if (!space.free[i]) assert.equal(hv[i], 0);
        }
        const [u, w] = [gaussian(space, new Rng(1)), gaussian(space, new Rng(2))];
        const [uHw, wHu] = [
          dot(u, await hessianVectorProduct(objective, problem.theta, w)),
          dot(w, await hessianVectorProduct(objective, problem.theta, u)),
        ];
        assert.ok(Math.abs(uHw - wHu) <= 1e-4 * Math.abs(uHw), `uᵀHw ${uHw} vs wᵀHu ${wHu}`);
        // On native TensorFlow the products above ran as one traced graph each (ml/geometry/objective.ts).
        assert.deepEqual(
          objective.engine,
          backend === 'tensorflow'
            ? { name: 'graph', reason: null }
            : { name: 'tape', reason: `the backend is ${backend}, not native TensorFlow's CPU build` },
        );
      } finally {
        objective.dispose();
      }
    });

    test(`top-3 eigenvalues and the Hutchinson trace of a ${name} match the float64 Hessian's on ${backend}`, async () => {
      await selectBackend({ prefer: backend, ...quiet });
      const objective = objectiveOf(problem);
      try {
        const exact = symmetricEigenvalues(hessian.h);
        // Power iteration finds the eigenvalues of largest magnitude.
        const byMagnitude = [...exact].sort((a, b) => Math.abs(b) - Math.abs(a)).slice(0, 3);
        const found = await topEigenvalues(objective, problem.theta, {
          k: 3,
          tol: 1e-7,
          maxIterations: 2000,
        });
        const got = found.map((p) => p.value).sort((a, b) => b - a);
        const want = [...byMagnitude].sort((a, b) => b - a);
        got.forEach((g, i) => {
          const w = want[i] as number;
          assert.ok(Math.abs(g - w) <= 0.01 * Math.abs(w), `eigenvalue ${i}: ${g} vs ${w} (all: ${want})`);
        });
        const trace = exact.reduce((a, b) => a + b, 0);
        const est = await hessianTrace(objective, problem.theta, { samples: 200, seed: 3 });
        assert.ok(
          Math.abs(est.trace - trace) <= 3 * est.standardError,
          `trace ${est.trace} ± ${est.standardError} vs exact ${trace}`,
        );
      } finally {
        objective.dispose();
      }
    });
  }
}

test('central differences of gradients are not a Hessian-vector product on a ReLU net (the method this replaced)', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const { problem, hessian } = references[0] as (typeof references)[number];
  const objective = objectiveOf(problem);
  try {
    const v = gaussian(objective.space, new Rng(9));
    const size = norm(v);
    const u = v.map((x) => x / size);
    const eps = 1e-2;
    const step = (s: number) => problem.theta.map((t, i) => t + s * (u[i] as number));
    const [plus, minus] = [
      (await objective.gradient(step(eps))).gradient,
      (await objective.gradient(step(-eps))).gradient,
    ];
    const fd = plus.map((p, i) => ((p - (minus[i] as number)) * size) / (2 * eps));
    const ref = multiply(hessian, v);
    const exact = await hessianVectorProduct(objective, problem.theta, v);
    const errOf = (x: Float64Array) => norm(x.map((a, i) => a - (ref[i] as number))) / norm(ref);
    assert.ok(errOf(exact) < 1e-4, `exact: ${errOf(exact)}`);
    // Not an assertion about accuracy of a method we dropped, only that this net has kinks a step crosses.
    assert.ok(errOf(fd) > 100 * errOf(exact), `central differences: ${errOf(fd)}, exact: ${errOf(exact)}`);
  } finally {
    objective.dispose();
  }
});

test('per-layer curvature: each prunable tensor’s top eigenvalue and trace match its float64 Hessian block; Hutchinson stops at 5% standard error', async () => {
  await selectBackend({ prefer: 'cpu', ...quiet });
  const { problem, hessian } = references[1] as (typeof references)[number];
  const objective = objectiveOf(problem);
  try {
    const space = objective.space;
    const names = problem.net.params.filter((p) => p.prunable).map((p) => p.name);
    const est = await hessianTrace(objective, problem.theta, { samples: 400, blocks: names, seed: 5 });
    for (const name of names) {
      const at = space.params.findIndex((p) => p.name === name);
      const [start, end] = [space.offsets[at] as number, (space.offsets[at + 1] ?? space.size) as number];
      // The block: rows and columns of the reference Hessian whose coordinates belong to this parameter.
      const rows = hessian.index.flatMap((i, a) => (i >= start && i < end ? [a] : []));
      const block = rows.map((a) =>
        Float64Array.from(rows, (b) => (hessian.h[a] as Float64Array)[b] as number),
      );
      const exact = symmetricEigenvalues(block);
      const top = [...exact].sort((x, y) => Math.abs(y) - Math.abs(x))[0] as number;
      const [found] = await topEigenvalues(objective, problem.theta, {
        k: 1,
        block: name,
        tol: 1e-7,
        maxIterations: 2000,
      });
      assert.ok(
        Math.abs((found?.value ?? NaN) - top) <= 0.01 * Math.abs(top),
        `${name}: λmax ${found?.value} vs ${top}`,
      );
      const trace = exact.reduce((a, b) => a + b, 0);
      const b = est.blocks[name] as { trace: number; standardError: number };
      assert.ok(
        Math.abs(b.trace - trace) <= 3 * b.standardError,
        `${name}: trace ${b.trace} ± ${b.standardError} vs ${trace}`,
      );
    }
    // Adaptive: it stopped at the first count past the minimum where the standard error was within 5%.
    const n = est.samples.length;
    assert.ok(n >= 10 && n < 400, `${n} probes`);
    assert.ok(est.standardError <= 0.05 * Math.abs(est.trace));
    const before = est.samples.slice(0, n - 1);
    const m = before.reduce((a, b) => a + b, 0) / before.length;
    const se = Math.sqrt(before.reduce((a, b) => a + (b - m) ** 2, 0) / (before.length - 1) / before.length);
    assert.ok(n === 10 || se > 0.05 * Math.abs(m), 'it should have stopped one probe earlier');
  } finally {
    objective.dispose();
  }
});
