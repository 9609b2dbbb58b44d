// Fault injection on a geometry analysis, on the real services: the compute worker is SIGKILLed while it runs the
// power iteration of a level's Hessian, after it has checkpointed its state (eigenpairs found, the vector being
// iterated, in float64) to the store. A new compute worker resumes from that checkpoint (the activity reports where)
// and the eigenvalues come out exactly as an undisturbed in-process run of ml/geometry gives them on the same
// (deterministic) WASM backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { measureIdentity } from '../activities/analysis';
import { startOrAttachLottery } from '../client/runs';
import { parseAnalysisSpec, type AnalysisResult, type AnalysisStatus } from '../contract/analysis';
import { parseLotterySpec } from '../contract/lottery';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { loadDataset } from '../ml/data';
import { flatten, modelObjective, replicatePlan, topEigenvalues } from '../ml/geometry';
import { getModel } from '../ml/models';
import { analysisKey } from '../store';
import { analyzeWorkflow } from '../workflows/analysis';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useFaultInjection } from './support/workers';

const e = testEndpoints();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = `gek${Date.now().toString(36)}`;
// Checkpoint every step, so that the kill lands after several.
const harness = useFaultInjection(e, 100, { LTH_ANALYSIS_CHECKPOINT_SECONDS: '0' });

const lottery = parseLotterySpec({
  experiment: tag,
  train: tinyLenetTrain(12, { iterations: 30, evalEvery: 30 }),
  levels: 0,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 5 },
});

// Tolerance 0: power iteration runs all its iterations, long enough to be killed in the middle.
const hessian = { k: 2, maxIterations: 25, tol: 1e-12, perLayer: false };
// Two probe seeds: the kill lands in the first run, the second runs after the resume.
const replicates = { seeds: 2, subsets: 1 };

test('a compute worker SIGKILLed mid-analysis: the measure resumes from its checkpoint and ends exactly', async () => {
  const first = harness.spawnCompute();
  await first.ready;
  const level0 = (await (await startOrAttachLottery(harness.client, lottery)).handle.result()).levels[0]!;
  const spec = parseAnalysisSpec({
    experiment: tag,
    targets: [
      {
        label: 'trunk',
        level: 0,
        remainingPct: 100,
        model: 'lenet-300-100',
        dataset: 'mnist',
        weights: level0.weights,
        mask: level0.mask,
        rewind: level0.rewind,
        previous: null,
      },
    ],
    config: {
      measures: ['hessian'],
      subset: { train: 400, test: 10 },
      batchSize: 200,
      seed: 4,
      replicates,
      options: { hessian },
    },
    heartbeatTimeoutSeconds: 5,
  });
  const progressKey = analysisKey(
    measureIdentity({ target: spec.targets[0]!, measure: 'hessian', config: spec.config }),
    'progress.safetensors',
  );
  const handle = await harness.client.workflow.start(analyzeWorkflow, {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-analysis`,
  });

  // Kill once the checkpoint holds at least 10 iterations.
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (await harness.store.exists(progressKey)) {
      const { metadata } = await harness.store.getTensors(progressKey);
      if (Number(metadata.steps) >= 10) break;
    }
    assert.ok(Date.now() < deadline, 'no checkpoint of 10 steps within five minutes');
    await sleep(50);
  }
  first.child.kill('SIGKILL');
  assert.equal(await first.exited, 'SIGKILL');
  assert.equal((await handle.query<AnalysisStatus>('status')).phase, 'measuring', 'killed mid-measure');

  const rescuer = harness.spawnCompute();
  await rescuer.ready;
  const result: AnalysisResult = await handle.result();
  const record = result.targets[0]!.measures[0]!;
  assert.equal(record.measure, 'hessian');
  assert.ok(record.resumedFrom >= 10, `resumed from step ${record.resumedFrom}`);
  assert.ok(
    !(await harness.store.exists(progressKey)),
    'the checkpoint is removed once the result is stored',
  );

  // The same measure undisturbed, here, on WASM.
  const model = getModel('lenet-300-100');
  const masks = (await harness.store.getTensors(level0.mask.key)).tensors;
  const weights = (await harness.store.getTensors(level0.weights.key)).tensors;
  const objective = modelObjective(model, loadDataset('mnist', 'train', { limit: 400 }), {
    masks,
    batchSize: 200,
  });
  try {
    const runs = [];
    for (const run of replicatePlan(4, replicates)) {
      runs.push(
        await topEigenvalues(objective, flatten(objective.space, weights), { ...hessian, seed: run.seed }),
      );
    }
    const { tensors } = await harness.store.getTensors(record.arraysKey);
    assert.deepEqual(
      [...(tensors.eigenvalues?.data ?? [])],
      runs[0]!.map((p) => p.value),
    );
    assert.deepEqual(
      [...(tensors['replicates.topEigenvalue']?.data ?? [])],
      runs.map((r) => r[0]!.value),
    );
    assert.equal(record.summary['topEigenvalue.n'], 2);
    assert.equal(record.summary.topEigenvalue, (runs[0]![0]!.value + runs[1]![0]!.value) / 2);
  } finally {
    objective.dispose();
  }
});
