// Control of running work on the real Temporal server: `lth pause` holds a sweep's next trials and a lottery
// trunk's next level back while what runs finishes, `lth resume` lets them go on to the end, and `lth cancel`
// stops a trunk mid-level with its last checkpoint kept in the store and the level not published, and a sweep with
// its running trial, no trial listed as failed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { startOrAttachLottery } from '../client/runs';
import { lotteryWorkflowId, trunkLineageId } from '../contract/ids';
import { parseLotterySpec, type LotteryStatus } from '../contract/lottery';
import * as sa from '../contract/search-attributes';
import type { SweepResult, SweepStatus } from '../contract/sweep';
import { endpointsToEnv } from '../infra/endpoints';
import { levelManifestKey, runManifestKey } from '../store';
import { openStore } from '../workers/connection';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `ctl${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-control-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  f: () => Promise<T | null | undefined | false>,
  tries = 240,
): Promise<T> {
  for (let i = 0; ; i++) {
    const v = await f().catch(() => null);
    if (v) return v;
    assert.ok(i < tries, `timed out waiting for ${what}`);
    await sleep(250);
  }
}

test('a paused sweep starts no new trial until resumed, and then finishes them all', async () => {
  const name = `${tag}-sweep`;
  const file = path.join(tmp, 'sweep.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      sweep: name,
      base: {
        experiment: name,
        train: tinyLenetTrain(0, { iterations: 60, evalEvery: 30 }),
        checkpointEvery: 30,
      },
      axes: [{ field: 'train.seed', values: [11, 12, 13, 14] }],
      maxParallel: 1,
    }),
  );
  const started = ok(await lth(['sweep', '--config', file, '--no-follow']), 'lth sweep');
  const id = /started (sweep-\S+):/.exec(started.stderr)?.[1];
  assert.ok(id, started.stderr);
  const handle = workers.client.workflow.getHandle(id);
  await until('a first trial', async () => (await handle.query<SweepStatus>('status')).running.length > 0);
  assert.match(ok(await lth(['pause', name]), 'lth pause').stdout, /\(sweep\): paused/);
  const held = await until('the pause', async () => {
    const s = await handle.query<SweepStatus>('status');
    return s.paused && s.running.length === 0 ? s : null;
  });
  await sleep(3_000);
  const still = await handle.query<SweepStatus>('status');
  assert.equal(still.started, held.started, 'no trial started while paused');
  assert.ok(still.started < 4);
  const d = await handle.describe();
  assert.equal(d.typedSearchAttributes.get(sa.PHASE), 'paused');
  ok(await lth(['resume', name]), 'lth resume');
  const result = (await handle.result()) as SweepResult;
  assert.deepEqual(
    result.rows.map((r) => r.status),
    ['done', 'done', 'done', 'done'],
  );
});

test('a cancelled sweep ends cancelled: its running trial is stopped, none is listed as failed', async () => {
  const name = `${tag}-sweep-cancel`;
  const file = path.join(tmp, 'sweep-cancel.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      sweep: name,
      base: {
        experiment: name,
        train: tinyLenetTrain(0, { iterations: 4000, evalEvery: 1000 }),
        checkpointEvery: 50,
      },
      axes: [{ field: 'train.seed', values: [21, 22, 23] }],
      maxParallel: 1,
    }),
  );
  const started = ok(await lth(['sweep', '--config', file, '--no-follow']), 'lth sweep');
  const id = /started (sweep-\S+):/.exec(started.stderr)?.[1];
  assert.ok(id, started.stderr);
  const handle = workers.client.workflow.getHandle(id);
  const first = await until(
    'a first trial',
    async () => (await handle.query<SweepStatus>('status')).running[0],
  );
  assert.match(ok(await lth(['cancel', '--workflow', id]), 'lth cancel').stdout, /cancelled/);
  await assert.rejects(handle.result(), /cancel/i);
  const d = await handle.describe();
  assert.equal(d.status.name, 'CANCELLED');
  assert.equal(d.typedSearchAttributes.get(sa.PHASE), 'cancelled');
  // Its status (answered from the closed workflow's history) lists no trial, least of all a failed one.
  const s = await handle.query<SweepStatus>('status');
  assert.deepEqual(
    s.rows.filter((r) => r.status === 'failed'),
    [],
  );
  assert.equal(s.started, 1, 'no further trial started');
  // The running trial was asked to stop with it.
  const trial = workers.client.workflow.getHandle(first.workflowId);
  await until('the trial to stop', async () => (await trial.describe()).status.name !== 'RUNNING');
  assert.equal((await trial.describe()).status.name, 'CANCELLED');
});

test('a paused trunk finishes its level and trains no further until resumed', async () => {
  const spec = parseLotterySpec({
    experiment: `${tag}-imp`,
    train: tinyLenetTrain(21, { iterations: 300, evalEvery: 150 }),
    levels: 3,
    pruning: { kind: 'global-magnitude', fraction: 0.5 },
    rewind: 'init',
    checkpointEvery: 150,
  });
  const run = await startOrAttachLottery(workers.client, spec);
  ok(await lth(['pause', spec.experiment]), 'lth pause');
  const held = await until('the trunk to hold', async () => {
    const s = await run.handle.query<LotteryStatus>('status');
    const d = await run.handle.describe();
    return s.paused && d.typedSearchAttributes.get(sa.PHASE) === 'paused' ? s : null;
  });
  await sleep(3_000);
  const still = await run.handle.query<LotteryStatus>('status');
  assert.equal(still.levels.length, held.levels.length, 'no level finished while paused');
  assert.ok(still.levels.length < 4, `paused only after the last level`);
  assert.equal(still.running.length, 0, 'nothing trains while paused');
  ok(await lth(['resume', spec.experiment]), 'lth resume');
  const result = await run.handle.result();
  assert.deepEqual(
    result.levels.map((l) => l.level),
    [0, 1, 2, 3],
  );
});

test('a cancelled trunk stops mid-level: its checkpoint stays, the level is not published', async () => {
  const spec = parseLotterySpec({
    experiment: `${tag}-cancel`,
    train: tinyLenetTrain(31, { iterations: 4000, evalEvery: 1000 }),
    levels: 1,
    pruning: { kind: 'global-magnitude', fraction: 0.5 },
    rewind: 'init',
    checkpointEvery: 50,
  });
  const run = await startOrAttachLottery(workers.client, spec);
  const store = openStore(e);
  // Wait for a checkpoint of level 0's run.
  const checkpoint = await until('a checkpoint', async () => {
    const s = await run.handle.query<LotteryStatus>('status');
    return s.running[0]?.checkpointKey ?? null;
  });
  assert.match(ok(await lth(['cancel', spec.experiment]), 'lth cancel').stdout, /\(lottery\): cancelled/);
  await assert.rejects(run.handle.result(), /cancel/i);
  const d = await run.handle.describe();
  assert.equal(d.status.name, 'CANCELLED');
  assert.equal(d.typedSearchAttributes.get(sa.PHASE), 'cancelled');
  assert.equal(run.workflowId, lotteryWorkflowId(spec));
  const runId = /^runs\/([^/]+)\/checkpoints\//.exec(checkpoint)?.[1];
  assert.ok(runId, checkpoint);
  // The rolling checkpoints of the run are there to resume from (older ones were replaced as it went on).
  const kept = await store.list(`runs/${runId}/checkpoints/`);
  assert.ok(kept.length > 0, 'a checkpoint is kept');
  assert.equal(await store.exists(runManifestKey(runId)), false, 'the run was not published');
  assert.equal(
    await store.exists(levelManifestKey(trunkLineageId(spec), 0)),
    false,
    'the level was not published',
  );
});
