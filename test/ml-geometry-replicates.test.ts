// Error bars for the geometry: the plan of replicates (disjoint class-balanced subsets × probe seeds), the subsets
// themselves, and how the runs' summaries become mean, standard deviation and n.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { balancedSubset, loadDataset } from '../ml/data';
import { replicatePlan, summarizeReplicates } from '../ml/geometry';

test('the replicate plan is subset-major and its first run is the plain measure (subset 0, the analysis seed)', () => {
  const plan = replicatePlan(7, { seeds: 3, subsets: 2 });
  assert.equal(plan.length, 6);
  assert.deepEqual(plan[0], { subset: 0, seed: 7 });
  assert.deepEqual(
    plan.map((r) => r.subset),
    [0, 0, 0, 1, 1, 1],
  );
  assert.equal(new Set(plan.slice(0, 3).map((r) => r.seed)).size, 3, 'three different probe seeds');
  assert.deepEqual(
    plan.slice(3).map((r) => r.seed),
    plan.slice(0, 3).map((r) => r.seed),
    'the same seeds on each subset',
  );
  assert.throws(() => replicatePlan(0, { seeds: 0, subsets: 1 }), /replicates\.seeds/);
});

test('subsets at offsets 0, N, 2N are disjoint and class-balanced; offset 0 is the subset it always was', () => {
  const { labels } = loadDataset('mnist', 'train');
  const parts = [0, 1, 2].map((k) => balancedSubset(labels, 500, 10, 500 * k));
  assert.deepEqual([...parts[0]!], [...balancedSubset(labels, 500)]);
  const seen = new Set<number>();
  for (const p of parts) {
    assert.equal(p.length, 500);
    for (const i of p) {
      assert.ok(!seen.has(i), `example ${i} in two subsets`);
      seen.add(i);
    }
    const counts = new Array<number>(10).fill(0);
    for (const i of p) counts[labels[i]!]! += 1;
    assert.deepEqual(counts, new Array<number>(10).fill(50));
  }
  const second = loadDataset('mnist', 'train', { limit: 500, offset: 500 });
  assert.equal(second.n, 500);
  assert.match(second.splitDescription, /after the first 500/);
  assert.throws(() => loadDataset('mnist', 'train', { offset: 10 }), /needs a limit/);
});

test('replicates summarize as mean, sample standard deviation and n, with every run kept as an array', () => {
  const out = summarizeReplicates([
    { summary: { a: 1, b: 10 }, arrays: { curve: Float64Array.of(1, 2) } },
    { summary: { a: 2, b: 10 }, arrays: { curve: Float64Array.of(3, 4) } },
    { summary: { a: 6, b: 10 }, arrays: { curve: Float64Array.of(5, 6) } },
  ]);
  assert.equal(out.summary.a, 3);
  assert.ok(Math.abs(out.summary['a.std']! - Math.sqrt(7)) < 1e-12);
  assert.equal(out.summary['a.n'], 3);
  assert.equal(out.summary['b.std'], 0);
  assert.deepEqual([...out.arrays['replicates.a']!], [1, 2, 6]);
  assert.deepEqual([...out.arrays.curve!], [1, 2], 'the first run’s arrays');
});
