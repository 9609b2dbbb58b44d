// The pure decisions of the lottery-ticket pipeline, without services: what a spec's `pruning` means for a model
// (resolvePruning) and the exact counts it removes from LeNet-300-100, the one-shot control's strategy, the
// content-addressed lineage ids, and the spec checks that refuse a bad experiment before anything starts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { branchLineageId, trunkLineageId } from '../contract/ids';
import { oneShotStrategy, resolvePruning } from '../contract/pruning';
import { getModel } from '../ml/models';
import {
  denseMasks,
  prunableNames,
  prune,
  pruneCount,
  sparsityReport,
  type PruningStrategy,
} from '../ml/pruning';
import type { NamedTensors } from '../ml/tensors';
import { parseLotterySpec, type LotterySpec, type LotterySpecInput } from '../contract/lottery';
import { type BranchSpec } from '../contract/branches';
import { SpecError } from '../contract/spec';

const lenet = getModel('lenet-300-100');
const SIZES: Record<string, number> = {
  'fc1.weight': 784 * 300,
  'fc2.weight': 300 * 100,
  'fc3.weight': 100 * 10,
};
const ALL = SIZES['fc1.weight']! + SIZES['fc2.weight']! + SIZES['fc3.weight']!;

const baseInput: LotterySpecInput = {
  experiment: 'plan',
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    iterations: 100,
    batchSize: 32,
    seed: 3,
    trainLimit: 320,
  },
  levels: 3,
};

function spec(over: Partial<LotterySpecInput> = {}): LotterySpec {
  return parseLotterySpec({ ...baseInput, ...over });
}

function pruningOf(p: unknown): LotterySpec['pruning'] {
  return spec({ pruning: p as LotterySpecInput['pruning'] }).pruning;
}

function alive(masks: NamedTensors, name: string): number {
  const d = masks[name]!.data;
  let n = 0;
  for (let i = 0; i < d.length; i++) n += d[i] as number;
  return n;
}

function specErrorNaming(field: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof SpecError, `expected a SpecError, got ${String(err)}`);
    assert.ok(
      err.issues.some((i) => i.startsWith(`${field}:`)),
      `an issue should name ${field}: ${JSON.stringify(err.issues)}`,
    );
    return true;
  };
}

/** Trunk level-L masks: L IMP levels, each ranking a different set of "trained" weights. */
function trunkMasks(strategy: PruningStrategy, levels: number): NamedTensors {
  let masks = denseMasks(lenet.params);
  for (let l = 1; l <= levels; l++) masks = prune(lenet.init(100 + l), masks, strategy);
  return masks;
}

test('global magnitude: the output layer is excluded unless the spec says otherwise', () => {
  const def = resolvePruning(pruningOf({ kind: 'global-magnitude' }), lenet);
  assert.deepEqual(def, { kind: 'global-magnitude', fraction: 0.2, exclude: ['fc3.weight'] });
  const w = lenet.init(7);
  const m = prune(w, denseMasks(lenet.params), def);
  const covered = SIZES['fc1.weight']! + SIZES['fc2.weight']!;
  assert.equal(alive(m, 'fc1.weight') + alive(m, 'fc2.weight'), covered - Math.round(0.2 * covered));
  assert.equal(alive(m, 'fc3.weight'), SIZES['fc3.weight']);

  const all = resolvePruning(pruningOf({ kind: 'global-magnitude', fraction: 0.3, exclude: [] }), lenet);
  assert.deepEqual(all, { kind: 'global-magnitude', fraction: 0.3, exclude: [] });
  const ma = prune(w, denseMasks(lenet.params), all);
  assert.equal(sparsityReport(ma, lenet.params).remaining, ALL - Math.round(0.3 * ALL));

  const onlyFc1 = resolvePruning(
    pruningOf({ kind: 'global-magnitude', exclude: ['fc2.weight', 'fc3.weight'] }),
    lenet,
  );
  const m1 = prune(w, denseMasks(lenet.params), onlyFc1);
  assert.equal(alive(m1, 'fc1.weight'), SIZES['fc1.weight']! - Math.round(0.2 * SIZES['fc1.weight']!));
  assert.equal(alive(m1, 'fc2.weight'), SIZES['fc2.weight']);
  assert.equal(alive(m1, 'fc3.weight'), SIZES['fc3.weight']);
});

test('global magnitude: an unknown or unprunable exclude name, or excluding everything, is a SpecError', () => {
  assert.throws(
    () => resolvePruning(pruningOf({ kind: 'global-magnitude', exclude: ['fc4.weight'] }), lenet),
    specErrorNaming('pruning.exclude'),
  );
  // Biases are not prunable weights, so naming one is a mistake, not a no-op.
  assert.throws(
    () => resolvePruning(pruningOf({ kind: 'global-magnitude', exclude: ['fc1.bias'] }), lenet),
    specErrorNaming('pruning.exclude'),
  );
  assert.throws(
    () =>
      resolvePruning(
        pruningOf({ kind: 'global-magnitude', exclude: ['fc1.weight', 'fc2.weight', 'fc3.weight'] }),
        lenet,
      ),
    specErrorNaming('pruning.exclude'),
  );
});

test("layerwise magnitude: Frankle & Carbin's rates by default, per-layer overrides, exclude means 0", () => {
  assert.deepEqual(resolvePruning(pruningOf({ kind: 'layerwise-magnitude' }), lenet), {
    kind: 'layerwise-magnitude',
    fractions: { 'fc1.weight': 0.2, 'fc2.weight': 0.2, 'fc3.weight': 0.1 },
  });
  assert.deepEqual(
    resolvePruning(
      pruningOf({
        kind: 'layerwise-magnitude',
        fraction: 0.5,
        outputFraction: 0.25,
        fractions: { 'fc2.weight': 0.3 },
        exclude: ['fc1.weight'],
      }),
      lenet,
    ),
    {
      kind: 'layerwise-magnitude',
      fractions: { 'fc1.weight': 0, 'fc2.weight': 0.3, 'fc3.weight': 0.25 },
    },
  );
  // Exclude wins over an override for the same layer.
  const both = resolvePruning(
    pruningOf({ kind: 'layerwise-magnitude', fractions: { 'fc3.weight': 0.4 }, exclude: ['fc3.weight'] }),
    lenet,
  );
  assert.equal(both.kind === 'layerwise-magnitude' ? both.fractions['fc3.weight'] : undefined, 0);
  assert.throws(
    () => resolvePruning(pruningOf({ kind: 'layerwise-magnitude', fractions: { 'fc1.bias': 0.2 } }), lenet),
    specErrorNaming('pruning.fractions'),
  );
  assert.throws(
    () => resolvePruning(pruningOf({ kind: 'layerwise-magnitude', exclude: ['conv1.weight'] }), lenet),
    specErrorNaming('pruning.exclude'),
  );
});

test('layerwise magnitude removes exact per-layer counts from LeNet-300-100, level after level; biases never', () => {
  const strategy = resolvePruning(pruningOf({ kind: 'layerwise-magnitude' }), lenet);
  const dense = denseMasks(lenet.params);
  assert.deepEqual(Object.keys(dense).sort(), ['fc1.weight', 'fc2.weight', 'fc3.weight']);
  assert.deepEqual(prunableNames(lenet.params), ['fc1.weight', 'fc2.weight', 'fc3.weight']);

  const m1 = prune(lenet.init(11), dense, strategy);
  assert.deepEqual(Object.keys(m1).sort(), ['fc1.weight', 'fc2.weight', 'fc3.weight'], 'no bias masks');
  assert.equal(SIZES['fc1.weight']! - alive(m1, 'fc1.weight'), Math.round(0.2 * 235_200));
  assert.equal(SIZES['fc2.weight']! - alive(m1, 'fc2.weight'), Math.round(0.2 * 30_000));
  assert.equal(SIZES['fc3.weight']! - alive(m1, 'fc3.weight'), Math.round(0.1 * 1_000));
  assert.equal(alive(m1, 'fc1.weight'), 188_160);
  assert.equal(alive(m1, 'fc2.weight'), 24_000);
  assert.equal(alive(m1, 'fc3.weight'), 900);

  // Level 2 removes the same shares of the survivors, and only survivors.
  const m2 = prune(lenet.init(12), m1, strategy);
  const rate: Record<string, number> = { 'fc1.weight': 0.2, 'fc2.weight': 0.2, 'fc3.weight': 0.1 };
  for (const name of Object.keys(SIZES)) {
    const r1 = alive(m1, name);
    assert.equal(alive(m2, name), r1 - pruneCount(rate[name]!, r1), name);
    const a = m1[name]!.data;
    const b = m2[name]!.data;
    for (let i = 0; i < b.length; i++) if (b[i] === 1) assert.equal(a[i], 1, `${name}[${i}] revived`);
  }
  const report = sparsityReport(m2, lenet.params);
  assert.equal(report.total, ALL, 'biases are not counted as prunable');
});

test('one-shot strategy reaches the trunk level-L count from the dense weights in one step', () => {
  const dense = lenet.init(3);
  const global = resolvePruning(pruningOf({ kind: 'global-magnitude', fraction: 0.2 }), lenet);
  const layerwise = resolvePruning(pruningOf({ kind: 'layerwise-magnitude' }), lenet);
  for (const level of [1, 2, 3, 5]) {
    const gTrunk = trunkMasks(global, level);
    const gOne = prune(
      dense,
      denseMasks(lenet.params),
      oneShotStrategy(global, sparsityReport(gTrunk, lenet.params)),
    );
    const covered = (m: NamedTensors) => alive(m, 'fc1.weight') + alive(m, 'fc2.weight');
    assert.equal(covered(gOne), covered(gTrunk), `global level ${level}: covered layers' total`);
    assert.equal(alive(gOne, 'fc3.weight'), SIZES['fc3.weight'], `global level ${level}: output stays dense`);

    const lTrunk = trunkMasks(layerwise, level);
    const lOne = prune(
      dense,
      denseMasks(lenet.params),
      oneShotStrategy(layerwise, sparsityReport(lTrunk, lenet.params)),
    );
    for (const name of Object.keys(SIZES)) {
      assert.equal(alive(lOne, name), alive(lTrunk, name), `layerwise level ${level}: ${name}`);
    }
  }
  // With every layer covered, global one-shot matches the whole count too.
  const all = resolvePruning(pruningOf({ kind: 'global-magnitude', fraction: 0.2, exclude: [] }), lenet);
  const trunk = trunkMasks(all, 4);
  const one = prune(
    dense,
    denseMasks(lenet.params),
    oneShotStrategy(all, sparsityReport(trunk, lenet.params)),
  );
  assert.equal(sparsityReport(one, lenet.params).remaining, sparsityReport(trunk, lenet.params).remaining);
});

/** The same object with its keys, and those of nested objects, in reverse order. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>)
      .reverse()
      .map(([k, x]) => [k, reversedKeys(x)]),
  );
}

test('trunk lineage ids hash what determines the levels and nothing else', () => {
  const s = spec({ pruning: { kind: 'global-magnitude', fraction: 0.2 }, rewind: { step: 10 } });
  const id = trunkLineageId(s);
  assert.match(id, /^[0-9a-f]{24}$/);
  assert.deepEqual(Object.keys(reversedKeys(s) as object), Object.keys(s).reverse());
  assert.equal(trunkLineageId(reversedKeys(s) as LotterySpec), id, 'key order');
  assert.equal(trunkLineageId(parseLotterySpec(reversedKeys(s))), id, 'key order after parsing');

  // Asking for more levels continues the lineage; branches, labels and operations are not part of it.
  assert.equal(trunkLineageId({ ...s, levels: 7 }), id);
  assert.equal(trunkLineageId({ ...s, branches: [{ kind: 'reinit', seed: 1 }, { kind: 'one-shot' }] }), id);
  assert.equal(trunkLineageId({ ...s, experiment: 'another' }), id);
  assert.equal(trunkLineageId({ ...s, checkpointEvery: 3, heartbeatTimeoutSeconds: 5 }), id);
  // Two spellings of the same pruning are one lineage: the default exclusion is the output layer.
  const spelled = {
    ...s,
    pruning: { kind: 'global-magnitude' as const, fraction: 0.2, exclude: ['fc3.weight'] },
  };
  assert.equal(trunkLineageId(spelled), id, 'explicit default exclude');
  const two = (exclude: string[]) =>
    trunkLineageId({ ...s, pruning: { kind: 'global-magnitude', fraction: 0.2, exclude } });
  assert.equal(two(['fc3.weight', 'fc1.weight']), two(['fc1.weight', 'fc3.weight']), 'exclude order');

  const changed: [string, LotterySpec][] = [
    ['pruning fraction', { ...s, pruning: { kind: 'global-magnitude', fraction: 0.3 } }],
    ['pruning exclude', { ...s, pruning: { kind: 'global-magnitude', fraction: 0.2, exclude: [] } }],
    ['pruning kind', { ...s, pruning: pruningOf({ kind: 'layerwise-magnitude' }) }],
    ['rewind step', { ...s, rewind: { step: 20 } }],
    ['rewind to init', { ...s, rewind: 'init' }],
    ['train seed', { ...s, train: { ...s.train, seed: 4 } }],
    ['train iterations', { ...s, train: { ...s.train, iterations: 101 } }],
    ['train optimizer', { ...s, train: { ...s.train, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0 } } }],
    ['train data', { ...s, train: { ...s.train, trainLimit: 640 } }],
  ];
  const seen = new Set([id]);
  for (const [what, other] of changed) {
    const o = trunkLineageId(other);
    assert.notEqual(o, id, what);
    assert.ok(!seen.has(o), `${what} collides with another variant`);
    seen.add(o);
  }
});

test('branch lineage ids: one per branch; a rewind branch is the trunk with that rewind point', () => {
  const s = spec({ rewind: { step: 10 } });
  const trunk = trunkLineageId(s);
  const branches: BranchSpec[] = [
    { kind: 'reinit', seed: 1 },
    { kind: 'reinit', seed: 2 },
    { kind: 'random-prune', seed: 1 },
    { kind: 'random-prune', seed: 2 },
    { kind: 'random-prune', seed: 1, scope: 'global' },
    { kind: 'one-shot' },
    { kind: 'rewind', to: 'init' },
    { kind: 'rewind', to: { step: 20 } },
  ];
  const ids = branches.map((b) => branchLineageId(s, b));
  assert.equal(new Set([trunk, ...ids]).size, branches.length + 1, 'all distinct, and none is the trunk');
  for (const b of branches) assert.equal(branchLineageId({ ...s, levels: 9 }, b), branchLineageId(s, b));
  // Layerwise is random pruning's default scope: spelled out, it is the same branch (and label).
  const explicit: BranchSpec = { kind: 'random-prune', seed: 1, scope: 'layerwise' };
  assert.equal(branchLineageId(s, explicit), branchLineageId(s, { kind: 'random-prune', seed: 1 }));
  // A branch belongs to its trunk: another trunk gives its branches other ids.
  const other = { ...s, train: { ...s.train, seed: 99 } };
  for (const b of branches) assert.notEqual(branchLineageId(other, b), branchLineageId(s, b));

  assert.equal(
    branchLineageId(s, { kind: 'rewind', to: { step: 20 } }),
    trunkLineageId({ ...s, rewind: { step: 20 } }),
  );
  assert.equal(branchLineageId(s, { kind: 'rewind', to: 'init' }), trunkLineageId({ ...s, rewind: 'init' }));
  // Rewinding a step-10 trunk to step 10 is that trunk itself: its levels are shared, not retrained.
  assert.equal(branchLineageId(s, { kind: 'rewind', to: { step: 10 } }), trunk);
});

test('spec validation refuses late rewind points, duplicate branches and unknown fields', () => {
  assert.throws(() => spec({ rewind: { step: 100 } }), specErrorNaming('rewind.step'));
  assert.throws(() => spec({ rewind: { step: 250 } }), specErrorNaming('rewind.step'));
  assert.doesNotThrow(() => spec({ rewind: { step: 99 } }));
  assert.throws(() => spec({ rewind: { step: 0 } }), specErrorNaming('rewind.step'));
  assert.throws(
    () => spec({ branches: [{ kind: 'one-shot' }, { kind: 'rewind', to: { step: 100 } }] }),
    specErrorNaming('branches.1.to.step'),
  );

  // `reinit` defaults to seed 1, so these two are the same branch.
  assert.throws(
    () => spec({ branches: [{ kind: 'reinit' }, { kind: 'one-shot' }, { kind: 'reinit', seed: 1 }] }),
    specErrorNaming('branches.2'),
  );
  assert.throws(
    () =>
      spec({
        branches: [
          { kind: 'rewind', to: { step: 5 } },
          { kind: 'rewind', to: { step: 5 } },
        ],
      }),
    specErrorNaming('branches.1'),
  );
  assert.doesNotThrow(() => spec({ branches: [{ kind: 'reinit' }, { kind: 'reinit', seed: 2 }] }));

  const unknown: [string, Record<string, unknown>][] = [
    ['(root)', { levles: 3 }],
    ['train', { train: { ...baseInput.train, lr: 0.1 } }],
    ['pruning', { pruning: { kind: 'global-magnitude', fractoin: 0.2 } }],
    ['pruning', { pruning: { kind: 'global-magnitude', outputFraction: 0.1 } }],
    ['rewind', { rewind: { step: 5, of: 'dense' } }],
    ['branches.0', { branches: [{ kind: 'reinit', sed: 2 }] }],
    ['branches.0', { branches: [{ kind: 'one-shot', seed: 2 }] }],
  ];
  for (const [field, over] of unknown) {
    assert.throws(
      () => parseLotterySpec({ ...baseInput, ...over }),
      specErrorNaming(field),
      JSON.stringify(over),
    );
  }
  assert.throws(() => spec({ pruning: { kind: 'magnitude' } as never }), specErrorNaming('pruning.kind'));
  assert.throws(() => spec({ branches: [{ kind: 'lottery' } as never] }), specErrorNaming('branches.0.kind'));
});
