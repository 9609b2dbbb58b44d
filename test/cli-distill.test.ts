// The distillation commands as a user runs them, against the real Temporal server and MinIO: `lth distill` for two
// variants over two seeds (a tiny teacher, a tiny student), then `lth status` lists the runs and `lth report`
// prints each variant's accuracy over seeds and writes report.md and the accuracy-by-epoch plot.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { endpointsToEnv } from '../infra/endpoints';
import { testEndpoints } from './support/env';
import { lthRunner, ok } from './support/cli';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const env = { ...process.env, ...endpointsToEnv(e) };
const tag = `dcli${Date.now().toString(36)}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cli-distill-'));
useTestWorkers(e);
const lth = lthRunner(env);

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const train = {
  dataset: 'mnist',
  optimizer: { kind: 'adam', lr: 1e-3 },
  batchSize: 32,
  iterations: 12,
  evalEvery: 6,
  trainLimit: 128,
  testLimit: 64,
};
const spec = {
  experiment: tag,
  student: { dim: 16, depth: 1, heads: 2 },
  teachers: [{ name: 'mlp', train: { ...train, model: 'lenet-300-100', seed: 0 } }],
  kd: { mode: 'tokens' },
  train: { ...train, model: 'vit-tiny', seed: 0 },
  checkpointEvery: 6,
};

test('lth distill runs variants over seeds; lth status lists them; lth report summarises them', async () => {
  const file = path.join(tmp, 'distill.yaml');
  fs.writeFileSync(file, JSON.stringify(spec));
  for (const [mode, seed] of [
    ['tokens', 0],
    ['tokens', 1],
    ['none', 0],
    ['none', 1],
  ] as const) {
    const r = ok(
      await lth(['distill', '--config', file, '--mode', mode, '--seed', String(seed)]),
      `distill ${mode}`,
    );
    assert.match(r.stderr, /started distill-/);
    assert.match(r.stdout, /test accuracy +\d/);
    if (mode === 'tokens') assert.match(r.stdout, /teacher mlp +logits\//);
  }
  // The same again attaches to the finished run.
  const again = ok(await lth(['distill', '--config', file, '--mode', 'none', '--seed', '1']), 'again');
  assert.match(again.stderr, /attached to distill-/);

  const status = ok(await lth(['status', tag]), 'status');
  assert.match(status.stdout, new RegExp(`experiment ${tag}: 4 distillation runs`));
  assert.match(status.stdout, /tokens\(mlp\) +0 +completed, done +12\/12/);
  assert.match(status.stdout, /student +1 +completed, done/);

  const out = path.join(tmp, 'report');
  const report = ok(await lth(['report', tag, '--out', out, '--format', 'svg']), 'report');
  assert.match(report.stdout, /tokens\(mlp\) +\d+\.\d\d ± \d+\.\d\d +0,1/);
  assert.match(report.stdout, /student +\d+\.\d\d ± \d+\.\d\d +0,1/);
  const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /\| tokens\(mlp\) \| \d+\.\d\d ± \d+\.\d\d \| 2 \| 0, 1 \|/);
  const svg = fs.readFileSync(path.join(out, 'accuracy-epochs.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /tokens\(mlp\)/);
  assert.match(report.stdout, new RegExp(`uploaded s3://[^ ]+/experiments/distill-${tag}/report/report.md`));
});
