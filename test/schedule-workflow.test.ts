// Scheduled runs on the real Temporal server: `lth schedule create` puts a tiny training spec on a schedule;
// `trigger` starts a run now, labelled with its time; a paused schedule starts nothing; `backfill` starts the runs
// of a past window, each labelled with its own past time; bad options are refused naming the field before any
// schedule exists.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import * as sa from '../contract/search-attributes';
import { endpointsToEnv } from '../infra/endpoints';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `sched${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-schedule-'));
const specFile = path.join(tmp, 'train.json');
fs.writeFileSync(
  specFile,
  JSON.stringify({
    experiment: tag,
    train: tinyLenetTrain(4, { iterations: 6, evalEvery: 6 }),
    checkpointEvery: 6,
  }),
);
const created: string[] = [];
after(async () => {
  for (const id of created) await lth(['schedule', 'delete', id]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scheduledRuns(id: string): Promise<{ workflowId: string; status: string }[]> {
  const out: { workflowId: string; status: string }[] = [];
  for await (const w of workers.client.workflow.list({ query: `TemporalScheduledById = '${id}'` }))
    out.push({ workflowId: w.workflowId, status: w.status.name });
  return out;
}

async function waitForRuns(id: string, n: number): Promise<{ workflowId: string; status: string }[]> {
  for (let i = 0; ; i++) {
    const runs = await scheduledRuns(id);
    if (runs.length >= n && runs.every((r) => r.status === 'COMPLETED')) return runs;
    assert.ok(i < 240, `schedule ${id}: ${JSON.stringify(runs)}`);
    await sleep(500);
  }
}

/** The experiment label the run's training child got. */
async function trainedExperiment(scheduledWorkflowId: string): Promise<string> {
  const r = (await workers.client.workflow.getHandle(scheduledWorkflowId).result()) as {
    workflowId: string;
    scheduledFor: string;
  };
  const d = await workers.client.workflow.getHandle(r.workflowId).describe();
  assert.equal(d.status.name, 'COMPLETED');
  return d.typedSearchAttributes.get(sa.EXPERIMENT) as string;
}

test('trigger starts a run now, labelled with its time; backfill starts the runs of a past window', async () => {
  const id = `${tag}-hourly`;
  const c = ok(
    await lth([
      'schedule',
      'create',
      id,
      '--config',
      specFile,
      '--every',
      '1h',
      '--note',
      'nightly ablation',
    ]),
    'create',
  );
  created.push(id);
  assert.match(c.stdout, /created schedule .*: a train \(.*-<time>\) every 1h UTC, overlap skip/);
  const d = ok(await lth(['schedule', 'describe', id]), 'describe').stdout;
  assert.match(d, /note: nightly ablation/);
  // The list comes from visibility, which may lag the create by a moment.
  for (let i = 0; ; i++) {
    if (new RegExp(`^${id}  active`, 'm').test(ok(await lth(['schedule', 'list']), 'list').stdout)) break;
    assert.ok(i < 10, `${id} never listed`);
    await sleep(500);
  }

  const before = Date.now();
  ok(await lth(['schedule', 'trigger', id]), 'trigger');
  const [run] = await waitForRuns(id, 1);
  const label = await trainedExperiment(run!.workflowId);
  const m = new RegExp(`^${tag}-(\\d{8}T\\d{6})Z$`).exec(label);
  assert.ok(m, label);
  const stamp = m[1]!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)$/, '$1-$2-$3T$4:$5:$6Z');
  assert.ok(Math.abs(new Date(stamp).getTime() - before) < 60_000, `${stamp} is not about now`);

  // Three hours back: three hourly runs, each labelled with its own hour.
  const end = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 60_000);
  const start = new Date(end.getTime() - 3 * 3_600_000);
  ok(
    await lth(['schedule', 'backfill', id, '--start', start.toISOString(), '--end', end.toISOString()]),
    'backfill',
  );
  const runs = await waitForRuns(id, 4);
  assert.equal(runs.length, 4);
  const labels = await Promise.all(runs.map((r) => trainedExperiment(r.workflowId)));
  const hours = labels.filter((l) => l !== label).sort();
  const expected = [1, 2, 3].map((k) => {
    const t = new Date(end.getTime() + 60_000 - k * 3_600_000).toISOString();
    return `${tag}-${t.slice(0, 19).replace(/[-:]/g, '')}Z`;
  });
  assert.deepEqual(hours, expected.sort());
});

test('a paused schedule starts no run; unpausing it does', async () => {
  const id = `${tag}-often`;
  ok(await lth(['schedule', 'create', id, '--config', specFile, '--every', '2s', '--paused']), 'create');
  created.push(id);
  assert.match(ok(await lth(['schedule', 'describe', id]), 'describe').stdout, /\(paused\)/);
  await sleep(6_000);
  assert.equal((await scheduledRuns(id)).length, 0);
  ok(await lth(['schedule', 'unpause', id, '--note', 'go']), 'unpause');
  await waitForRuns(id, 1);
  ok(await lth(['schedule', 'pause', id]), 'pause');
});

test('bad schedules are refused before anything is created, naming the field', async () => {
  const bad = [
    [['--cron', '0 25 * * *'], /cron\[0\]: '0 25 \* \* \*' .*hour|cron\[0\]: '0 25 \* \* \*'/],
    [['--cron', '0 2 * *'], /cron\[0\]: '0 2 \* \*' needs 5 fields/],
    [['--every', '10'], /every: a duration such as 90s/],
    [['--every', '1h', '--overlap', 'sometimes'], /argument 'sometimes' is invalid/],
    [[], /cron: give --cron or --every/],
  ] as const;
  for (const [flags, message] of bad) {
    const r = await lth(['schedule', 'create', `${tag}-bad`, '--config', specFile, ...flags]);
    assert.notEqual(r.code, 0, flags.join(' '));
    assert.match(r.stderr, message);
  }
  const listed = ok(await lth(['schedule', 'list']), 'list').stdout;
  assert.doesNotMatch(listed, new RegExp(`${tag}-bad`));
});
