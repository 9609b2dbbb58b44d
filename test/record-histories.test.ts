// Records the saved workflow histories that test/workflow-replay.test.ts replays, for the workflow types whose
// own tests do not save one: a distillation, a geometry analysis, a sweep (both runs of one that continues as new)
// and a scheduled run, each as tiny as the workflow allows, on the real services. Skipped (and listed as skipped)
// unless LTH_RECORD_HISTORIES=1; then it writes test/histories/<type>*.json. Every history is replayed against the
// current workflow code before it is written, so a recording that would not replay is never saved.
//
// Re-record every saved history (this file, and the three tests that save theirs as they run):
//   LTH_RECORD_HISTORIES=1 npm test -- test/record-histories.test.ts test/train-workflow.test.ts \
//     test/lottery-history.test.ts test/logits-precompute.test.ts
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import type { Client } from '@temporalio/client';
import { historyToJSON, type History } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

import { levelTargets, parseAnalysisSpec } from '../contract/analysis';
import { parseDistillSpec } from '../contract/distill';
import { parseLotterySpec } from '../contract/lottery';
import { parseSweepSpec } from '../contract/sweep';
import { sweepWorkflowId } from '../contract/sweep-trials';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import type { analyzeWorkflow } from '../workflows/analysis';
import type { distillWorkflow } from '../workflows/distill';
import type { lotteryWorkflow } from '../workflows/lottery';
import type { scheduledRunWorkflow } from '../workflows/scheduled';
import type { sweepWorkflow } from '../workflows/sweep';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const RECORD = process.env.LTH_RECORD_HISTORIES === '1';
const skip = RECORD ? false : 'records histories only with LTH_RECORD_HISTORIES=1';
const dir = path.join(__dirname, 'histories');
const tag = `rec${Date.now().toString(36)}`;
// Only a recording run needs the services and workers.
const workers = RECORD ? useTestWorkers(testEndpoints()) : null;
const client = (): Client => workers!.client;

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;
const workflowBundle = () =>
  (bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') }));

/** Every run of a workflow id, first to last, following continue-as-new. */
async function runs(workflowId: string, firstRunId: string): Promise<History[]> {
  const out: History[] = [];
  let runId: string | null | undefined = firstRunId;
  while (runId) {
    const history: History = await client().workflow.getHandle(workflowId, runId).fetchHistory();
    out.push(history);
    const last = history.events?.[history.events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  }
  return out;
}

/** Replays the history against the current code under its own id, then saves it. */
async function save(file: string, workflowId: string, history: History): Promise<void> {
  const last = history.events?.[history.events.length - 1];
  assert.ok(
    last?.workflowExecutionCompletedEventAttributes || last?.workflowExecutionContinuedAsNewEventAttributes,
    `${file}: the run completed or continued as new`,
  );
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  const json = historyToJSON(history);
  fs.writeFileSync(path.join(dir, file), json);
  process.stderr.write(`recorded ${file} (${json.length} bytes, ${history.events?.length} events)\n`);
}

test(
  'record a distillation history (one teacher trained and precomputed as children)',
  { skip },
  async () => {
    const spec = parseDistillSpec({
      experiment: `${tag}-distill`,
      student: { dim: 16, depth: 1, heads: 2 },
      teachers: [{ name: 'mlp', train: tinyLenetTrain(11, { iterations: 6, evalEvery: 6 }) }],
      kd: { mode: 'deit-soft' },
      train: {
        model: 'vit-tiny',
        dataset: 'mnist',
        optimizer: { kind: 'adam', lr: 1e-3 },
        batchSize: 32,
        iterations: 4,
        evalEvery: 4,
        seed: 3,
        trainLimit: 320,
        testLimit: 100,
      },
      checkpointEvery: 4,
    });
    const workflowId = `${tag}-distill`;
    const handle = await client().workflow.start<typeof distillWorkflow>('distillWorkflow', {
      args: [spec],
      taskQueue: LIGHT_TASK_QUEUE,
      workflowId,
    });
    const result = await handle.result();
    assert.equal(result.reused, false);
    const [history] = await runs(workflowId, handle.firstExecutionRunId);
    await save('distill-workflow.json', workflowId, history!);
  },
);

test('record an analysis history (two measures of one stored level, two lanes)', { skip }, async () => {
  const lottery = parseLotterySpec({
    experiment: `${tag}-geo`,
    train: tinyLenetTrain(12, { iterations: 6, evalEvery: 6 }),
    levels: 0,
    pruning: { kind: 'global-magnitude', fraction: 0.5 },
    rewind: 'init',
    checkpointEvery: 6,
  });
  const trunk = await client().workflow.start<typeof lotteryWorkflow>('lotteryWorkflow', {
    args: [{ spec: lottery }],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-geo-trunk`,
  });
  const { levels } = await trunk.result();
  const spec = parseAnalysisSpec({
    experiment: lottery.experiment,
    targets: levelTargets([{ label: 'trunk', levels }], { model: 'lenet-300-100', dataset: 'mnist' }),
    config: { measures: ['loss', 'descriptors'], subset: { train: 20, test: 20 }, batchSize: 20, seed: 1 },
    parallelism: 2,
  });
  const workflowId = `${tag}-analysis`;
  const handle = await client().workflow.start<typeof analyzeWorkflow>('analyzeWorkflow', {
    args: [spec],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId,
  });
  const result = await handle.result();
  assert.deepEqual(
    result.targets[0]!.measures.map((m) => m.measure),
    ['loss', 'descriptors'],
  );
  const [history] = await runs(workflowId, handle.firstExecutionRunId);
  await save('analysis-workflow.json', workflowId, history!);
});

test('record a sweep history (two trials, one per run: continue-as-new)', { skip }, async () => {
  const spec = parseSweepSpec({
    sweep: `${tag}-sweep`,
    base: {
      experiment: `${tag}-sweep`,
      train: tinyLenetTrain(0, { iterations: 6, evalEvery: 6 }),
      checkpointEvery: 6,
    },
    axes: [{ field: 'train.seed', values: [13, 14] }],
    maxParallel: 1,
    trialsPerRun: 1,
  });
  const workflowId = sweepWorkflowId(spec);
  const handle = await client().workflow.start<typeof sweepWorkflow>('sweepWorkflow', {
    args: [{ spec }],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId,
  });
  const result = await handle.result();
  assert.deepEqual(
    result.rows.map((r) => r.status),
    ['done', 'done'],
  );
  const histories = await runs(workflowId, handle.firstExecutionRunId);
  assert.equal(histories.length, 2, 'one run per trial');
  for (const [i, h] of histories.entries()) await save(`sweep-workflow-run${i}.json`, workflowId, h);
});

test('record a scheduled-run history (started by hand: a tiny training as its child)', { skip }, async () => {
  const workflowId = `${tag}-scheduled`;
  const handle = await client().workflow.start<typeof scheduledRunWorkflow>('scheduledRunWorkflow', {
    args: [
      {
        spec: {
          experiment: `${tag}-scheduled`,
          train: tinyLenetTrain(15, { iterations: 6, evalEvery: 6 }),
          checkpointEvery: 6,
        },
      },
    ],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId,
  });
  const result = await handle.result();
  assert.equal(result.kind, 'train');
  const [history] = await runs(workflowId, handle.firstExecutionRunId);
  await save('scheduled-run-workflow.json', workflowId, history!);
});
