// Determinism guard: every saved workflow history must replay against the current workflow code, every workflow
// type the light worker registers (the exports of workflows/index.ts) must have at least one saved history, and an
// incompatible change must be caught by the replay (while the same change guarded by patched() is not).
// Every *.json in test/histories/ is replayed. Re-record them (after an intentional change, versioned with
// patched(); or to add a history for a new workflow type) with
//   LTH_RECORD_HISTORIES=1 npm test -- test/record-histories.test.ts test/train-workflow.test.ts \
//     test/lottery-history.test.ts test/logits-precompute.test.ts
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyFromJSON, type History } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';

import * as registered from '../workflows';

const dir = path.join(__dirname, 'histories');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));

function load(file: string): History {
  return historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
}

const started = (h: History) => h.events?.[0]?.workflowExecutionStartedEventAttributes;

// Bundled once per workflows module (bundling is most of a replay's time).
const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();
function workflowBundle(workflowsPath = require.resolve('../workflows')) {
  let b = bundles.get(workflowsPath);
  if (!b) bundles.set(workflowsPath, (b = bundleWorkflowCode({ workflowsPath, logger: quiet })));
  return b;
}
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as const;

/** Replays under the recorded workflow id: workflows derive ids from it (the lottery trunk names its branch
 * children after its own id), so any other id would read as nondeterminism. */
async function replay(file: string, history: History, workflowsPath?: string): Promise<void> {
  await Worker.runReplayHistory(
    { workflowBundle: await workflowBundle(workflowsPath) },
    history,
    started(history)?.workflowId || `replay-${file}`,
  );
}

test('every registered workflow type has a saved history', () => {
  // What workers/light.ts registers: every function exported by workflows/index.ts.
  const types = Object.entries(registered)
    .filter(([, v]) => typeof v === 'function')
    .map(([name]) => name)
    .sort();
  assert.ok(types.length >= 8, `workflow types found in workflows/index.ts: ${types.join(', ')}`);
  const recorded = new Set(files.map((f) => started(load(f))?.workflowType?.name));
  const missing = types.filter((t) => !recorded.has(t));
  assert.deepEqual(
    missing,
    [],
    `workflow types without a history in test/histories/ (record one; see test/record-histories.test.ts): ${missing.join(', ')}`,
  );
});

for (const file of files) {
  test(`history ${file} replays deterministically`, async () => {
    await replay(file, load(file));
  });
}

test('an incompatible change to a workflow fails the replay; the same change behind patched() replays', async () => {
  // The train workflow's saved history scheduled `train` as its first activity; the variants add a new activity in
  // front of it (test/replay-variants/), bundled on their own under the same type, trainWorkflow.
  const file = 'train-workflow.json';
  const history = load(file);
  assert.equal(started(history)?.workflowType?.name, 'trainWorkflow');
  const scheduled = (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : [],
  );
  assert.deepEqual(scheduled, ['train'], 'the history predates the new step');

  await assert.rejects(
    replay(file, history, require.resolve('./replay-variants/train-unguarded')),
    (err: unknown) => {
      assert.ok(err instanceof DeterminismViolationError, `a DeterminismViolationError, got ${String(err)}`);
      assert.match(err.message, /nondeterminism/i);
      return true;
    },
  );
  await replay(file, history, require.resolve('./replay-variants/train-patched'));
});
