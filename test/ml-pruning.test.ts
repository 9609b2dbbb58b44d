import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { MlInputError } from '../ml/errors';
import { lenet300100 } from '../ml/models/lenet';
import type { ParamSpec } from '../ml/models/types';
import {
  applyMasks,
  denseMasks,
  masksFromSparsity,
  prunableNames,
  prune,
  pruneCount,
  sparsityReport,
  validateMasks,
  type PruningStrategy,
} from '../ml/pruning';
import { Rng } from '../ml/rng';
import type { HostTensor, NamedTensors } from '../ml/tensors';
import { randomWeights } from './support/random-weights';

const LENET = lenet300100.params;
const HIDDEN_AND_OUTPUT = { 'fc1.weight': 0.2, 'fc2.weight': 0.2, 'fc3.weight': 0.1 };

function f32(shape: number[], values: number[]): HostTensor {
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

function ones(t: HostTensor | undefined): number {
  assert.ok(t, 'tensor present');
  let n = 0;
  for (const v of t.data) n += v;
  return n;
}

function keptIndices(t: HostTensor | undefined): number[] {
  assert.ok(t);
  return [...t.data].flatMap((v, i) => (v === 1 ? [i] : []));
}

function assertSubset(next: NamedTensors, prev: NamedTensors): void {
  for (const [name, m] of Object.entries(next)) {
    const p = prev[name];
    assert.ok(p, `previous mask ${name}`);
    for (let i = 0; i < m.data.length; i++) {
      if (m.data[i] === 1) assert.equal(p.data[i], 1, `${name}[${i}] revived`);
    }
  }
}

/** Reference ranking by the documented total order, with a comparator sort: slow but obviously right. */
function bruteForceGlobal(weights: NamedTensors, masks: NamedTensors, fraction: number): NamedTensors {
  const names = Object.keys(masks).sort();
  const alive: { a: number; layer: number; i: number }[] = [];
  names.forEach((name, layer) => {
    const m = masks[name] as HostTensor;
    const w = weights[name] as HostTensor;
    for (let i = 0; i < m.data.length; i++)
      if (m.data[i] === 1) alive.push({ a: Math.abs(w.data[i] as number), layer, i });
  });
  alive.sort((x, y) => x.a - y.a || x.layer - y.layer || x.i - y.i);
  const k = Math.round(fraction * alive.length);
  const out: NamedTensors = {};
  for (const name of names) {
    const m = masks[name] as HostTensor;
    out[name] = { dtype: 'uint8', shape: [...m.shape], data: Uint8Array.from(m.data) };
  }
  for (const { layer, i } of alive.slice(0, k)) (out[names[layer] as string] as HostTensor).data[i] = 0;
  return out;
}

test('global pruning removes round(fraction × survivors) overall, layerwise removes it per layer', () => {
  const w = randomWeights(LENET, 1);
  // A layer of larger weights, so that ranking across layers visibly differs from ranking within each.
  for (const [i, v] of (w['fc3.weight'] as HostTensor).data.entries())
    (w['fc3.weight'] as HostTensor).data[i] = v * 10;
  const dense = denseMasks(LENET);
  const total = 784 * 300 + 300 * 100 + 100 * 10;

  const g = prune(w, dense, { kind: 'global-magnitude', fraction: 0.2 });
  const gRemaining = Object.values(g).reduce((n, m) => n + ones(m), 0);
  assert.equal(total - gRemaining, Math.round(0.2 * total));
  assert.ok(ones(g['fc3.weight']) > 980, `fc3 keeps ${ones(g['fc3.weight'])}`);
  assert.ok(ones(g['fc1.weight']) < 235200 * 0.8);

  const l = prune(w, dense, { kind: 'layerwise-magnitude', fractions: {}, defaultFraction: 0.2 });
  assert.equal(ones(l['fc1.weight']), 235200 - 47040);
  assert.equal(ones(l['fc2.weight']), 30000 - 6000);
  assert.equal(ones(l['fc3.weight']), 1000 - 200);

  // Halves round up: 5 survivors at 0.5 lose 3, 3 survivors at 0.5 lose 2.
  assert.equal(pruneCount(0.5, 5), 3);
  const small = { a: f32([5], [1, 2, 3, 4, 5]), b: f32([3], [3, 2, 1]) };
  const half = prune(
    small,
    { a: f32([5], [1, 1, 1, 1, 1]), b: f32([3], [1, 1, 1]) },
    {
      kind: 'layerwise-magnitude',
      fractions: { a: 0.5, b: 0.5 },
    },
  );
  assert.deepEqual(keptIndices(half.a), [3, 4]);
  assert.deepEqual(keptIndices(half.b), [0]);
  // Rounding is over survivors only: 2 left in `a` at 0.5 lose exactly 1.
  const again = prune(small, half, { kind: 'layerwise-magnitude', fractions: { a: 0.5, b: 0 } });
  assert.deepEqual(keptIndices(again.a), [4]);
  assert.deepEqual(keptIndices(again.b), [0]);
});

test('Frankle & Carbin rates: hidden layers lose 20% of their survivors per level, the output layer 10%', () => {
  const w = randomWeights(LENET, 2);
  let masks = denseMasks(LENET);
  const expected = { 'fc1.weight': 235200, 'fc2.weight': 30000, 'fc3.weight': 1000 };
  for (let level = 1; level <= 3; level++) {
    masks = prune(w, masks, { kind: 'layerwise-magnitude', fractions: HIDDEN_AND_OUTPUT });
    for (const [name, f] of Object.entries(HIDDEN_AND_OUTPUT)) {
      const key = name as keyof typeof expected;
      expected[key] -= Math.round(f * expected[key]);
      assert.equal(ones(masks[name]), expected[key], `${name} after level ${level}`);
    }
  }
  assert.deepEqual(expected, { 'fc1.weight': 120422, 'fc2.weight': 15360, 'fc3.weight': 729 });
  // The survivors of each layer are its largest weights.
  for (const name of Object.keys(HIDDEN_AND_OUTPUT)) {
    const m = masks[name] as HostTensor;
    const d = (w[name] as HostTensor).data;
    let maxPruned = 0;
    let minKept = Infinity;
    for (let i = 0; i < d.length; i++) {
      const a = Math.abs(d[i] as number);
      if (m.data[i] === 1) minKept = Math.min(minKept, a);
      else maxPruned = Math.max(maxPruned, a);
    }
    assert.ok(maxPruned <= minKept, `${name}: pruned ${maxPruned} > kept ${minKept}`);
  }
});

test('global pruning with the output layer excluded leaves it dense and counts only the other layers', () => {
  const w = randomWeights(LENET, 3);
  const m = prune(w, denseMasks(LENET), { kind: 'global-magnitude', fraction: 0.2, exclude: ['fc3.weight'] });
  assert.equal(ones(m['fc3.weight']), 1000);
  assert.equal(235200 + 30000 - ones(m['fc1.weight']) - ones(m['fc2.weight']), Math.round(0.2 * 265200));
  assert.deepEqual(Object.keys(m), ['fc1.weight', 'fc2.weight', 'fc3.weight']);
  // Exactly the documented ranking, checked against a comparator sort over the two included layers.
  const ref = bruteForceGlobal(
    w,
    {
      'fc1.weight': denseMasks(LENET)['fc1.weight'] as HostTensor,
      'fc2.weight': denseMasks(LENET)['fc2.weight'] as HostTensor,
    },
    0.2,
  );
  assert.deepEqual(m['fc1.weight'], ref['fc1.weight']);
  assert.deepEqual(m['fc2.weight'], ref['fc2.weight']);
});

test('pruned weights never revive across levels, however large they become', () => {
  const w = randomWeights(LENET, 4);
  const level1 = prune(w, denseMasks(LENET), { kind: 'global-magnitude', fraction: 0.2 });
  // Retraining could in principle leave anything at pruned positions; make them the largest weights there are.
  for (const [name, m] of Object.entries(level1)) {
    const d = (w[name] as HostTensor).data;
    for (let i = 0; i < d.length; i++) if (m.data[i] === 0) d[i] = i % 2 ? 1e6 : -1e6;
  }
  for (const strategy of [
    { kind: 'global-magnitude', fraction: 0.2 },
    { kind: 'layerwise-magnitude', fractions: HIDDEN_AND_OUTPUT },
    { kind: 'global-random', fraction: 0.2, seed: 9 },
    { kind: 'layerwise-random', fractions: HIDDEN_AND_OUTPUT, seed: 9 },
  ] satisfies PruningStrategy[]) {
    const level2 = prune(w, level1, strategy);
    assertSubset(level2, level1);
    const before = Object.values(level1).reduce((n, t) => n + ones(t), 0);
    const after = Object.values(level2).reduce((n, t) => n + ones(t), 0);
    assert.ok(after < before, strategy.kind);
  }
  const level2 = prune(w, level1, { kind: 'global-magnitude', fraction: 0.2 });
  const alive1 = Object.values(level1).reduce((n, t) => n + ones(t), 0);
  assert.equal(
    Object.values(level2).reduce((n, t) => n + ones(t), 0),
    alive1 - Math.round(0.2 * alive1),
  );
});

test('magnitude ties go to the earlier layer by name, then the lower index, whatever the key order', () => {
  // Every weight has |w| = 1 except two zeros of opposite sign, which tie with each other.
  const weights = {
    'z.weight': f32([2, 2], [1, -1, 1, -1]),
    'b.weight': f32([3], [-1, 0, 1]),
    'a.weight': f32([2], [1, -0]),
  };
  const masks = {
    'z.weight': f32([2, 2], [1, 1, 1, 1]),
    'b.weight': f32([3], [1, 1, 1]),
    'a.weight': f32([2], [1, 1]),
  };
  const strategy: PruningStrategy = { kind: 'global-magnitude', fraction: 0.65 }; // round(5.85) = 6 of 9
  const first = prune(weights, masks, strategy);
  const second = prune(weights, masks, strategy);
  assert.deepEqual(first, second);
  // The zeros (a[1], b[1]) first, then |w| = 1 in the order a[0], b[0], b[2], z[0], z[1], ...: four more.
  assert.deepEqual(keptIndices(first['a.weight']), []);
  assert.deepEqual(keptIndices(first['b.weight']), []);
  assert.deepEqual(keptIndices(first['z.weight']), [1, 2, 3]);
  // One fewer (round(0.45 × 9) = 4) spares b[2]: the tie at |w| = 1 is cut inside a layer, by index.
  const four = prune(weights, masks, { kind: 'global-magnitude', fraction: 0.45 });
  assert.deepEqual(keptIndices(four['b.weight']), [2]);
  assert.deepEqual(keptIndices(four['z.weight']), [0, 1, 2, 3]);
  // Output keeps the caller's key order; the ranking does not depend on it.
  assert.deepEqual(Object.keys(first), ['z.weight', 'b.weight', 'a.weight']);
  const reordered = prune(
    { 'a.weight': weights['a.weight'], 'z.weight': weights['z.weight'], 'b.weight': weights['b.weight'] },
    { 'a.weight': masks['a.weight'], 'b.weight': masks['b.weight'], 'z.weight': masks['z.weight'] },
    strategy,
  );
  for (const name of Object.keys(first)) assert.deepEqual(reordered[name], first[name]);
});

test('global magnitude pruning equals a comparator sort under the documented order, duplicates included', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 40; trial++) {
    const shapes: Record<string, number[]> = {
      'l1.weight': [7, 5],
      'l0.weight': [13],
      'l2.weight': [3, 2, 2],
    };
    const weights: NamedTensors = {};
    const masks: NamedTensors = {};
    for (const [name, shape] of Object.entries(shapes)) {
      const n = shape.reduce((a, b) => a * b, 1);
      // Coarse values so that many magnitudes tie, across layers and within them; a few tiny ones share the top
      // 16 bits of their keys and differ only in the low ones.
      const w = Float32Array.from({ length: n }, () =>
        rng.int(4) === 0 ? (1 + rng.int(3) * 2 ** -20) * (rng.int(2) ? 1 : -1) : (rng.int(7) - 3) / 2,
      );
      weights[name] = { dtype: 'float32', shape, data: w };
      masks[name] = {
        dtype: 'uint8',
        shape,
        data: Uint8Array.from({ length: n }, () => (rng.int(5) ? 1 : 0)),
      };
    }
    const fraction = rng.int(100) / 100;
    assert.deepEqual(
      prune(weights, masks, { kind: 'global-magnitude', fraction }),
      bruteForceGlobal(weights, masks, fraction),
      `trial ${trial}`,
    );
  }
});

test('random pruning is reproducible by seed and removes exactly the requested counts', () => {
  const w = randomWeights(LENET, 5);
  const level1 = prune(w, denseMasks(LENET), { kind: 'global-magnitude', fraction: 0.2 });
  const alive = Object.values(level1).reduce((n, t) => n + ones(t), 0);

  const g1 = prune(w, level1, { kind: 'global-random', fraction: 0.2, seed: 7 });
  const g2 = prune(w, level1, { kind: 'global-random', fraction: 0.2, seed: 7 });
  const g3 = prune(w, level1, { kind: 'global-random', fraction: 0.2, seed: 8 });
  assert.deepEqual(g1, g2);
  assert.notDeepEqual(g1, g3);
  assert.equal(
    Object.values(g1).reduce((n, t) => n + ones(t), 0),
    alive - Math.round(0.2 * alive),
  );
  assert.equal(
    Object.values(g3).reduce((n, t) => n + ones(t), 0),
    alive - Math.round(0.2 * alive),
  );
  assertSubset(g1, level1);
  // Random pruning ignores magnitudes: changing the weights does not change the mask.
  assert.deepEqual(
    prune(randomWeights(LENET, 6), level1, { kind: 'global-random', fraction: 0.2, seed: 7 }),
    g1,
  );

  const lr = { kind: 'layerwise-random', fractions: HIDDEN_AND_OUTPUT, seed: 3 } as const;
  const l1 = prune(w, level1, lr);
  assert.deepEqual(prune(w, level1, lr), l1);
  for (const [name, f] of Object.entries(HIDDEN_AND_OUTPUT)) {
    const before = ones(level1[name]);
    assert.equal(ones(l1[name]), before - Math.round(f * before), name);
  }
  assertSubset(l1, level1);
  // A layer's draw depends only on the seed, its name and its own mask.
  const onlyFc3 = prune(
    w,
    { 'fc3.weight': level1['fc3.weight'] as HostTensor },
    {
      ...lr,
      fractions: { 'fc3.weight': 0.1 },
    },
  );
  assert.deepEqual(onlyFc3['fc3.weight'], l1['fc3.weight']);
});

test('masksFromSparsity draws random masks with exactly the reference per-layer counts', () => {
  const w = randomWeights(LENET, 6);
  let masks = denseMasks(LENET);
  for (let i = 0; i < 3; i++)
    masks = prune(w, masks, { kind: 'layerwise-magnitude', fractions: HIDDEN_AND_OUTPUT });
  // One layer more than half pruned, one less: both sides of the draw.
  masks['fc3.weight'] = {
    dtype: 'uint8',
    shape: [100, 10],
    data: new Uint8Array(1000).fill(0).fill(1, 0, 3),
  };
  const r1 = masksFromSparsity(masks, 42);
  const r2 = masksFromSparsity(masks, 42);
  const r3 = masksFromSparsity(masks, 43);
  assert.deepEqual(r1, r2);
  assert.notDeepEqual(r1, r3);
  for (const name of Object.keys(masks)) {
    assert.equal(ones(r1[name]), ones(masks[name]), name);
    assert.equal(ones(r3[name]), ones(masks[name]), name);
    assert.deepEqual(r1[name]?.shape, masks[name]?.shape);
    assert.equal(r1[name]?.dtype, 'uint8');
  }
  assert.notDeepEqual(r1['fc1.weight'], masks['fc1.weight']);
  assert.deepEqual(sparsityReport(r1, LENET), sparsityReport(masks, LENET));
});

test('biases are never prunable, never masked and left untouched', () => {
  const params: ParamSpec[] = [
    ...LENET,
    // A spec that wrongly marks a bias prunable still does not make it so.
    {
      name: 'extra.bias',
      shape: [4],
      kind: 'bias',
      prunable: true,
      torch: { name: 'extra.bias', layout: 'as-is' },
    },
    {
      name: 'frozen.weight',
      shape: [2, 2],
      kind: 'weight',
      prunable: false,
      torch: { name: 'frozen.weight', layout: 'linear' },
    },
  ];
  assert.deepEqual(prunableNames(params), ['fc1.weight', 'fc2.weight', 'fc3.weight']);
  assert.deepEqual(prunableNames(params, { exclude: ['fc3.weight'] }), ['fc1.weight', 'fc2.weight']);
  assert.deepEqual(prunableNames(params, { include: ['fc2.weight'] }), ['fc2.weight']);
  assert.throws(
    () => prunableNames(params, { include: ['fc1.bias'] }),
    /include: 'fc1.bias' is a bias that is not prunable/,
  );
  assert.throws(
    () => prunableNames(params, { exclude: ['fc9.weight'] }),
    /exclude: unknown layer 'fc9.weight'/,
  );
  assert.deepEqual(Object.keys(denseMasks(params)), ['fc1.weight', 'fc2.weight', 'fc3.weight']);

  const masks = denseMasks(LENET);
  masks['fc1.bias'] = { dtype: 'uint8', shape: [300], data: new Uint8Array(300).fill(1) };
  assert.throws(() => validateMasks(masks, LENET), /masks\['fc1.bias'\]: a bias that is not prunable/);

  const w = randomWeights(LENET, 7);
  const pruned = prune(w, denseMasks(LENET), { kind: 'global-magnitude', fraction: 0.5 });
  assert.deepEqual(Object.keys(pruned), ['fc1.weight', 'fc2.weight', 'fc3.weight']);
  const applied = applyMasks(w, pruned);
  for (const p of LENET.filter((q) => q.kind === 'bias')) assert.deepEqual(applied[p.name], w[p.name]);
});

test('applyMasks sets pruned weights to exactly +0, keeps survivors bit for bit and copies its input', () => {
  const w = { 'a.weight': f32([4], [-3, 2, -0, 5]), 'a.bias': f32([2], [-1, 1]) };
  const m = {
    'a.weight': { dtype: 'uint8', shape: [4], data: Uint8Array.from([0, 1, 1, 0]) },
  } satisfies NamedTensors;
  const out = applyMasks(w, m);
  const d = out['a.weight']?.data as Float32Array;
  assert.ok(Object.is(d[0], 0) && Object.is(d[3], 0), 'pruned entries are +0');
  assert.equal(d[1], 2);
  assert.ok(Object.is(d[2], -0), 'a surviving -0 stays -0');
  assert.deepEqual([...w['a.weight'].data], [-3, 2, -0, 5]);
  assert.notEqual(out['a.bias']?.data, w['a.bias'].data);
  assert.throws(() => applyMasks({}, m), /weights\['a.weight'\] is missing/);
});

test('invalid inputs are refused with messages naming the field', () => {
  const w = randomWeights(LENET, 8);
  const dense = denseMasks(LENET);
  const refuses = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof MlInputError && e.nonRetryable && re.test(e.message));

  for (const fraction of [1, -0.1, Number.NaN, 1.5]) {
    refuses(
      () => prune(w, dense, { kind: 'global-magnitude', fraction }),
      /strategy\.fraction must be a number in \[0, 1\)/,
    );
  }
  refuses(
    () =>
      prune(w, dense, { kind: 'layerwise-magnitude', fractions: { 'fc1.weight': 1 }, defaultFraction: 0.2 }),
    /strategy\.fractions\['fc1\.weight'\] must be a number in \[0, 1\)/,
  );
  refuses(
    () => prune(w, dense, { kind: 'layerwise-magnitude', fractions: {}, defaultFraction: -1 }),
    /strategy\.defaultFraction/,
  );
  refuses(
    () => prune(w, dense, { kind: 'global-magnitude', fraction: 0.2, exclude: ['fc4.weight'] }),
    /strategy\.exclude: unknown layer 'fc4\.weight'/,
  );
  refuses(
    () =>
      prune(w, dense, {
        kind: 'layerwise-magnitude',
        fractions: { 'fc1.weigth': 0.2 },
        defaultFraction: 0.2,
      }),
    /strategy\.fractions: unknown layer 'fc1\.weigth'/,
  );
  refuses(
    () =>
      prune(w, dense, { kind: 'layerwise-magnitude', fractions: { 'fc1.weight': 0.2, 'fc2.weight': 0.2 } }),
    /no entry for layer 'fc3\.weight'/,
  );
  refuses(() => prune(w, dense, { kind: 'global-random', fraction: 0.2, seed: -1 }), /strategy\.seed/);
  refuses(
    () => prune(w, dense, JSON.parse('{"kind":"global-magnitude","fraction":0.2,"excludes":["fc3.weight"]}')),
    /strategy\.excludes is not a field/,
  );
  refuses(
    () => prune(w, dense, JSON.parse('{"kind":"magnitude","fraction":0.2}')),
    /strategy\.kind must be one of/,
  );

  const badShape = {
    ...dense,
    'fc2.weight': { dtype: 'uint8', shape: [100, 300], data: new Uint8Array(30000) },
  } satisfies NamedTensors;
  refuses(
    () => prune(w, badShape, { kind: 'global-magnitude', fraction: 0.2 }),
    /weights\['fc2\.weight'\]: shape \[300, 100\] does not match the mask's \[100, 300\]/,
  );
  refuses(() => validateMasks(badShape, LENET), /masks\['fc2\.weight'\]: shape \[100, 300\] does not match/);
  refuses(() => applyMasks(w, badShape), /weights\['fc2\.weight'\]: shape/);
  const notBinary = {
    ...dense,
    'fc3.weight': f32(
      [100, 10],
      Array.from({ length: 1000 }, (_, i) => (i === 5 ? 0.5 : 1)),
    ),
  };
  refuses(
    () => prune(w, notBinary, { kind: 'global-magnitude', fraction: 0.2 }),
    /previousMasks\['fc3\.weight'\] holds 0\.5 at index 5/,
  );
  const incomplete = { ...dense };
  delete incomplete['fc3.weight'];
  refuses(() => validateMasks(incomplete, LENET), /masks\['fc3\.weight'\] is missing/);
  refuses(
    () => validateMasks({ ...dense, 'fc9.weight': dense['fc3.weight'] as HostTensor }, LENET),
    /masks\['fc9\.weight'\]: unknown layer/,
  );
  refuses(
    () => prune({}, dense, { kind: 'global-magnitude', fraction: 0.2 }),
    /weights\['fc1\.weight'\] is missing/,
  );

  for (const bad of [Number.NaN, Infinity]) {
    const nan = randomWeights(LENET, 8);
    (nan['fc2.weight'] as HostTensor).data[123] = bad;
    refuses(
      () => prune(nan, dense, { kind: 'global-magnitude', fraction: 0.2 }),
      new RegExp(`weights\\['fc2\\.weight'\\]\\[123\\] is ${bad}`),
    );
  }
  refuses(() => masksFromSparsity(dense, 1.5), /seed must be a non-negative safe integer/);
});

test('remaining density after L levels of global 20% is 0.8^L up to rounding (LeNet-300-100 shapes, 8 levels)', () => {
  const w = randomWeights(LENET, 9);
  const total = 266200;
  let masks = denseMasks(LENET);
  let expected = total;
  let openLth = denseMasks(LENET);
  let expectedOpenLth = 265200;
  for (let level = 1; level <= 8; level++) {
    masks = prune(w, masks, { kind: 'global-magnitude', fraction: 0.2 });
    openLth = prune(w, openLth, { kind: 'global-magnitude', fraction: 0.2, exclude: ['fc3.weight'] });
    expected -= Math.round(0.2 * expected);
    expectedOpenLth -= Math.round(0.2 * expectedOpenLth);
    const report = sparsityReport(masks, LENET);
    assert.equal(report.remaining, expected, `level ${level}`);
    // Each level's rounding moves the count by at most half a weight, so L levels stay within L/2 of 0.8^L.
    assert.ok(
      Math.abs(report.remaining - total * 0.8 ** level) <= level / 2,
      `level ${level}: ${report.remaining}`,
    );
    assert.ok(Math.abs(report.remainingPct - 100 * 0.8 ** level) < 1e-3);

    const o = sparsityReport(openLth, LENET);
    assert.equal(o.layers[2]?.remaining, 1000);
    assert.equal(o.remaining - 1000, expectedOpenLth, `open_lth level ${level}`);
  }
  assert.equal(expected, 44661);
  assert.deepEqual(
    sparsityReport(masks).layers.map((l) => l.name),
    ['fc1.weight', 'fc2.weight', 'fc3.weight'],
  );
});

test('pruning LeNet-300-100 takes milliseconds', () => {
  const w = randomWeights(LENET, 10);
  const dense = denseMasks(LENET);
  prune(w, dense, { kind: 'global-magnitude', fraction: 0.2 }); // warm-up (JIT)
  const times: Record<string, number> = {};
  for (const strategy of [
    { kind: 'global-magnitude', fraction: 0.2 },
    { kind: 'layerwise-magnitude', fractions: HIDDEN_AND_OUTPUT },
    { kind: 'global-random', fraction: 0.2, seed: 1 },
  ] satisfies PruningStrategy[]) {
    const t0 = performance.now();
    const reps = 5;
    for (let i = 0; i < reps; i++) prune(w, dense, strategy);
    times[strategy.kind] = (performance.now() - t0) / reps;
  }
  console.log(`prune LeNet-300-100 (266,200 weights), ms per call: ${JSON.stringify(times)}`);
  // The goal is ~100 ms; the bound is loose so that a loaded CI machine does not fail the suite.
  for (const [kind, ms] of Object.entries(times)) assert.ok(ms < 1000, `${kind}: ${ms} ms`);
});
