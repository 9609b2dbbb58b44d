// Sweep specs: which values each trial gets (grid order, seeded random draws), the trial's spec and workflow id,
// and bad sweeps refused before anything starts, with the field named.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { lotteryKind, trainKind } from '../contract/spec-kinds';
import { lotteryMetrics } from '../contract/spec-kinds/lottery';
import { SpecError } from '../contract/spec';
import {
  parseSweepSpec,
  trialAssignments,
  trialCount,
  trialLabel,
  withField,
  type SweepResult,
  type SweepSpecInput,
} from '../contract/sweep';
import { planTrials, sweepWorkflowId, validateSweep } from '../contract/sweep-trials';
import type { LotteryResult } from '../contract/lottery';
import { renderSpec } from '../report/plot';
import { formatSweepText, sweepPlotSpec } from '../report/sweep';
import { tinyLenetTrain } from './support/specs';

const lotteryBase = {
  experiment: 'sweep-spec',
  train: tinyLenetTrain(0, { iterations: 20, evalEvery: 10 }),
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.2 },
  rewind: 'init',
};

function sweep(over: Partial<SweepSpecInput> = {}): SweepSpecInput {
  return {
    sweep: 'demo',
    base: lotteryBase,
    axes: [
      { field: 'rewind', values: ['init', { step: 5 }] },
      { field: 'pruning.fraction', values: [0.2, 0.5, 0.8] },
    ],
    ...over,
  };
}

function refusal(input: unknown): string[] {
  try {
    validateSweep(parseSweepSpec(input));
  } catch (err) {
    assert.ok(err instanceof SpecError, String(err));
    return err.issues;
  }
  assert.fail('the sweep was accepted');
}

test('a grid runs every combination, the first axis slowest', () => {
  const spec = parseSweepSpec(sweep());
  assert.equal(trialCount(spec), 6);
  assert.deepEqual(
    Array.from({ length: 6 }, (_, i) => trialLabel(trialAssignments(spec, i))),
    [
      'rewind=init pruning.fraction=0.2',
      'rewind=init pruning.fraction=0.5',
      'rewind=init pruning.fraction=0.8',
      'rewind={"step":5} pruning.fraction=0.2',
      'rewind={"step":5} pruning.fraction=0.5',
      'rewind={"step":5} pruning.fraction=0.8',
    ],
  );
  assert.throws(() => trialAssignments(spec, 6), /outside 0\.\.5/);
});

test('random draws are seeded per trial, inside their ranges, and change with the seed', () => {
  const input = sweep({
    axes: [
      { field: 'train.optimizer.lr', logUniform: [0.001, 0.1] },
      { field: 'train.seed', int: [0, 3] },
      { field: 'pruning.fraction', uniform: [0.1, 0.3] },
      { field: 'rewind', values: ['init', { step: 5 }] },
    ],
    random: { trials: 200, seed: 7 },
  });
  const spec = parseSweepSpec(input);
  assert.equal(trialCount(spec), 200);
  const draws = Array.from({ length: 200 }, (_, i) => trialAssignments(spec, i));
  assert.deepEqual(trialAssignments(spec, 123), draws[123]);
  const col = (k: number) => draws.map((d) => d[k]?.[1]);
  for (const lr of col(0) as number[]) assert.ok(lr >= 0.001 && lr <= 0.1, String(lr));
  assert.deepEqual([...new Set(col(1) as number[])].sort(), [0, 1, 2, 3]);
  for (const f of col(2) as number[]) assert.ok(f >= 0.1 && f <= 0.3, String(f));
  assert.equal(new Set(col(3).map((v) => JSON.stringify(v))).size, 2);
  // Log-uniform: about half the draws below the geometric middle, 0.01.
  const below = (col(0) as number[]).filter((lr) => lr < 0.01).length;
  assert.ok(below > 70 && below < 130, `${below} of 200 below 0.01`);
  const other = parseSweepSpec({ ...input, random: { trials: 200, seed: 8 } });
  assert.notDeepEqual(trialAssignments(other, 0), draws[0]);
});

test('a field set inside a value that is not an object replaces it (rewind: init, then rewind.step)', () => {
  assert.deepEqual(withField({ rewind: 'init', a: 1 }, 'rewind.step', 100), { rewind: { step: 100 }, a: 1 });
  assert.deepEqual(withField({}, 'train.optimizer.lr', 0.1), { train: { optimizer: { lr: 0.1 } } });
});

test("each trial is its kind's spec with its values, under the id that kind gives that spec", () => {
  const spec = parseSweepSpec(sweep());
  const page = planTrials(spec, 4, 10);
  assert.equal(page.total, 6);
  assert.deepEqual(
    page.trials.map((t) => t.index),
    [4, 5],
  );
  const t = page.trials[0]!;
  const expected = lotteryKind.parse({
    ...lotteryBase,
    rewind: { step: 5 },
    pruning: { kind: 'global-magnitude', fraction: 0.5 },
  });
  assert.deepEqual(t.workflowArgs, [{ spec: expected }]);
  assert.equal(t.workflowId, lotteryKind.workflowId(expected));
  assert.equal(t.kind, 'lottery');
  assert.equal(planTrials(spec, 4, 1).trials[0]?.workflowId, t.workflowId);
  assert.notEqual(planTrials(spec, 3, 1).trials[0]?.workflowId, t.workflowId);
  assert.match(sweepWorkflowId(spec), /^sweep-demo-[0-9a-f]{16}$/);
  const train = parseSweepSpec({
    sweep: 't',
    base: { experiment: 'x', train: tinyLenetTrain(0, { iterations: 5, evalEvery: 5 }) },
    axes: [{ field: 'train.seed', values: [1, 2] }],
  });
  assert.equal(validateSweep(train).kind, 'train');
  assert.deepEqual(planTrials(train, 0, 1).trials[0]?.workflowArgs, [
    trainKind.parse({
      experiment: 'x',
      train: { ...tinyLenetTrain(0, { iterations: 5, evalEvery: 5 }), seed: 1 },
    }),
  ]);
});

test('bad sweeps are refused before anything starts, naming the field', () => {
  assert.deepEqual(refusal(sweep({ axes: [{ field: 'pruning.fractoin', values: [0.2] }] })), [
    "axes[0].field: 'pruning.fractoin' is not a field of a lottery spec",
  ]);
  assert.deepEqual(refusal(sweep({ axes: [{ field: 'pruning.fraction', values: [0.2, 1.5] }] })).length, 1);
  assert.match(
    refusal(sweep({ axes: [{ field: 'pruning.fraction', values: [0.2, 1.5] }] }))[0]!,
    /^axes\[0\] \(pruning\.fraction = 1\.5\): pruning\.fraction: /,
  );
  assert.throws(
    () => parseSweepSpec(sweep({ axes: [{ field: 'train.seed', values: [] }] })),
    /axes\.0\.values: an axis needs at least one value/,
  );
  assert.throws(() => parseSweepSpec(sweep({ axes: [] })), /axes: a sweep needs at least one axis/);
  assert.throws(
    () => parseSweepSpec(sweep({ axes: [{ field: 'train.seed', int: [0, 3] }] })),
    /axes\.0\.values: a grid axis lists its values/,
  );
  assert.throws(
    () =>
      parseSweepSpec(
        sweep({
          axes: [
            { field: 'train.seed', values: [1] },
            { field: 'train.seed', values: [2] },
          ],
        }),
      ),
    /axes\.1\.field: 'train\.seed' is already axes\[0\]/,
  );
  assert.throws(
    () => parseSweepSpec(sweep({ axes: [{ field: 'a..b', values: [1] }] })),
    /axes\.0\.field: a dotted field path/,
  );
  assert.throws(
    () => parseSweepSpec(sweep({ axes: [{ field: 'x', uniform: [2, 1] }], random: { trials: 2 } })),
    /axes\.0\.uniform/,
  );
  assert.deepEqual(refusal(sweep({ kind: 'nope' })), [
    "kind: 'nope' is not a spec kind; known: train, lottery, precompute, distill",
  ]);
  assert.match(refusal(sweep({ base: { hello: 1 } }))[0]!, /^base: not a spec of any kind/);
  assert.match(refusal(sweep({ base: { ...lotteryBase, levels: -1 } }))[0]!, /^base\.levels: /);
});

const level = (l: number, acc: number, pct: number) => ({
  level: l,
  finalTestAccuracy: acc,
  remainingPct: pct,
});

test("a lottery trial's metrics: last, best and dense levels, and each branch's last level", () => {
  const r = {
    levels: [level(0, 0.97, 100), level(1, 0.98, 80), level(2, 0.96, 64)],
    branches: [{ label: 'reinit-s1', levels: [level(2, 0.9, 64), level(1, 0.95, 80)] }],
  } as unknown as LotteryResult;
  assert.deepEqual(lotteryMetrics(r), {
    testAccuracy: 0.96,
    remainingPct: 64,
    levels: 2,
    denseTestAccuracy: 0.97,
    bestTestAccuracy: 0.98,
    bestRemainingPct: 80,
    'reinit-s1.testAccuracy': 0.9,
  });
});

test('the result table lists values, metrics and errors; the plot averages the seed axis', async () => {
  const rows = [0, 1, 2, 3].map((i) => ({
    index: i,
    label: '',
    assignments: [
      ['pruning.fraction', i < 2 ? 0.2 : 0.5],
      ['train.seed', i % 2],
    ] as [string, unknown][],
    workflowId: `w${i}`,
    status: i === 3 ? ('failed' as const) : ('done' as const),
    ...(i === 3 ? { error: 'Terminated' } : { metrics: { testAccuracy: 0.9 + i / 100 } }),
    attached: i === 0,
  }));
  const result: SweepResult = { sweep: 's', kind: 'lottery', total: 4, rows };
  assert.equal(
    formatSweepText(result),
    [
      'sweep s (lottery): 4 of 4 trials finished, 1 failed',
      'trial  pruning.fraction  train.seed  status           testAccuracy  error',
      '0      0.2               0           done (attached)  0.9000',
      '1      0.2               1           done             0.9100',
      '2      0.5               0           done             0.9200',
      '3      0.5               1           failed           -             Terminated',
    ].join('\n'),
  );
  const spec = sweepPlotSpec(result, 'testAccuracy');
  assert.ok(spec);
  const svg = (await renderSpec(spec, 'svg')).toString('utf8');
  assert.match(svg, /sweep s: testAccuracy vs pruning\.fraction/);
  assert.equal(sweepPlotSpec(result, 'nothing'), null);
});
