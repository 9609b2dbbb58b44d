// Determinism guard: every saved workflow history must replay against the current workflow code.
// Regenerate the fixtures with `LTH_RECORD_HISTORIES=1 npm test -- test/train-workflow.test.ts
// test/lottery-history.test.ts test/logits-precompute.test.ts` when a change to a workflow is
// intentionally incompatible (and version it with patching). Every *.json in test/histories/ is replayed.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const dir = path.join(__dirname, 'histories');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
// Bundled once for all histories (bundling is most of a replay's time).
let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;
const workflowBundle = () =>
  (bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') }));

test('saved histories exist', { skip: false }, () => {
  if (files.length === 0) throw new Error(`no histories in ${dir}`);
});

for (const file of files) {
  test(`history ${file} replays deterministically`, async () => {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
    // Replay under the recorded workflow id: workflows derive ids from it (the lottery trunk names its branch
    // children after its own id), so any other id would read as nondeterminism.
    const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId;
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle() },
      history,
      workflowId || `replay-${file}`,
    );
  });
}
