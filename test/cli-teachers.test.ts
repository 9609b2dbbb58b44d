// The teacher commands as a user runs them: `lth` as a child process against the real Temporal server and MinIO,
// on a tiny teacher (LeNet-300-100, 320 training images, 40 steps) and 250 test images in shards of 100, top-3.
//   lth teachers train  ->  lth teachers precompute --no-follow, then again followed (attaches)  ->
//   lth teachers inspect --json (checked against LogitReader + labels in-process)  ->  a rerun does no teacher work
// and a spec with a bad field refused, naming it, before anything starts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import type { LogitSetView } from '../cli/commands/teachers';
import { precomputeWorkflowId, trainWorkflowId } from '../contract/ids';
import { endpointsToEnv } from '../infra/endpoints';
import { loadDataset } from '../ml/data';
import { LogitReader } from '../store';
import { openStore } from '../workers/connection';
import { parsePrecomputeSpec } from '../contract/precompute';
import { parseTrainSpec } from '../contract/train';
import { testEndpoints } from './support/env';
import { lthRunner, ok } from './support/cli';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const env = { ...process.env, ...endpointsToEnv(e) };
const tag = `tch${Date.now().toString(36)}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cli-teachers-'));
const workers = useTestWorkers(e);

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const lth = lthRunner(env);

const teacherTrain = {
  model: 'lenet-300-100',
  dataset: 'mnist',
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  batchSize: 32,
  iterations: 40,
  evalEvery: 40,
  seed: 5,
  trainLimit: 320,
  testLimit: 100,
};
const trainSpecInput = { experiment: tag, train: teacherTrain, checkpointEvery: 20 };
const precomputeInput = {
  experiment: tag,
  teacher: { name: 'tiny-lenet', train: teacherTrain },
  split: 'train',
  limit: 250,
  format: 'float16',
  shardSize: 100,
};
// What the flags below turn it into.
const precomputeSpec = parsePrecomputeSpec({ ...precomputeInput, split: 'test', format: 'top-k', k: 3 });

async function count(query: string): Promise<number> {
  let n = 0;
  for await (const info of workers.client.workflow.list({ query })) if (info.workflowId) n++;
  return n;
}

test('a precompute spec with a bad field fails naming the field, before anything starts', async () => {
  const file = path.join(tmp, 'bad.yaml');
  fs.writeFileSync(file, JSON.stringify({ ...precomputeInput, experiment: `${tag}-bad`, shardSize: -5 }));
  const r = await lth(['teachers', 'precompute', '--config', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /shardSize: /);
  assert.doesNotMatch(r.stderr, /started/);
  const k = await lth([
    'teachers',
    'precompute',
    '--config',
    file,
    '--shard-size',
    '100',
    '--format',
    'top-k',
  ]);
  assert.equal(k.code, 1, k.stderr);
  assert.match(k.stderr, /k: required for format top-k/);
  assert.equal(await count(`Experiment = "${tag}-bad"`), 0, 'no workflow was started');
});

test('teachers train, precompute and inspect: coverage, size and accuracy from the stored logits', async () => {
  const trainFile = path.join(tmp, 'teacher.yaml');
  fs.writeFileSync(trainFile, JSON.stringify(trainSpecInput));
  const t = ok(await lth(['teachers', 'train', '--config', trainFile]), 'lth teachers train');
  assert.match(t.stderr, new RegExp(`started ${trainWorkflowId(parseTrainSpec(trainSpecInput))}`));
  assert.match(t.stdout, /test accuracy +\d/);

  // Flags override the file field by field: test split, top-3.
  const file = path.join(tmp, 'precompute.yaml');
  fs.writeFileSync(file, JSON.stringify(precomputeInput));
  const flags = ['--config', file, '--split', 'test', '--format', 'top-k', '--k', '3'];
  const id = precomputeWorkflowId(precomputeSpec);
  assert.match(id, new RegExp(`^logits-${tag}-tiny-lenet-[0-9a-f]{16}$`));
  const start = ok(await lth(['teachers', 'precompute', ...flags, '--no-follow']), 'precompute --no-follow');
  assert.match(start.stderr, new RegExp(`^started ${id}$`, 'm'));
  assert.match(start.stderr, new RegExp(`/workflows/${id}$`, 'm'));

  // Again, followed: it attaches to the same workflow and prints the outcome.
  const followed = ok(await lth(['teachers', 'precompute', ...flags]), 'precompute (followed)');
  assert.match(followed.stderr, new RegExp(`^attached to ${id}$`, 'm'));
  const key = /^logits (\S+)/m.exec(followed.stdout)?.[1];
  assert.ok(key, followed.stdout);
  assert.match(followed.stdout, /^ {2}shards +3 computed, 0 skipped/m);
  assert.match(followed.stdout, /^ {2}bytes\/sample +9 /m);
  const result = await workers.client.workflow.getHandle(id).result();
  assert.equal(result.manifestKey, key);
  assert.equal(await count(`Experiment = "${tag}" AND RunKind = "logits"`), 1);

  const inspected = ok(await lth(['teachers', 'inspect', key, '--json']), 'inspect --json');
  const view = JSON.parse(inspected.stdout) as LogitSetView;
  assert.equal(view.teacher.name, 'tiny-lenet');
  assert.equal(view.dataset, 'mnist');
  assert.equal(view.split, 'test');
  assert.deepEqual(view.augmentation, { policy: 'none', seed: 0 });
  assert.equal(view.format, 'top-k');
  assert.equal(view.k, 3);
  assert.equal(view.classes, 10);
  assert.equal(view.sampleCount, 250);
  assert.equal(view.shardCount, 3);
  assert.equal(view.bytesPerSample, 9);
  assert.deepEqual(view.coverage, { ranges: [[0, 250]], complete: true });
  assert.ok(view.totalBytes > 250 * 9, String(view.totalBytes));

  // The same accuracy, in-process: the stored rows' argmax against the labels of the limited test split.
  const reader = await LogitReader.open(openStore(e), [key], {
    dataset: 'mnist',
    split: 'test',
    augmentation: { policy: 'none', seed: 0 },
  });
  const rows = (await reader.read(Int32Array.from({ length: 250 }, (_, i) => i))).teachers[0]!.values;
  await reader.close();
  const labels = loadDataset('mnist', 'test', { limit: 250 }).labels;
  let correct = 0;
  for (let i = 0; i < 250; i++) {
    const row = Array.from(rows.subarray(i * 10, i * 10 + 10));
    if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
  }
  assert.equal(view.accuracy?.correct, correct);
  assert.equal(view.accuracy?.value, correct / 250);
  assert.ok(correct / 250 > 0.5, `a trained teacher beats chance: ${correct}/250`);

  const text = ok(await lth(['teachers', 'inspect', key]), 'inspect');
  assert.match(text.stdout, /^ {2}coverage +0\.\.249 \(complete: 0\.\.249, no gaps\)$/m);
  assert.match(
    text.stdout,
    /^ {2}teacher accuracy +[\d.]+% \(\d+\/250, argmax of the stored outputs on the plain images\)$/m,
  );

  // A rerun with the same spec under another experiment label: a new workflow, and no teacher work.
  const again = ok(
    await lth(['teachers', 'precompute', ...flags, '--experiment', `${tag}-again`]),
    'precompute rerun',
  );
  assert.match(again.stdout, new RegExp(`^logits ${key} \\(already stored; no teacher work\\)$`, 'm'));
  assert.match(again.stdout, /^ {2}shards +0 computed, 3 skipped/m);
});
