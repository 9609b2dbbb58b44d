// The lottery-ticket commands as a user runs them: `lth` as a child process against the real Temporal server
// and MinIO, on tiny data (LeNet-300-100, 320 training / 100 test images, 40 steps per level, levels 0..2).
//   lth lottery (followed)  ->  lth branch --no-follow  ->  lth status --watch --json  ->  lth report
// and a spec with an unknown layer refused before anything starts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { trunkLineageId } from '../contract/ids';
import type { ExperimentView } from '../cli/experiments';
import { lotteryWorkflowId } from '../contract/ids';
import { endpointsToEnv } from '../infra/endpoints';
import { experimentReportKey } from '../store';
import { openStore } from '../workers/connection';
import { parseLotterySpec } from '../contract/lottery';
import { testEndpoints } from './support/env';
import { lthRunner, ok } from './support/cli';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const env = { ...process.env, ...endpointsToEnv(e) };
const tag = `cli${Date.now().toString(36)}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cli-lottery-'));
const workers = useTestWorkers(e);

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const lth = lthRunner(env);

const specInput = {
  experiment: tag,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    iterations: 40,
    evalEvery: 20,
    seed: 7,
    trainLimit: 320,
    testLimit: 100,
  },
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 10 },
  branches: [{ kind: 'reinit' }],
  checkpointEvery: 20,
};
const spec = parseLotterySpec(specInput);
const trunkId = lotteryWorkflowId(spec);
// fc1 + fc2 are pruned (fc3, the output layer, is left dense by default), halved per level.
const covered = 784 * 300 + 300 * 100;
const out = 100 * 10;
const afterOne = covered - Math.round(covered * 0.5);
const afterTwo = afterOne - Math.round(afterOne * 0.5);
const REMAINING = [covered + out, afterOne + out, afterTwo + out];

async function count(query: string): Promise<number> {
  let n = 0;
  for await (const info of workers.client.workflow.list({ query })) if (info.workflowId) n++;
  return n;
}

async function visible(query: string, n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await count(query)) >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`visibility never showed ${n} workflows for ${query}`);
}

test('a spec naming an unknown layer fails before anything starts, naming the field', async () => {
  const file = path.join(tmp, 'bad.yaml');
  fs.writeFileSync(
    file,
    `experiment: ${tag}-bad\ntrain: { iterations: 40, trainLimit: 320 }\n` +
      'pruning: { kind: global-magnitude, exclude: [fc3.weight, fc9.weight] }\n',
  );
  const r = await lth(['lottery', '--config', file, '--no-follow']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /pruning\.exclude: 'fc9\.weight' is not a prunable weight of lenet-300-100/);
  assert.doesNotMatch(r.stderr, /started/);
  assert.equal(await count(`Experiment = "${tag}-bad"`), 0, 'no workflow was started');
  const status = await lth(['status', `${tag}-bad`]);
  assert.equal(status.code, 1);
  assert.match(status.stderr, /no lottery experiment "cli[0-9a-z]+-bad"/);
});

test('lth lottery runs the trunk and its branch and follows them to the table', async () => {
  const file = path.join(tmp, 'lottery.yaml');
  fs.writeFileSync(file, JSON.stringify(specInput)); // YAML is a superset of JSON
  const r = ok(await lth(['lottery', '--config', file]), 'lth lottery');
  assert.match(r.stderr, new RegExp(`started ${trunkId}`));
  // One line per finished level of the trunk and the branch.
  for (const level of [0, 1, 2]) assert.match(r.stderr, new RegExp(`^trunk +level +${level} `, 'm'));
  for (const level of [1, 2]) assert.match(r.stderr, new RegExp(`^reinit-s1 +level +${level} `, 'm'));
  assert.match(r.stdout, /^ticket \(IMP\)$/m);
  assert.match(r.stdout, /^reinit-s1$/m);
  assert.match(r.stdout, /^ +0 +100\.0 /m);
});

test('lth branch starts another control from the trunk found by experiment; status --watch follows it', async () => {
  const r = ok(await lth(['branch', tag, '--kind', 'one-shot', '--no-follow']), 'lth branch');
  assert.match(r.stderr, new RegExp(`started ${trunkId}\\.one-shot`));
  await visible(`Experiment = "${tag}" AND RunKind = "lottery-branch"`, 2);

  const s = ok(await lth(['status', tag, '--watch', '--json', '--interval', '0.5']), 'lth status --watch');
  const lines = s.stdout.trim().split('\n');
  const view = JSON.parse(lines[lines.length - 1]!) as ExperimentView;
  assert.equal(view.experiment, tag);
  assert.equal(view.trunks.length, 1);
  const t = view.trunks[0]!;
  assert.equal(t.workflowId, trunkId);
  assert.equal(t.lineageId, trunkLineageId(spec));
  assert.equal(t.trunk?.execution, 'COMPLETED');
  assert.deepEqual(
    t.trunk?.levels.map((l) => [l.level, l.remaining]),
    [0, 1, 2].map((l) => [l, REMAINING[l]]),
  );
  assert.deepEqual(
    t.branches.map((b) => [b.label, b.execution, b.levels.map((l) => [l.level, l.remaining])]),
    ['one-shot', 'reinit-s1'].map((label) => [label, 'COMPLETED', [1, 2].map((l) => [l, REMAINING[l]])]),
  );

  const text = ok(await lth(['status', tag]), 'lth status');
  assert.match(text.stdout, new RegExp(`^trunk ${trunkId} +\\(completed, done; 3 of 3 levels\\)$`, 'm'));
  assert.match(text.stdout, /^branch one-shot /m);
});

test('lth report prints the table and writes report.md and the plot to the folder and the store', async () => {
  const dir = path.join(tmp, 'report');
  const r = ok(await lth(['report', tag, '--out', dir, '--format', 'svg']), 'lth report');
  const lines = r.stdout.split('\n');
  const block = (name: string) => {
    const at = lines.indexOf(name);
    assert.ok(at >= 0, `no block ${name} in:\n${r.stdout}`);
    return lines.slice(at + 3, at + 6).map((l) => l.trim().split(/\s+/));
  };
  // Every series starts at the trunk's dense level 0, so the lines start at 100%.
  for (const name of ['ticket (IMP)', 'one-shot', 'reinit-s1']) {
    const rows = block(name);
    assert.deepEqual(
      rows.map((row) => row.slice(0, 2)),
      [
        ['0', '100.0'],
        ['1', ((100 * REMAINING[1]!) / REMAINING[0]!).toFixed(1)],
        ['2', ((100 * REMAINING[2]!) / REMAINING[0]!).toFixed(1)],
      ],
      name,
    );
    for (const row of rows) assert.equal(row.length, 5, row.join(' '));
  }
  const md = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
  assert.match(md, /^\| ticket \(IMP\) \| 0 \| 100\.0 \|/m);
  assert.match(md, /^\| reinit-s1 \| 2 \|/m);
  assert.match(md, /!\[final test accuracy \(%\) vs % of weights remaining\]\(accuracy\.svg\)/);
  const svg = fs.readFileSync(path.join(dir, 'accuracy.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /final test accuracy/);

  const store = openStore(e);
  const lineage = trunkLineageId(spec);
  for (const file of ['report.md', 'accuracy.svg']) {
    const key = experimentReportKey(lineage, file);
    assert.match(r.stdout, new RegExp(key.replace(/[.()]/g, '\\$&')));
    const { bytes } = await store.getBytes(key);
    assert.ok(bytes.equals(fs.readFileSync(path.join(dir, file))), `${key} holds what was written locally`);
  }
});
