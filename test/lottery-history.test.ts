// Determinism of the lottery workflows over their real histories: a tiny trunk (levels 0..1) with a reinit and a
// rewind branch runs on the real services, and every run it produced (the trunk continues as new after each
// level, so one history per level; the branch children; the rewind branch's own trunk) must replay against the
// current workflow code. With LTH_RECORD_HISTORIES=1 the histories are also saved to test/histories/, where
// test/workflow-replay.test.ts replays them on every run of the suite, so that a non-deterministic change to
// workflows/lottery.ts fails even without services.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyToJSON, type History } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';

import { lotteryWorkflow } from '../workflows/lottery';
import { branchWorkflowId, type BranchSpec } from '../contract/branches';
import { parseLotterySpec } from '../contract/lottery';
import { type LotteryStatus } from '../contract/lottery';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { testEndpoints } from './support/env';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `lh${Date.now().toString(36)}`;
const workers = useTestWorkers(e);

const reinit: BranchSpec = { kind: 'reinit', seed: 1 };
const rewind: BranchSpec = { kind: 'rewind', to: { step: 8 } };
const spec = parseLotterySpec({
  experiment: tag,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    iterations: 24,
    evalEvery: 12,
    seed: 5,
    trainLimit: 320,
    testLimit: 64,
  },
  levels: 1,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: 'init',
  branches: [reinit, rewind],
  checkpointEvery: 10,
});

interface RunHistory {
  workflowId: string;
  runId: string;
  history: History;
}

/** Every run of a workflow id, first to last, following continue-as-new from the first run. */
async function chain(workflowId: string, firstRunId: string): Promise<RunHistory[]> {
  const runs: RunHistory[] = [];
  let runId: string | null | undefined = firstRunId;
  while (runId) {
    const history: History = await workers.client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.push({ workflowId, runId, history });
    const last = history.events?.[history.events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  }
  return runs;
}

/** The first run of a child workflow, from its parent's ChildWorkflowExecutionStarted event. */
function childRunId(parent: History, childWorkflowId: string): string {
  for (const ev of parent.events ?? []) {
    const started = ev.childWorkflowExecutionStartedEventAttributes;
    if (started?.workflowExecution?.workflowId === childWorkflowId) {
      const runId = started.workflowExecution.runId;
      if (runId) return runId;
    }
  }
  assert.fail(`no child ${childWorkflowId} in the parent's history`);
}

function has(h: History, attributes: keyof NonNullable<History['events']>[number]): boolean {
  return (h.events ?? []).some((ev) => ev[attributes] != null);
}

function countSignals(h: History, name: string): number {
  return (h.events ?? []).filter((ev) => ev.workflowExecutionSignaledEventAttributes?.signalName === name)
    .length;
}

test('every run of a lottery trunk and its branches replays against the current workflow code', async () => {
  const workflowId = `lottery-replay-${tag}`;
  const handle = await workers.client.workflow.start(lotteryWorkflow, {
    args: [{ spec }],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId,
  });
  const result = await handle.result();
  assert.deepEqual(
    result.levels.map((l) => l.level),
    [0, 1],
  );
  assert.deepEqual(
    result.branches.map((b) => b.label),
    ['reinit-s1', 'rewind-step8'],
  );
  const status = await workers.client.workflow.getHandle(workflowId).query<LotteryStatus>('status');
  assert.equal(status.phase, 'done');

  // One run per level: level 0 continues as new, the last level's run starts the branches and completes.
  const trunk = await chain(workflowId, handle.firstExecutionRunId);
  assert.equal(trunk.length, 2);
  const [first, last] = trunk as [RunHistory, RunHistory];
  assert.ok(has(first.history, 'workflowExecutionContinuedAsNewEventAttributes'));
  assert.ok(has(last.history, 'workflowExecutionCompletedEventAttributes'));
  // Progress signals are part of what has to replay.
  assert.ok(countSignals(first.history, 'levelProgress') > 0, 'level 0 signalled progress');
  assert.ok(countSignals(last.history, 'levelProgress') > 0, 'level 1 signalled progress');

  const reinitId = branchWorkflowId(workflowId, reinit);
  const rewindId = branchWorkflowId(workflowId, rewind);
  const reinitRuns = await chain(reinitId, childRunId(last.history, reinitId));
  const rewindRuns = await chain(rewindId, childRunId(last.history, rewindId));
  assert.equal(reinitRuns.length, 1);
  assert.equal(rewindRuns.length, 1);
  // A rewind branch is IMP again as a child trunk, which continues as new per level like any trunk.
  const rewindTrunkId = `${rewindId}.trunk`;
  const rewindTrunk = await chain(rewindTrunkId, childRunId(rewindRuns[0]!.history, rewindTrunkId));
  assert.equal(rewindTrunk.length, 2);

  const named: [string, RunHistory][] = [
    ['lottery-trunk-run0.json', first],
    ['lottery-trunk-run1.json', last],
    ['lottery-branch-reinit.json', reinitRuns[0]!],
    ['lottery-branch-rewind.json', rewindRuns[0]!],
    ['lottery-branch-rewind-trunk-run0.json', rewindTrunk[0]!],
    ['lottery-branch-rewind-trunk-run1.json', rewindTrunk[1]!],
  ];
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
  for (const [file, run] of named) {
    await Worker.runReplayHistory(
      { workflowBundle },
      run.history,
      // The real id: the trunk derives its branch children's ids from its own.
      run.workflowId,
    );
    if (process.env.LTH_RECORD_HISTORIES === '1') {
      fs.writeFileSync(path.join(__dirname, 'histories', file), historyToJSON(run.history));
    }
  }
});
