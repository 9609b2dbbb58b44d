// `lth lottery` / `lth branch` input handling and the report's series, without services:
//   node --import tsx --test test/cli-lottery-spec.test.ts
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { branchFromFlags } from '../cli/commands/branch';
import { lotterySpecFromFlags, parseBranchFlag, parseRewindFlag } from '../cli/lottery-spec';
import { plotSeries, reportSeries, TRUNK_SERIES } from '../report/lottery';
import { type LevelResult } from '../contract/lottery';
import { SpecError } from '../contract/spec';

const EXAMPLE = path.join(__dirname, '..', 'examples', 'lottery-lenet-mnist.yaml');

test('the example spec is valid: LeNet-300-100 on MNIST with open_lth SGD, reinit and random-prune controls', () => {
  const spec = lotterySpecFromFlags({ config: EXAMPLE });
  assert.equal(spec.train.model, 'lenet-300-100');
  assert.equal(spec.train.dataset, 'mnist');
  assert.deepEqual(spec.train.optimizer, { kind: 'sgd', lr: 0.1, momentum: 0 });
  assert.equal(spec.train.batchSize, 128);
  assert.deepEqual(spec.pruning, { kind: 'global-magnitude', fraction: 0.2 });
  assert.deepEqual(
    spec.branches.map((b) => b.kind),
    ['reinit', 'random-prune'],
  );
});

test('flags override the spec file field by field', () => {
  const spec = lotterySpecFromFlags({
    config: EXAMPLE,
    experiment: 'x',
    levels: 3,
    iterations: 100,
    seed: 5,
    fraction: 0.5,
    rewind: parseRewindFlag('20'),
    branch: parseBranchFlag('rewind:init', parseBranchFlag('one-shot')),
  });
  assert.equal(spec.experiment, 'x');
  assert.equal(spec.levels, 3);
  assert.equal(spec.train.iterations, 100);
  assert.equal(spec.train.epochs, undefined);
  assert.equal(spec.train.seed, 5);
  assert.deepEqual(spec.pruning, { kind: 'global-magnitude', fraction: 0.5 });
  assert.deepEqual(spec.rewind, { step: 20 });
  assert.deepEqual(spec.branches, [{ kind: 'one-shot' }, { kind: 'rewind', to: 'init' }]);
});

test('bad input names the field or the flag', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-lottery-spec-'));
  const file = path.join(dir, 'spec.yaml');
  fs.writeFileSync(
    file,
    'train: { iterations: 50 }\npruning: { kind: layerwise-magnitude, fractions: { fc7.weight: 0.3 } }\n',
  );
  assert.throws(
    () => lotterySpecFromFlags({ config: file }),
    (err: unknown) => err instanceof SpecError && /pruning\.fractions: 'fc7\.weight'/.test(err.message),
  );
  assert.throws(
    () => lotterySpecFromFlags({ config: file, rewind: { step: 50 } }),
    /rewind\.step: rewind step 50/,
  );
  assert.throws(() => parseRewindFlag('0'), /expected 'init' or a positive step number/);
  assert.throws(
    () => parseBranchFlag('prune'),
    /expected reinit, random-prune\[:global\], one-shot, rewind:<step\|init> or twin/,
  );
  assert.throws(() => branchFromFlags({ kind: 'one-shot', seed: 2 }), /--seed applies to --kind reinit/);
  assert.throws(() => branchFromFlags({ kind: 'rewind' }), /--kind rewind needs --rewind-step/);
  assert.deepEqual(branchFromFlags({ kind: 'reinit', seed: 2 }), { kind: 'reinit', seed: 2 });
  // An explicit layerwise scope is the default and names the same lineage as none.
  assert.deepEqual(branchFromFlags({ kind: 'random-prune', scope: 'layerwise' }), {
    kind: 'random-prune',
    seed: 1,
  });
  assert.deepEqual(parseBranchFlag('random-prune:global'), [{ kind: 'random-prune', scope: 'global' }]);
  assert.throws(
    () => branchFromFlags({ kind: 'reinit', scope: 'global' }),
    /--scope applies to --kind random-prune/,
  );
  assert.deepEqual(branchFromFlags({ kind: 'rewind', rewindStep: { step: 9 } }), {
    kind: 'rewind',
    to: { step: 9 },
  });
});

function level(n: number, pct: number, acc: number): LevelResult {
  return {
    level: n,
    remainingPct: pct,
    bestTestAccuracy: acc + 0.01,
    bestIteration: 100,
    finalTestAccuracy: acc,
  } as LevelResult;
}

test("every control's series starts at the trunk's dense level 0", () => {
  const trunk = [level(1, 80, 0.95), level(0, 100, 0.9)];
  const series = reportSeries(trunk, [
    { label: 'reinit-s1', levels: [level(2, 64, 0.7), level(1, 80, 0.8)] },
    { label: 'rewind-step5', levels: [level(0, 100, 0.91), level(1, 80, 0.93)] },
  ]);
  assert.deepEqual(
    series.map((s) => [s.name, s.rows.map((r) => [r.level, r.finalTestAccuracy])]),
    [
      [
        TRUNK_SERIES,
        [
          [1, 0.95],
          [0, 0.9],
        ],
      ],
      [
        'reinit-s1',
        [
          [0, 0.9],
          [1, 0.8],
          [2, 0.7],
        ],
      ],
      // A rewind branch has a level 0 of its own (its rewind point differs).
      [
        'rewind-step5',
        [
          [0, 0.91],
          [1, 0.93],
        ],
      ],
    ],
  );
  const best = plotSeries(series, 'best');
  assert.deepEqual(best[1]?.points[0], { remainingPct: 100, accuracy: 0.91 });
});
