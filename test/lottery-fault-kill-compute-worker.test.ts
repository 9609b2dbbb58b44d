// Fault injection on an IMP trunk, on the real services: the compute worker is SIGKILLed while level 1 (a
// pruned, rewound level) is training, past its first checkpoint. A new compute worker picks the level up from its
// newest checkpoint, and the experiment must end with every level's mask and final weights bit-identical to the
// same IMP computed here in-process with ml/ directly, on the same (deterministic) WASM backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { resolvePruning } from '../contract/pruning';
import { trunkLineageId } from '../contract/ids';
import { toTrainConfig } from '../contract/train';
import { startOrAttachLottery } from '../client/runs';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { denseMasks, prune, sparsityReport } from '../ml/pruning';
import { hostBytesEqual, type NamedTensors } from '../ml/tensors';
import {
  maskTrainState,
  stateFromTensors,
  stateToTensors,
  train,
  type TrainResult,
  type TrainState,
} from '../ml/train';
import { checkpointPrefix, levelManifestKey, levelTensorKey, parseCheckpointStep } from '../store';
import { parseLotterySpec, type LotterySpec } from '../contract/lottery';
import { rewindStep } from '../contract/rewind';
import { type LotteryStatus } from '../contract/lottery';
import { testEndpoints } from './support/env';
import { useFaultInjection } from './support/workers';

const e = testEndpoints();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = Date.now().toString(36);
const harness = useFaultInjection(e, 100);

const ITERATIONS = 120;
const REWIND = 20;
const CHECKPOINT_EVERY = 10;

const spec: LotterySpec = parseLotterySpec({
  experiment: `lkill${tag}`,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    // Momentum: the rewind point and the checkpoints carry optimizer state that a resume must restore exactly.
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
    batchSize: 64,
    iterations: ITERATIONS,
    evalEvery: 40,
    seed: 21,
    trainLimit: 640,
    testLimit: 200,
  },
  levels: 2,
  pruning: { kind: 'layerwise-magnitude' },
  rewind: { step: REWIND },
  checkpointEvery: CHECKPOINT_EVERY,
  heartbeatTimeoutSeconds: 5,
});

interface ReferenceLevel {
  masks: NamedTensors;
  result: TrainResult;
}

/**
 * The same IMP trunk without any service, mirroring activities/lottery.ts: level 0 trains from model.init(seed)
 * and keeps its state at the rewind step; level L prunes level L-1's final weights within its mask and trains
 * from the rewind state with the new mask applied. States go through the stored tensor form, as they do there.
 */
async function reference(s: LotterySpec): Promise<ReferenceLevel[]> {
  const data = {
    train: loadDataset(s.train.dataset, 'train', { limit: s.train.trainLimit }),
    test: loadDataset(s.train.dataset, 'test', { limit: s.train.testLimit }),
  };
  const config = toTrainConfig(s.train, data.train.n);
  const model = getModel(config.model);
  const strategy = resolvePruning(s.pruning, model);
  const k = rewindStep(s.rewind);
  assert.ok(k > 0, 'this test rewinds to a step of the dense run');
  let stored: ReturnType<typeof stateToTensors> | null = null;
  const dense = await train(config, data, {
    initialWeights: model.init(config.seed),
    snapshotAt: [k],
    onSnapshot: async (state) => {
      stored = stateToTensors(state);
    },
  });
  const rewindPoint = (): TrainState => {
    assert.ok(stored, 'the dense run passed its rewind step');
    return stateFromTensors(stored.tensors, stored.metadata);
  };
  const levels: ReferenceLevel[] = [{ masks: denseMasks(model.params), result: dense }];
  for (let level = 1; level <= s.levels; level++) {
    const prev = levels[level - 1] as ReferenceLevel;
    const masks = prune(prev.result.state.weights, prev.masks, strategy);
    const result = await train(config, data, { resumeFrom: maskTrainState(rewindPoint(), masks), masks });
    levels.push({ masks, result });
  }
  return levels;
}

async function checkpointSteps(runId: string): Promise<number[]> {
  return (await harness.store.list(checkpointPrefix(runId))).map((o) => parseCheckpointStep(o.key) ?? -1);
}

async function assertSameTensors(key: string, sha256: string, expected: NamedTensors, what: string) {
  const stored = (await harness.store.getTensors(key, { expectSha256: sha256 })).tensors;
  assert.deepEqual(Object.keys(stored).sort(), Object.keys(expected).sort(), what);
  for (const [name, t] of Object.entries(expected)) {
    const got = stored[name];
    assert.ok(got, `${what}: ${name} is missing`);
    assert.deepEqual(got.shape, t.shape, `${what}: ${name} shape`);
    assert.ok(hostBytesEqual(got, t), `${what}: ${name} differs from the undisturbed run`);
  }
}

test('a compute worker SIGKILLed during an IMP level: the level resumes and every level is bit-identical', async () => {
  const expected = await reference(spec);
  const lineage = trunkLineageId(spec);
  const level1Run = `${lineage}-L1`;

  const victim = harness.spawnCompute();
  await victim.ready;
  const run = await startOrAttachLottery(harness.client, spec);
  assert.equal(run.started, true);

  // Level 1 starts at the rewind step (20) and checkpoints at 30, 40, ...: kill once a checkpoint past its first
  // one exists, so the retry has to resume mid-level rather than start the level over.
  const past = REWIND + 2 * CHECKPOINT_EVERY;
  const deadline = Date.now() + 300_000;
  let seen = -1;
  for (;;) {
    seen = Math.max(-1, ...(await checkpointSteps(level1Run)));
    if (seen >= past) break;
    assert.ok(
      !(await harness.store.exists(levelManifestKey(lineage, 1))),
      'level 1 finished before it was killed',
    );
    assert.ok(Date.now() < deadline, `no level-1 checkpoint at step >= ${past} within five minutes`);
    await sleep(20);
  }
  victim.child.kill('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');
  assert.ok(
    !(await harness.store.exists(levelManifestKey(lineage, 1))),
    'the kill must land while level 1 is still training',
  );
  assert.ok(seen < ITERATIONS, `checkpoint at step ${seen}`);

  // The trunk's live status shows level 0 done and level 1 running (progress signalled by the dead worker).
  const during = await run.handle.query<LotteryStatus>('status');
  assert.equal(during.phase, 'training');
  assert.deepEqual(
    during.levels.map((l) => l.level),
    [0],
  );
  const running = during.running.find((r) => r.level === 1);
  assert.ok(running, `status shows level 1 running: ${JSON.stringify(during.running)}`);
  assert.ok(running.step > REWIND && running.step < ITERATIONS, `level 1 progress at step ${running.step}`);

  const rescuer = harness.spawnCompute();
  await rescuer.ready;
  const result = await run.handle.result();

  assert.equal(result.lineageId, lineage);
  assert.deepEqual(
    result.levels.map((l) => l.level),
    [0, 1, 2],
  );
  const [l0, l1, l2] = result.levels;
  assert.ok(l0 && l1 && l2);
  // Level 1 resumed from a checkpoint at least as new as the one seen before the kill, past its start step.
  assert.equal(l1.startStep, REWIND);
  assert.ok(l1.resumedFromStep > l1.startStep, `level 1 resumed from step ${l1.resumedFromStep}`);
  assert.ok(
    l1.resumedFromStep >= seen && l1.resumedFromStep < ITERATIONS,
    `level 1 resumed from step ${l1.resumedFromStep}; a checkpoint at ${seen} existed`,
  );
  assert.equal(l1.resumedFromStep % CHECKPOINT_EVERY, 0);
  // The undisturbed levels report that they started fresh.
  assert.equal(l0.resumedFromStep, 0, 'level 0 was trained in one go');
  assert.equal(l2.resumedFromStep, 0, 'level 2 was trained in one go');
  for (const l of result.levels) {
    assert.equal(l.reused, false);
    assert.equal(l.steps, ITERATIONS);
    // One backend wrote every checkpoint and result: a mixed-backend resume would say 'a+b'.
    assert.equal(l.backend, 'wasm/1t', `level ${l.level} backend`);
  }

  for (const [level, ref] of expected.entries()) {
    const got = result.levels[level];
    assert.ok(got);
    await assertSameTensors(got.mask.key, got.mask.sha256, ref.masks, `level ${level} mask`);
    await assertSameTensors(
      got.weights.key,
      got.weights.sha256,
      ref.result.state.weights,
      `level ${level} weights`,
    );
    assert.equal(got.finalTestAccuracy, ref.result.final.testAccuracy, `level ${level} test accuracy`);
    assert.equal(got.finalTestLoss, ref.result.final.testLoss, `level ${level} test loss`);
    assert.equal(got.remaining, sparsityReport(ref.masks).remaining, `level ${level} remaining`);
  }
  // The rewind point each pruned level trained from is the dense run's step-20 state under its mask.
  const r1 = await harness.store.getTensors(levelTensorKey(lineage, 1, 'rewind'));
  assert.equal(stateFromTensors(r1.tensors, r1.metadata).step, REWIND);

  // A finished level leaves no checkpoints behind, not even those of the killed attempt.
  for (const level of [1, 2]) {
    assert.deepEqual(await checkpointSteps(`${lineage}-L${level}`), [], `level ${level} checkpoints`);
  }
  const status = await run.handle.query<LotteryStatus>('status');
  assert.equal(status.phase, 'done');
  assert.deepEqual(status.running, []);
});
