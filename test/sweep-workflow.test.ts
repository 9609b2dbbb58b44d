// Sweeps end to end on the real Temporal server and MinIO: `lth sweep` runs a grid of tiny training trials as child
// workflows (ids from their content hashes, Sweep/Trial search attributes), attaches to a trial that was already
// started by hand, continues as new between batches of trials, and a second `lth sweep` recomputes nothing; a
// trial terminated mid-run is listed with its error while the others finish, and re-running the sweep runs only
// that trial again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { startOrAttachTrain } from '../client/runs';
import * as sa from '../contract/search-attributes';
import { trainKind } from '../contract/spec-kinds';
import { parseSweepSpec, type SweepResult, type SweepSpecInput } from '../contract/sweep';
import { sweepWorkflowId, trialSpec } from '../contract/sweep-trials';
import type { TrainSpec } from '../contract/train';
import { endpointsToEnv } from '../infra/endpoints';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `sweep${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-sweep-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeSweep(name: string, input: SweepSpecInput): string {
  const file = path.join(tmp, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(input));
  return file;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runsOf(workflowId: string): Promise<{ runId: string; status: string }[]> {
  const out: { runId: string; status: string }[] = [];
  for await (const w of workers.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
    out.push({ runId: w.runId, status: w.status.name });
  return out;
}

async function workflowsOf(query: string): Promise<{ workflowId: string; status: string }[]> {
  const out: { workflowId: string; status: string }[] = [];
  for await (const w of workers.client.workflow.list({ query }))
    out.push({ workflowId: w.workflowId, status: w.status.name });
  return out;
}

test('a grid of training trials: children by content hash, one attached, continue-as-new, and a rerun recomputes nothing', async () => {
  const input: SweepSpecInput = {
    sweep: `${tag}-grid`,
    base: { experiment: tag, train: tinyLenetTrain(0, { iterations: 12, evalEvery: 6 }), checkpointEvery: 6 },
    axes: [
      { field: 'train.seed', values: [1, 2, 3] },
      { field: 'train.optimizer.lr', values: [0.05, 0.1] },
    ],
    maxParallel: 2,
    trialsPerRun: 4,
  };
  const spec = parseSweepSpec(input);
  const file = writeSweep('grid', input);
  // Trial 3 (seed 2, lr 0.1) started by hand first: the sweep must attach to it, not run it twice.
  const byHand = trialSpec(spec, trainKind, 3) as TrainSpec;
  const manual = await startOrAttachTrain(workers.client, byHand);
  assert.ok(manual.started);

  const first = ok(await lth(['sweep', '--config', file, '--json'], 240_000), 'lth sweep');
  assert.match(first.stderr, /^started sweep-/m);
  const result = JSON.parse(first.stdout) as SweepResult & { workflowId: string };
  assert.equal(result.workflowId, sweepWorkflowId(spec));
  assert.equal(result.total, 6);
  assert.deepEqual(
    result.rows.map((r) => [r.index, r.status]),
    [0, 1, 2, 3, 4, 5].map((i) => [i, 'done']),
  );
  for (const r of result.rows) {
    const acc = r.metrics?.testAccuracy;
    assert.ok(typeof acc === 'number' && acc >= 0 && acc <= 1, `trial ${r.index}: ${acc}`);
    assert.equal(r.metrics?.steps, 12);
    assert.equal(r.workflowId, trainKind.workflowId(trialSpec(spec, trainKind, r.index) as TrainSpec));
  }
  assert.deepEqual(
    result.rows.filter((r) => r.attached).map((r) => r.index),
    [3],
  );
  assert.equal(result.rows[3]?.workflowId, manual.workflowId);
  // Six trials, four per run: the sweep continued as new once.
  const runs = await workflowsOf(`WorkflowId = '${result.workflowId}'`);
  assert.deepEqual(runs.map((r) => r.status).sort(), ['COMPLETED', 'CONTINUED_AS_NEW']);
  // Its children carry the sweep's name and their trial's label.
  const children = await workflowsOf(`Sweep = '${spec.sweep}' AND RunKind = 'train'`);
  assert.equal(children.length, 5, 'five trials started by the sweep (the sixth was started by hand)');
  const desc = await workers.client.workflow.getHandle(result.rows[0]!.workflowId).describe();
  assert.equal(desc.typedSearchAttributes.get(sa.TRIAL), 'train.seed=1 train.optimizer.lr=0.05');
  // What the UI shows: each workflow's summary and details, and the sweep's current details.
  assert.match(
    (await desc.staticSummary()) ?? '',
    /^trial 0 of sweep \S+ \(train\.seed=1 train\.optimizer\.lr=0\.05\): training: lenet-300-100 on mnist, 12 steps/,
  );
  // The first run has the static summary and details; every run carries the summary in its current details.
  const firstRun = (await runsOf(result.workflowId)).find((r) => r.status === 'CONTINUED_AS_NEW');
  const sweepDesc = await workers.client.workflow.getHandle(result.workflowId, firstRun?.runId).describe();
  assert.equal(
    await sweepDesc.staticSummary(),
    `sweep ${spec.sweep}: 6 train trials over train.seed × train.optimizer.lr, 2 at once`,
  );
  assert.match((await sweepDesc.staticDetails()) ?? '', /"trialsPerRun": 4/);
  const meta = await workers.client.workflow
    .getHandle(result.workflowId)
    .query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  assert.match(
    meta.currentDetails ?? '',
    /^sweep \S+: 6 train trials[^\n]*\n\n6 of 6 trials finished, 0 failed, 0 running/,
  );

  const again = ok(await lth(['sweep', '--config', file], 120_000), 'lth sweep again');
  assert.match(again.stderr, /^attached to sweep-/m);
  assert.match(again.stdout, /6 of 6 trials finished, 0 failed/);
  assert.ok(fs.existsSync(path.join('reports', `sweep-${spec.sweep}`, 'report.md')));
  fs.rmSync(path.join('reports', `sweep-${spec.sweep}`), { recursive: true, force: true });
  assert.equal((await workflowsOf(`Sweep = '${spec.sweep}' AND RunKind = 'train'`)).length, 5);

  // `lth status` and `lth report` take the sweep's name.
  const status = ok(await lth(['status', spec.sweep]), 'lth status');
  assert.match(status.stdout, /\(completed\)/);
  assert.match(status.stdout, /6 of 6 trials finished, 0 failed/);
  assert.match(status.stdout, /^5 +3 +0\.1 +done /m);
  const out = path.join(tmp, 'report');
  ok(await lth(['report', spec.sweep, '-o', out]), 'lth report');
  const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /^\| trial \| train\.seed \| train\.optimizer\.lr \| status \| testAccuracy/m);
  assert.match(fs.readFileSync(path.join(out, 'sweep.svg'), 'utf8'), /testAccuracy vs train\.optimizer\.lr/);
});

test('a trial terminated mid-run is listed with its error, the others finish, and a rerun retries only it', async () => {
  const input: SweepSpecInput = {
    sweep: `${tag}-fail`,
    base: { experiment: tag, train: tinyLenetTrain(9, { iterations: 12, evalEvery: 6 }), checkpointEvery: 6 },
    // The long trial is the one terminated; the short ones finish around it.
    axes: [{ field: 'train.iterations', values: [12, 1500, 14] }],
    maxParallel: 3,
  };
  const spec = parseSweepSpec(input);
  const file = writeSweep('fail', input);
  const long = trainKind.workflowId(trialSpec(spec, trainKind, 1) as TrainSpec);
  const run = lth(['sweep', '--config', file, '--json'], 240_000);
  for (let i = 0; ; i++) {
    const found = await workflowsOf(`WorkflowId = '${long}' AND ExecutionStatus = 'Running'`);
    if (found.length > 0) break;
    assert.ok(i < 120, 'the long trial never started');
    await sleep(500);
  }
  await workers.client.workflow.getHandle(long).terminate('an operator stopped this trial');
  const result = JSON.parse(ok(await run, 'lth sweep').stdout) as SweepResult;
  assert.deepEqual(
    result.rows.map((r) => r.status),
    ['done', 'failed', 'done'],
  );
  assert.match(result.rows[1]?.error ?? '', /terminated|an operator stopped this trial/i);

  // Shorter now: the retried trial is the same content, so the same id; only it runs again.
  const rerun = ok(await lth(['sweep', '--config', file, '--json'], 600_000), 'lth sweep rerun');
  assert.match(rerun.stderr, /^started sweep-/m);
  const retried = JSON.parse(rerun.stdout) as SweepResult;
  assert.deepEqual(
    retried.rows.map((r) => [r.status, r.attached]),
    [
      ['done', true],
      ['done', false],
      ['done', true],
    ],
  );
});

test('a sweep naming a field its kind lacks is refused before anything starts', async () => {
  const file = writeSweep('bad', {
    sweep: `${tag}-bad`,
    base: { experiment: tag, train: tinyLenetTrain(0, { iterations: 5, evalEvery: 5 }) },
    axes: [{ field: 'train.optimiser.lr', values: [0.1] }],
  });
  const r = await lth(['sweep', '--config', file], 60_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /axes\[0\]\.field: 'train\.optimiser\.lr' is not a field of a train spec/);
  assert.equal((await workflowsOf(`Sweep = '${tag}-bad'`)).length, 0);
});
