// Each step engine on native TensorFlow is exact by its own record: a compute worker SIGKILLed mid-epoch, the run
// resumed by another worker from its newest checkpoint (a new process: a new trace of the graph) ends with the
// bytes of an undisturbed run computed in this process on the same backend, threads and engine. The graph engine
// with the ViT and the involution teacher (whose graphs do not give the tape's bytes), the native dense step with
// LeNet; the tape's own kill test is test/fault-kill-compute-worker.test.ts (WASM). The run's label names the engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startOrAttachTrain } from '../client/runs';
import { trainRunId } from '../contract/ids';
import { parseTrainSpec, toTrainConfig, type TrainSpec } from '../contract/train';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { train } from '../ml/train';
import { testEndpoints } from './support/env';
import { useFaultInjection } from './support/workers';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;
const e = testEndpoints();
const tag = Date.now().toString(36);
const harness = useFaultInjection(e, 200, { LTH_BACKEND: 'tensorflow', LTH_THREADS: '1' });

const CASES = [
  // 224 samples in batches of 32: 7 steps an epoch, checkpoints every 10: a resume starts mid-epoch (unless at 70).
  {
    model: 'vit-tiny',
    engine: 'graph',
    batchSize: 32,
    iterations: 120,
    every: 10,
    killAfter: 30,
    limit: 224,
  },
  {
    model: 'involution-teacher',
    engine: 'graph',
    batchSize: 32,
    iterations: 120,
    every: 10,
    killAfter: 30,
    limit: 224,
  },
  // 2,048 samples in batches of 64: 32 steps an epoch; LeNet is fast, so the run is longer.
  {
    model: 'lenet-300-100',
    engine: 'native-dense',
    batchSize: 64,
    iterations: 2400,
    every: 100,
    killAfter: 300,
    limit: 2048,
  },
] as const;

function makeSpec(c: (typeof CASES)[number]): TrainSpec {
  return parseTrainSpec({
    experiment: `engine-kill-${c.model}-${tag}`,
    train: {
      model: c.model,
      dataset: 'mnist',
      optimizer: { kind: 'sgd', lr: 0.02, momentum: 0.9 },
      batchSize: c.batchSize,
      iterations: c.iterations,
      evalEvery: c.iterations,
      seed: 5,
      trainLimit: c.limit,
      testLimit: 100,
    },
    checkpointEvery: c.every,
    heartbeatTimeoutSeconds: 4,
  });
}

for (const c of CASES) {
  test(
    `${c.model} on the ${c.engine} engine: a SIGKILLed worker's run resumes to the undisturbed run's bytes`,
    { skip },
    async () => {
      const spec = makeSpec(c);
      const trainData = loadDataset('mnist', 'train', { limit: c.limit });
      const testData = loadDataset('mnist', 'test', { limit: 100 });
      const config = toTrainConfig(spec.train, trainData.n);
      const reference = await train(
        config,
        { train: trainData, test: testData },
        {
          initialWeights: getModel(c.model).init(config.seed),
        },
      );
      assert.equal(reference.engine?.name, c.engine);

      const victim = harness.spawnCompute();
      await victim.ready;
      const run = await startOrAttachTrain(harness.client, spec);
      await harness.waitForCheckpoint(trainRunId(spec.train), c.killAfter);
      victim.child.kill('SIGKILL');
      assert.equal(await victim.exited, 'SIGKILL');
      const rescuer = harness.spawnCompute();
      await rescuer.ready;
      const result = await run.handle.result();
      await harness.stopCompute();

      assert.ok(
        result.resumedFromStep >= c.killAfter && result.resumedFromStep < c.iterations,
        `resumed from step ${result.resumedFromStep}`,
      );
      assert.ok(result.resumedFromStep % (c.limit / c.batchSize) !== 0, 'the resume starts mid-epoch');
      assert.equal(result.backend, c.engine === 'graph' ? 'tensorflow/1t/graph' : 'tensorflow/1t');
      await harness.assertSameWeights(result.weights, reference.state.weights, c.model);
      assert.equal(result.final.testAccuracy, reference.final.testAccuracy);
    },
  );
}
