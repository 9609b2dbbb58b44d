// A SIGKILLed compute worker during a distillation loses nothing: the student's training resumes from its newest
// checkpoint and ends bit-identical to an undisturbed run of the same spec on the same backend (wasm). The
// undisturbed run goes first through the same workflow; its published run is then deleted, so the second run
// (another experiment label, the same run id) trains the student again, from scratch, and is killed mid-way.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startOrAttachDistill } from '../client/runs';
import { parseDistillSpec, type DistillSpec } from '../contract/distill';
import { distillRunId } from '../contract/ids';
import { checkpointPrefix, parseCheckpointStep, runPrefix } from '../store';
import { testEndpoints } from './support/env';
import { useFaultInjection } from './support/workers';

const e = testEndpoints();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = `dk${Date.now().toString(36)}`;
const harness = useFaultInjection(e, 200);

const teacher = (model: 'cnn-teacher' | 'lenet-300-100', seed: number) => ({
  model,
  dataset: 'mnist' as const,
  optimizer: { kind: 'adam' as const, lr: 1e-3 },
  batchSize: 64,
  iterations: 20,
  evalEvery: 20,
  seed,
  trainLimit: 512,
  testLimit: 64,
});

function spec(experiment: string): DistillSpec {
  return parseDistillSpec({
    experiment,
    student: { dim: 16, depth: 1, heads: 2 },
    teachers: [
      { name: 'cnn', train: teacher('cnn-teacher', 1) },
      { name: 'mlp', train: teacher('lenet-300-100', 2), format: 'top-k', k: 3 },
    ],
    kd: { mode: 'tokens', temperature: 2 },
    train: {
      model: 'vit-tiny',
      dataset: 'mnist',
      optimizer: { kind: 'adam', lr: 1e-3 },
      batchSize: 32,
      iterations: 240,
      evalEvery: 80,
      seed: 5,
      trainLimit: 512,
      testLimit: 64,
    },
    checkpointEvery: 40,
    heartbeatTimeoutSeconds: 4,
  });
}

test('a SIGKILLed compute worker loses nothing: the distilled student is bit-identical to an undisturbed run', async () => {
  let worker = harness.spawnCompute();
  await worker.ready;
  const undisturbed = await (await startOrAttachDistill(harness.client, spec(`${tag}-a`))).handle.result();
  assert.equal(undisturbed.resumedFromStep, 0);
  const runId = distillRunId(spec(`${tag}-a`), undisturbed.teachers);
  assert.equal(undisturbed.runId, runId);
  for (const o of await harness.store.list(runPrefix(runId))) await harness.store.remove(o.key);

  const run = await startOrAttachDistill(harness.client, spec(`${tag}-b`));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const steps = (await harness.store.list(checkpointPrefix(runId))).map(
      (o) => parseCheckpointStep(o.key) ?? 0,
    );
    if (steps.some((s) => s >= 80)) break;
    assert.ok(Date.now() < deadline, 'no checkpoint at step >= 80 within three minutes');
    await sleep(50);
  }
  worker.child.kill('SIGKILL');
  assert.equal(await worker.exited, 'SIGKILL');
  worker = harness.spawnCompute();
  await worker.ready;
  const resumed = await run.handle.result();

  assert.equal(resumed.reused, false);
  assert.ok(
    resumed.resumedFromStep >= 80 && resumed.resumedFromStep < 240,
    `resumed at ${resumed.resumedFromStep}`,
  );
  assert.deepEqual(resumed.teachers, undisturbed.teachers);
  assert.equal(resumed.weights.sha256, undisturbed.weights.sha256, 'the same bits as the undisturbed run');
  assert.equal(resumed.final.testAccuracy, undisturbed.final.testAccuracy);
  await harness.stopCompute();
});
