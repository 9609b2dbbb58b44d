/**
 * Learning-rate schedules (ml/train/schedule.ts) as open_lth defines them: λ(it) per iteration against the formula
 * written out here, the spec's refusals, and training with one. A milestone schedule must give, byte for byte, the
 * run made by hand in two segments (a constant rate up to the milestone, then the rate × gamma from that state):
 * on the tape everywhere, and as a graph on native TensorFlow (where a rate frozen into the trace would not).
 * Warm-up's first step has rate 0: the weights do not move. A scheduled run resumed mid-way is exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { hostBytesEqual } from '../ml/tensors';
import {
  parseTrainConfig,
  stateFromTensors,
  stateToTensors,
  train,
  type TrainConfig,
  type TrainState,
} from '../ml/train';
import { lrFactor, scheduleSchema, stepIteration } from '../ml/train/schedule';

test('λ(it): milestones (bisect right), linear warm-up from 0, cosine to minFactor; "ep"/"it" steps', () => {
  assert.equal(stepIteration('2ep', 4), 8);
  assert.equal(stepIteration('1ep3it', 4), 7);
  assert.equal(stepIteration('5it', 4), 5);
  assert.equal(stepIteration(6, 4), 6);
  const run = { stepsPerEpoch: 4, iterations: 20 };
  const f = lrFactor(scheduleSchema.parse({ milestones: ['2ep', 12], gamma: 0.1, warmup: '5it' }), run);
  for (let it = 0; it < 20; it++) {
    // open_lth: 1 × gamma^bisect_right(milestones, it) × min(1, it / warmup), in double precision.
    const drops = [8, 12].filter((m) => m <= it).length;
    assert.equal(f(it), 1 * 0.1 ** drops * Math.min(1, it / 5), `it ${it}`);
  }
  assert.equal(f(0), 0);
  assert.equal(f(8), 0.1);
  const cos = lrFactor(scheduleSchema.parse({ cosine: true, minFactor: 0.1 }), run);
  assert.equal(cos(0), 1);
  assert.ok(Math.abs(cos(10) - 0.55) < 1e-15);
  assert.ok(Math.abs(cos(20) - 0.1) < 1e-15);
});

test('a schedule in a train config is checked, naming the field', () => {
  const base = {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1 },
    batchSize: 8,
    iterations: 4,
    evalEvery: 0,
    seed: 0,
  };
  for (const [schedule, problem] of [
    [{ milestones: ['1ep'] }, /schedule\.gamma: milestones and gamma go together/],
    [{ minFactor: 0.1 }, /schedule\.minFactor: minFactor is the end of the cosine decay/],
    [{ warmup: '3epochs' }, /schedule\.warmup/],
    [{ cosine: true, milestones: [2], gamma: 0.5 }, /schedule\.cosine: cosine and milestones/],
    [{ decay: 0.9 }, /schedule/],
  ] as const) {
    assert.throws(() => parseTrainConfig({ ...base, schedule }), problem, JSON.stringify(schedule));
  }
  assert.deepEqual(parseTrainConfig({ ...base, schedule: { warmup: 2 } }).schedule, { warmup: 2 });
});

// 48 samples in batches of 16: 3 steps an epoch.
const trainData = loadDataset('mnist', 'train', { limit: 48 });
const testData = loadDataset('mnist', 'test', { limit: 20 });
const data = { train: trainData, test: testData };

function cfg(model: string, extra: Partial<TrainConfig> = {}): TrainConfig {
  return {
    model,
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
    batchSize: 16,
    iterations: 7,
    evalEvery: 0,
    seed: 3,
    trainLimit: 48,
    testLimit: 20,
    ...extra,
  };
}

function assertSameWeights(a: TrainState, b: TrainState, what: string): void {
  for (const [k, t] of Object.entries(a.weights))
    assert.ok(hostBytesEqual(t, b.weights[k]!), `${what}: ${k}`);
  for (const [k, t] of Object.entries(a.optimizer))
    assert.ok(hostBytesEqual(t, b.optimizer[k]!), `${what}: optimizer ${k}`);
}

async function stateAt(config: TrainConfig, at: number): Promise<TrainState> {
  let state: TrainState | null = null;
  await train(config, data, {
    checkpointEvery: at,
    onCheckpoint: async (s) => {
      if (s.step !== at) return;
      const { tensors, metadata } = stateToTensors(s);
      state = stateFromTensors(tensors, metadata);
    },
  });
  assert.ok(state, `a state at step ${at}`);
  return state;
}

const RUNS: { backend: BackendName; model: string; engine: string; skip: string | false }[] = [
  { backend: 'cpu', model: 'lenet-300-100', engine: 'tape', skip: false },
  {
    backend: 'tensorflow',
    model: 'conv-2',
    engine: 'graph',
    skip: process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false,
  },
];

for (const r of RUNS) {
  test(
    `${r.model} on ${r.backend} (${r.engine}): a milestone schedule gives the two-segment run's bytes; resumed mid-way, the same`,
    { skip: r.skip },
    async () => {
      await selectBackend({ prefer: r.backend, threads: 1, log: () => {} });
      const milestone = 4;
      const scheduled = cfg(r.model, { schedule: { milestones: [milestone], gamma: 0.3 } });
      const whole = await train(scheduled, data);
      assert.equal(whole.engine?.name, r.engine);
      // By hand: a constant 0.05 for steps 0..3, then 0.05 × 0.3 from that state (the same data order: the seed
      // and the step decide it).
      const first = await stateAt(cfg(r.model), milestone);
      const second = await train(
        cfg(r.model, { optimizer: { kind: 'sgd', lr: 0.05 * 0.3, momentum: 0.9 } }),
        data,
        {
          resumeFrom: first,
        },
      );
      assertSameWeights(whole.state, second.state, 'scheduled vs by hand');
      // Not a vacuous equality: without the schedule the run ends elsewhere.
      const constant = await train(cfg(r.model), data);
      assert.ok(
        Object.entries(constant.state.weights).some(([k, t]) => !hostBytesEqual(t, whole.state.weights[k]!)),
        'the schedule changed the run',
      );
      // Resumed from step 5 (after the milestone, mid-epoch) in a new trainer: the same bytes.
      const resumed = await train(scheduled, data, { resumeFrom: await stateAt(scheduled, 5) });
      assertSameWeights(whole.state, resumed.state, 'resumed');
    },
  );
}

test('warm-up: the first step has rate 0 (open_lth), so plain SGD leaves the weights as they were', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const config = cfg('lenet-300-100', {
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0 },
    schedule: { warmup: '1ep' },
    iterations: 1,
  });
  const one = await train(config, data);
  const init = getModel('lenet-300-100').init(config.seed);
  for (const [k, t] of Object.entries(init)) assert.ok(hostBytesEqual(t, one.state.weights[k]!), k);
  // And the second step moves them (λ = 1/3).
  const two = await train({ ...config, iterations: 2 }, data);
  assert.ok(Object.entries(init).some(([k, t]) => !hostBytesEqual(t, two.state.weights[k]!)));
});

test(
  'a scheduled LeNet on native TensorFlow does not take the hand-written dense step (its rate is a constant there)',
  { skip: process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const plain = await train(cfg('lenet-300-100', { iterations: 2 }), data);
    assert.equal(plain.engine?.name, 'native-dense');
    const scheduled = await train(cfg('lenet-300-100', { iterations: 2, schedule: { warmup: 1 } }), data);
    assert.equal(scheduled.engine?.name, 'graph');
  },
);
