// The lottery-ticket pipeline end to end on the real Temporal server and MinIO: a tiny LeNet-300-100 trunk
// (levels 0..2, global magnitude), its level artifacts and exact sparsity, reuse of finished levels, and the
// control branches reusing the trunk's artifacts without retraining it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { trunkLineageId } from '../contract/ids';
import { startOrAttachLottery } from '../client/runs';
import { getModel } from '../ml/models';
import { denseMasks, prune } from '../ml/pruning';
import { hostBytesEqual } from '../ml/tensors';
import { stateFromTensors } from '../ml/train';
import { levelTensorKey } from '../store';
import { openStore } from '../workers/connection';
import { parseLotterySpec } from '../contract/lottery';
import { type LotteryStatus } from '../contract/lottery';
import { testEndpoints } from './support/env';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `lt${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const spec = parseLotterySpec({
  experiment: tag,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    iterations: 40,
    evalEvery: 20,
    seed: 4,
    trainLimit: 320,
    testLimit: 100,
  },
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 10 },
  checkpointEvery: 15,
});

test('lotteryWorkflow trains levels 0..2 with exact global-magnitude masks rewound to step 10', async () => {
  const run = await startOrAttachLottery(workers.client, spec);
  const result = await run.handle.result();
  assert.deepEqual(
    result.levels.map((l) => l.level),
    [0, 1, 2],
  );
  const lineage = trunkLineageId(spec);
  assert.equal(result.lineageId, lineage);
  const params = getModel('lenet-300-100').params;
  // fc3 (the output layer) is excluded by default: fc1 + fc2 = 235,200 + 30,000 prunable, halved twice.
  const covered = 784 * 300 + 300 * 100;
  const out = 100 * 10;
  const afterOne = covered - Math.round(covered * 0.5);
  const afterTwo = afterOne - Math.round(afterOne * 0.5);
  assert.deepEqual(
    result.levels.map((l) => l.remaining),
    [covered + out, afterOne + out, afterTwo + out],
  );
  for (const l of result.levels) {
    assert.equal(l.steps, 40);
    assert.equal(l.startStep, l.level === 0 ? 10 : 10);
    assert.ok(l.finalTestAccuracy > 0.3, `level ${l.level} accuracy ${l.finalTestAccuracy}`);
  }

  // Level 1's mask is global magnitude pruning of level 0's final weights; its rewind point is the dense run's
  // state at step 10 under that mask.
  const store = openStore(e);
  const w0 = (await store.getTensors(levelTensorKey(lineage, 0, 'weights'))).tensors;
  const m1 = (await store.getTensors(levelTensorKey(lineage, 1, 'mask'))).tensors;
  const expected = prune(w0, denseMasks(params), {
    kind: 'global-magnitude',
    fraction: 0.5,
    exclude: ['fc3.weight'],
  });
  for (const name of Object.keys(expected)) assert.ok(hostBytesEqual(expected[name]!, m1[name]!), name);
  const r0 = await store.getTensors(levelTensorKey(lineage, 0, 'rewind'));
  const r1 = await store.getTensors(levelTensorKey(lineage, 1, 'rewind'));
  const s0 = stateFromTensors(r0.tensors, r0.metadata);
  const s1 = stateFromTensors(r1.tensors, r1.metadata);
  assert.equal(s0.step, 10);
  assert.equal(s1.step, 10);
  const fc1 = s1.weights['fc1.weight']!.data;
  const mask = m1['fc1.weight']!.data;
  for (let i = 0; i < mask.length; i++) {
    assert.ok(mask[i] === 0 ? Object.is(fc1[i], 0) : fc1[i] === s0.weights['fc1.weight']!.data[i]);
  }
  // Final weights of level 2 keep its mask.
  const w2 = (await store.getTensors(levelTensorKey(lineage, 2, 'weights'))).tensors;
  const m2 = (await store.getTensors(levelTensorKey(lineage, 2, 'mask'))).tensors;
  for (const name of Object.keys(m2)) {
    const m = m2[name]!.data;
    const w = w2[name]!.data;
    for (let i = 0; i < m.length; i++) if (m[i] === 0) assert.ok(Object.is(w[i], 0));
  }

  const status = await run.handle.query<LotteryStatus>('status');
  assert.equal(status.phase, 'done');
  assert.equal(status.levels.length, 3);
});

test('a rerun with more levels reuses the finished ones; branches reuse the trunk without retraining it', async () => {
  const more = parseLotterySpec({
    ...spec,
    levels: 3,
    branches: [
      { kind: 'reinit' },
      { kind: 'random-prune' },
      { kind: 'random-prune', scope: 'global' },
      { kind: 'one-shot' },
    ],
  });
  const run = await startOrAttachLottery(workers.client, more);
  const result = await run.handle.result();
  assert.deepEqual(
    result.levels.map((l) => [l.level, l.reused]),
    [
      [0, true],
      [1, true],
      [2, true],
      [3, false],
    ],
  );
  assert.equal(result.branches.length, 4);
  const trunk = new Map(result.levels.map((l) => [l.level, l]));
  for (const b of result.branches) {
    assert.deepEqual(
      b.levels.map((l) => l.level),
      [1, 2, 3],
      b.label,
    );
    for (const l of b.levels) {
      // Every branch level has the trunk's sparsity at that level, exactly.
      assert.equal(l.remaining, trunk.get(l.level)!.remaining, `${b.label} level ${l.level}`);
      assert.notEqual(l.lineageId, result.lineageId);
    }
  }
  const store = openStore(e);
  const reinit = result.branches.find((b) => b.branch.kind === 'reinit')!;
  const random = result.branches.find((b) => b.label === 'random-prune-s1')!;
  const globalRandom = result.branches.find((b) => b.label === 'random-prune-global-s1')!;
  const m2 = (await store.getTensors(trunk.get(2)!.mask.key)).tensors;
  const reinitMask = (await store.getTensors(reinit.levels[1]!.mask.key)).tensors;
  const randomMask = (await store.getTensors(random.levels[1]!.mask.key)).tensors;
  for (const name of Object.keys(m2)) {
    assert.ok(hostBytesEqual(m2[name]!, reinitMask[name]!), `reinit keeps the trunk's ${name} mask`);
  }
  assert.ok(
    !hostBytesEqual(m2['fc1.weight']!, randomMask['fc1.weight']!),
    'random masks differ from the trunk',
  );
  // Layerwise random keeps the trunk's count in every layer; global random only the total, fc3 left dense.
  const trunkMask2 = (name: string) => Array.from(m2[name]!.data).reduce((a, v) => a + v, 0);
  const count = (t: typeof m2, name: string) => Array.from(t[name]!.data).reduce((a, v) => a + v, 0);
  for (const name of Object.keys(m2)) assert.equal(count(randomMask, name), trunkMask2(name), name);
  const globalMask = (await store.getTensors(globalRandom.levels[1]!.mask.key)).tensors;
  assert.equal(count(globalMask, 'fc3.weight'), 1000);
  assert.equal(
    count(globalMask, 'fc1.weight') + count(globalMask, 'fc2.weight'),
    trunkMask2('fc1.weight') + trunkMask2('fc2.weight'),
  );
  assert.notEqual(count(globalMask, 'fc1.weight'), trunkMask2('fc1.weight'));
  // Reinit starts from another initialisation where the ticket starts, at the rewind step (10), so it trains as
  // many steps as the ticket with the same data order.
  assert.equal(reinit.levels[0]!.startStep, 10);
  assert.equal(reinit.levels[0]!.steps, trunk.get(1)!.steps);
  const reinitStart = (await store.getTensors(reinit.levels[0]!.rewind.key)).tensors;
  const ticketStart = (await store.getTensors(trunk.get(1)!.rewind.key)).tensors;
  const fc1 = 'weights/fc1.weight';
  assert.ok(!hostBytesEqual(reinitStart[fc1]!, ticketStart[fc1]!), 'reinit starts from other weights');

  // The same spec again attaches to the finished run instead of starting anything.
  const again = await startOrAttachLottery(workers.client, more);
  assert.equal(again.started, false);
  assert.equal(again.workflowId, run.workflowId);
});

test('a Conv-2 trunk prunes layerwise (Frankle & Carbin rates) with exact per-layer counts', async () => {
  const conv = parseLotterySpec({
    experiment: `${tag}-conv`,
    train: {
      model: 'conv-2',
      dataset: 'fashion-mnist',
      optimizer: { kind: 'sgd', lr: 0.01, momentum: 0.9 },
      batchSize: 16,
      iterations: 4,
      evalEvery: 4,
      seed: 2,
      trainLimit: 64,
      testLimit: 40,
    },
    levels: 1,
    pruning: {
      kind: 'layerwise-magnitude',
      fraction: 0.2,
      outputFraction: 0.1,
      fractions: { 'conv1.weight': 0.1, 'conv2.weight': 0.1 },
    },
  });
  const run = await startOrAttachLottery(workers.client, conv);
  const result = await run.handle.result();
  const store = openStore(e);
  const mask = (await store.getTensors(result.levels[1]!.mask.key)).tensors;
  const kept = (name: string) => Array.from(mask[name]!.data).reduce((a, v) => a + v, 0);
  const size = (name: string) => mask[name]!.data.length;
  for (const [name, f] of [
    ['conv1.weight', 0.1],
    ['conv2.weight', 0.1],
    ['fc1.weight', 0.2],
    ['fc2.weight', 0.2],
    ['fc3.weight', 0.1],
  ] as const) {
    assert.equal(kept(name), size(name) - Math.round(f * size(name)), name);
  }
  assert.deepEqual(Object.keys(mask).sort(), [
    'conv1.weight',
    'conv2.weight',
    'fc1.weight',
    'fc2.weight',
    'fc3.weight',
  ]);
});
