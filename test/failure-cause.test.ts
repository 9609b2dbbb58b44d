// Why a run failed, printed where a person looks: the CLI that follows the run and `lth status`. On the real
// services: a tiny trunk is trained by compute workers on the cpu backend, then one of its levels is damaged and
// the experiment is run again (another label, so a new execution of the same lineage) by workers on WASM, which
// cannot recompute a cpu level to its bytes: the run must fail (not heal into different bytes), and both `lth
// lottery` and `lth status` must name the level, the key and the next step. The cause chain's text for a branch
// (child workflow -> activity -> error) is checked on constructed failures.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';

import { REPAIR_NEXT } from '../activities/heal';
import { startOrAttachLottery } from '../client/runs';
import { trunkLineageId } from '../contract/ids';
import { parseLotterySpec } from '../contract/lottery';
import { endpointsToEnv } from '../infra/endpoints';
import { cliErrorText } from '../cli/failure-text';
import { levelTensorKey, s3ConfigFromEnv, type ArtifactStore } from '../store';
import { openStore } from '../workers/connection';
import { lthRunner } from './support/cli';
import { testEndpoints } from './support/env';
import { rawClient } from './support/s3';
import { tinyLenetTrain } from './support/specs';
import { startTestWorkers } from './support/workers';

// The stack's own bucket (workers may use no other); the seed and tag keep this file's objects its own.
const e = testEndpoints();
const bucket = e.s3.bucket;
const tag = `fc${Date.now().toString(36)}`;
const store: ArtifactStore = openStore(e);
const cfg = s3ConfigFromEnv(endpointsToEnv(e));
assert.ok(cfg);
const raw = rawClient(cfg);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });

const specInput = {
  experiment: tag,
  train: tinyLenetTrain(71, { iterations: 30, evalEvery: 15 }),
  levels: 1,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  checkpointEvery: 15,
};
const lineage = trunkLineageId(parseLotterySpec(specInput));
const key = levelTensorKey(lineage, 1, 'weights');

test('a damaged level that this backend cannot recompute fails the run; lth lottery and lth status print the key and the next step', async (t) => {
  const cpu = await startTestWorkers(e, { LTH_BACKEND: 'cpu' });
  try {
    const done = await (await startOrAttachLottery(cpu.client, parseLotterySpec(specInput))).handle.result();
    assert.match(done.levels[1]!.backend, /^cpu/);
  } finally {
    await cpu.stop();
  }
  // Bit rot in level 1's weights (the checksum header kept).
  const { bytes, ref } = await store.getBytes(key);
  const b = Buffer.from(bytes);
  b[b.length >> 1] = (b[b.length >> 1] as number) ^ 0x01;
  await raw.putObject(bucket, key, b, b.length, { sha256: ref.sha256 });

  const wasm = await startTestWorkers(e);
  try {
    const other = `${tag}-again`;
    const dir = mkdtempSync(path.join(tmpdir(), 'lth-cause-'));
    const file = path.join(dir, 'lottery.json');
    writeFileSync(file, JSON.stringify({ ...specInput, experiment: other }));
    const ran = await lth(['lottery', '--config', file], 300_000);
    assert.equal(ran.code, 1, `the run fails:\n${ran.stderr}`);
    const err = ran.stderr;
    t.diagnostic(`lth lottery:\n${err.slice(err.indexOf('lth: '))}`);
    assert.doesNotMatch(err, /^lth: Workflow execution failed$/m);
    assert.match(err, /^lth: workflow lottery-\S+ failed$/m);
    assert.match(err, /^ {2}because activity lotteryLevel failed$/m);
    assert.match(
      err,
      new RegExp(
        `^  because UnderivableError: trunk level 1 of ${lineage}: '${key.replace(/\./g, '\\.')}' is damaged and cannot be recomputed here: it was computed on cpu\\S* and this worker runs wasm`,
        'm',
      ),
    );
    assert.ok(err.includes(`\n  key: ${key}\n`), err);
    assert.match(
      err,
      /^next: start a compute worker on cpu \(`lth worker compute --backend cpu`\) and run the same command again/m,
    );
    // Nothing was recomputed into other bytes.
    assert.equal((await store.getBytes(key).catch((x: Error) => x)) instanceof Error, true, 'still damaged');

    const status = await lth(['status', other], 60_000);
    assert.equal(status.code, 0, status.stderr);
    const out = status.stdout;
    t.diagnostic(`lth status:\n${out}`);
    assert.match(out, /\(failed, failed; 1 of 2 levels\)/);
    assert.match(out, /^ {2}workflow lottery-\S+ failed$/m);
    assert.match(out, /^ {4}because UnderivableError: trunk level 1 of \S+: '[^']+' is damaged/m);
    assert.ok(out.includes(`\n    key: ${key}\n`), out);
    assert.match(out, /^ {2}next: start a compute worker on cpu/m);
  } finally {
    await wasm.stop();
  }
});

test("a branch's failure reads as its chain: workflow, child workflow, activity, the error with its key, next", () => {
  const app = ApplicationFailure.create({
    message:
      "integrity check failed for 'experiments/abc/level-2/mask.safetensors': expected sha256 0, got 1",
    type: 'IntegrityError',
    nonRetryable: true,
    details: [{ key: 'experiments/abc/level-2/mask.safetensors' }],
  });
  const activity = new ActivityFailure(
    'Activity task failed',
    'lotteryLevel',
    '3',
    RetryState.NON_RETRYABLE_FAILURE,
    'worker',
    app,
  );
  const child = new ChildWorkflowFailure(
    'default',
    { workflowId: 'lottery-x-1.reinit-s1', runId: 'r' },
    'lotteryBranchWorkflow',
    RetryState.NON_RETRYABLE_FAILURE,
    activity,
  );
  const text = cliErrorText(
    new WorkflowFailedError('Workflow execution failed', child, RetryState.NON_RETRYABLE_FAILURE),
  );
  assert.deepEqual(text.trimEnd().split('\n'), [
    'lth: the workflow failed',
    '  because child workflow lottery-x-1.reinit-s1 (lotteryBranchWorkflow) failed',
    '  because activity lotteryLevel failed',
    "  because IntegrityError: integrity check failed for 'experiments/abc/level-2/mask.safetensors': expected sha256 0, got 1",
    '  key: experiments/abc/level-2/mask.safetensors',
    `next: ${REPAIR_NEXT}`,
  ]);
  assert.equal(cliErrorText(new Error('plain')), 'lth: plain\n');
});
