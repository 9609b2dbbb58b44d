import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, deriveSeed, type RngState } from '../ml/rng';

test('xoshiro128** matches the reference C implementation', () => {
  // Outputs of prng.di.unimi.it/xoshiro128starstar.c from state {1, 2, 3, 4}, computed with the C source.
  const r = new Rng({ algorithm: 'xoshiro128**', s: [1, 2, 3, 4] });
  assert.deepEqual(
    Array.from({ length: 6 }, () => r.nextUint32()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
});

test('same seed gives the same stream, different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xa = Array.from({ length: 100 }, () => a.nextUint32());
  const xb = Array.from({ length: 100 }, () => b.nextUint32());
  const xc = Array.from({ length: 100 }, () => c.nextUint32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  // Seeds above 2^32 keep their high bits.
  assert.notEqual(new Rng(2 ** 32 + 5).nextUint32(), new Rng(5).nextUint32());
});

test('state saved mid-stream as JSON continues identically', () => {
  const r = new Rng(7);
  for (let i = 0; i < 37; i++) r.normal();
  r.permutation(11);
  const saved = JSON.stringify(r.getState());
  const draw = (g: Rng) => ({
    u: Array.from({ length: 5 }, () => g.nextUint32()),
    f: Array.from({ length: 5 }, () => g.float()),
    i: Array.from({ length: 5 }, () => g.int(1000)),
    n: Array.from({ length: 5 }, () => g.normal()),
    p: Array.from(g.permutation(20)),
  });
  const original = draw(r);
  const restored = draw(Rng.fromState(JSON.parse(saved) as unknown));
  assert.deepEqual(restored, original);
  // Object.is also distinguishes -0 and NaN, so this is bit equality of the doubles.
  original.n.forEach((x, k) => assert.ok(Object.is(x, restored.n[k])));
});

test('uniform floats lie in [0, 1) and ints in [0, n) without obvious bias', () => {
  const r = new Rng(1);
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < 20000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    const k = r.int(10);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 10);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  // Chi-square with 9 degrees of freedom: 40 is far beyond the 99.99th percentile (~33.7).
  const chi2 = counts.reduce((s, c) => s + (c - 2000) ** 2 / 2000, 0);
  assert.ok(chi2 < 40, `chi2 ${chi2}`);
  assert.equal(r.int(1), 0);
  assert.ok(r.int(2 ** 32) < 2 ** 32);
  assert.throws(() => r.int(0), /n must be/);
  assert.throws(() => r.int(1.5), /n must be/);
});

test('normals have mean 0 and variance 1', () => {
  const r = new Rng(3);
  const n = 40000;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    assert.ok(Number.isFinite(x));
    s += x;
    s2 += x * x;
  }
  const mean = s / n;
  const variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.04, `variance ${variance}`);
});

test('permutation is a deterministic permutation', () => {
  const p = new Rng(9).permutation(1000);
  assert.deepEqual(
    Array.from(p).sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(p, new Rng(9).permutation(1000));
  assert.notDeepEqual(p, new Rng(10).permutation(1000));
  assert.notDeepEqual(
    Array.from(p),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.equal(new Rng(1).permutation(0).length, 0);
  assert.deepEqual(Array.from(new Rng(1).permutation(1)), [0]);
});

test('invalid states and seeds are rejected with the field named', () => {
  assert.throws(() => Rng.fromState({ algorithm: 'mt19937', s: [1, 2, 3, 4] }), /rng\.algorithm/);
  assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3] }), /rng\.s/);
  assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [1, 2, 3, -1] }), /rng\.s\.3/);
  assert.throws(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] }), /all zero/);
  assert.throws(() => new Rng(-1), /seed/);
  assert.throws(() => new Rng(0.5), /seed/);
  const ok: RngState = new Rng(5).getState();
  assert.deepEqual(Rng.fromState(ok).getState(), ok);
});

test('deriveSeed keys independent streams by label', () => {
  assert.equal(deriveSeed(1, 'init', 'fc1.weight'), deriveSeed(1, 'init', 'fc1.weight'));
  const seeds = new Set([
    deriveSeed(1, 'init', 'fc1.weight'),
    deriveSeed(1, 'init', 'fc2.weight'),
    deriveSeed(2, 'init', 'fc1.weight'),
    deriveSeed(1, 'epoch-order', 0),
    deriveSeed(1, 'epoch-order', 1),
    deriveSeed(1),
  ]);
  assert.equal(seeds.size, 6);
  for (const s of seeds) assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 32);
});
