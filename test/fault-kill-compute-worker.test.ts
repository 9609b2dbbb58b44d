// Fault injection: SIGKILL the compute worker mid-training, start a new one, and the run must end
// bit-identical to an uninterrupted run of the same spec. Runs on the CPU backend, whose kernels are
// deterministic (see README, "Determinism").
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import type { Client } from '@temporalio/client';

import { toMlConfig, trainRunId } from '../activities/train';
import { startOrAttachTrain } from '../cli/runs';
import { endpointsToEnv } from '../infra/stack';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { train } from '../ml/train';
import { checkpointPrefix, parseCheckpointStep } from '../store';
import { connectClient, openStore } from '../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../workers/spawn';
import { parseTrainSpec } from '../workflows/specs';
import { testEndpoints } from './support/env';

const e = testEndpoints();
const env = { ...endpointsToEnv(e), LTH_BACKEND: 'cpu', LTH_PROGRESS_INTERVAL_MS: '200' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let client: Client;
const workers: SpawnedWorker[] = [];

before(async () => {
  client = await connectClient(e);
});

after(async () => {
  await client?.connection.close();
  await Promise.all(workers.map((w) => stopWorker(w, 20_000)));
});

const spec = parseTrainSpec({
  experiment: `fault${Date.now().toString(36)}`,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'adam', lr: 1e-3 },
    batchSize: 64,
    iterations: 240,
    evalEvery: 60,
    seed: 11,
    trainLimit: 1024,
    testLimit: 200,
  },
  checkpointEvery: 40,
  heartbeatTimeoutSeconds: 4,
});

function bytesOf(data: Float32Array | Int32Array | Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

test('a SIGKILLed compute worker loses nothing: the resumed run is bit-identical', async () => {
  // Reference: the same spec trained uninterrupted, in this process, on the same backend.
  await selectBackend({ prefer: 'cpu' });
  const trainData = loadDataset('mnist', 'train', { limit: spec.train.trainLimit });
  const testData = loadDataset('mnist', 'test', { limit: spec.train.testLimit });
  const config = toMlConfig(spec.train, trainData.n);
  const reference = await train(config, { train: trainData, test: testData }, { initialWeights: getModel(config.model).init(config.seed) });
  const referenceWeights = reference.state.weights;

  workers.push(spawnWorker('light', { env }));
  const victim = spawnWorker('compute', { env });
  workers.push(victim);
  await Promise.all(workers.map((w) => w.ready));

  const run = await startOrAttachTrain(client, spec);
  const store = openStore(e);
  const prefix = checkpointPrefix(trainRunId(spec.train));
  // Kill only once a checkpoint past the first interval exists, so the retry must resume mid-run.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const steps = (await store.list(prefix)).map((o) => parseCheckpointStep(o.key) ?? 0);
    if (steps.some((s) => s >= 80)) break;
    assert.ok(Date.now() < deadline, 'no checkpoint past step 80 appeared within two minutes');
    await sleep(100);
  }
  victim.child.kill('SIGKILL');
  assert.equal(await victim.exited, 'SIGKILL');

  const rescuer = spawnWorker('compute', { env });
  workers.push(rescuer);
  await rescuer.ready;
  const result = await run.handle.result();

  assert.ok(result.resumedFromStep >= 80, `resumed from step ${result.resumedFromStep}, expected a mid-run checkpoint`);
  assert.ok(result.resumedFromStep < 240);
  assert.equal(result.steps, 240);
  const stored = await openStore(e).getTensors(result.weights.key, { expectSha256: result.weights.sha256 });
  for (const [name, tensor] of Object.entries(stored.tensors)) {
    const ref = referenceWeights[name];
    assert.ok(ref, `reference lacks ${name}`);
    assert.ok(bytesOf(tensor.data).equals(bytesOf(ref.data)), `${name} differs from the uninterrupted run`);
  }
  assert.equal(result.final.testAccuracy, reference.final.testAccuracy);
});
