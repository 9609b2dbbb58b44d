// Fault injection on the compute worker, on the real services. Both cases must end bit-identical
// to an uninterrupted run of the same spec computed in this process on the same backend (WASM,
// single-threaded under Node, whose kernels are deterministic; see README "Durability").
//  - SIGKILL mid-training: the retry resumes from the newest checkpoint.
//  - SIGTERM (preemption notice): the worker checkpoints at once and hands the run over.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toTrainConfig } from '../contract/train';
import { trainRunId } from '../contract/ids';
import { startOrAttachTrain } from '../client/runs';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { train } from '../ml/train';
import { checkpointPrefix, parseCheckpointStep } from '../store';
import { type SpawnedWorker } from '../workers/spawn';
import { parseTrainSpec, type TrainSpec } from '../contract/train';
import { testEndpoints } from './support/env';
import { useFaultInjection } from './support/workers';

const e = testEndpoints();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = Date.now().toString(36);
const harness = useFaultInjection(e, 200);

function makeSpec(experiment: string, seed: number): TrainSpec {
  return parseTrainSpec({
    experiment,
    train: {
      model: 'lenet-300-100',
      dataset: 'mnist',
      optimizer: { kind: 'adam', lr: 1e-3 },
      batchSize: 64,
      iterations: 600,
      evalEvery: 150,
      seed,
      trainLimit: 2048,
      testLimit: 300,
    },
    checkpointEvery: 100,
    heartbeatTimeoutSeconds: 4,
  });
}

async function uninterrupted(spec: TrainSpec) {
  const trainData = loadDataset('mnist', 'train', { limit: spec.train.trainLimit });
  const testData = loadDataset('mnist', 'test', { limit: spec.train.testLimit });
  const config = toTrainConfig(spec.train, trainData.n);
  return train(
    config,
    { train: trainData, test: testData },
    { initialWeights: getModel(config.model).init(config.seed) },
  );
}

async function startComputeWorker(): Promise<SpawnedWorker> {
  const w = harness.spawnCompute();
  await w.ready;
  return w;
}

/** Each case owns the compute queue: no worker of an earlier case may pick up its run. */
const stopComputeWorkers = (): Promise<void> => harness.stopCompute();

test('a SIGKILLed compute worker loses nothing: the resumed run is bit-identical', async () => {
  const spec = makeSpec(`kill${tag}`, 11);
  const reference = await uninterrupted(spec);

  const victim = await startComputeWorker();
  const run = await startOrAttachTrain(harness.client, spec);
  // Kill only after a checkpoint past the first interval, so the retry must resume mid-run.
  await harness.waitForCheckpoint(trainRunId(spec.train), 200);
  victim.child.kill('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');

  await startComputeWorker();
  const result = await run.handle.result();

  assert.ok(
    result.resumedFromStep >= 200 && result.resumedFromStep < 600,
    `resumed from step ${result.resumedFromStep}`,
  );
  assert.equal(result.steps, 600);
  await harness.assertSameWeights(result.weights, reference.state.weights, 'the resumed run');
  assert.equal(result.final.testAccuracy, reference.final.testAccuracy);
  await stopComputeWorkers();
});

test('a SIGTERMed compute worker checkpoints at once and the run resumes exactly there', async () => {
  const spec = makeSpec(`drain${tag}`, 12);
  const reference = await uninterrupted(spec);

  const drained = await startComputeWorker();
  const run = await startOrAttachTrain(harness.client, spec);
  await harness.waitForCheckpoint(trainRunId(spec.train), 100);
  await sleep(300);
  drained.child.kill('SIGTERM');
  // A graceful stop: the worker exits by itself, well before its grace period forces anything.
  assert.equal(await drained.exited, 0);
  const steps = (await harness.store.list(checkpointPrefix(trainRunId(spec.train)))).map(
    (o) => parseCheckpointStep(o.key) ?? 0,
  );
  const drainStep = Math.max(...steps);
  assert.ok(drainStep > 100 && drainStep < 600, `drain checkpoint at step ${drainStep}`);

  await startComputeWorker();
  const result = await run.handle.result();
  assert.equal(result.resumedFromStep, drainStep);
  await harness.assertSameWeights(result.weights, reference.state.weights, 'the resumed run');
});
