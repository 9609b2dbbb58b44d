// Hostile input through `lth` itself, against the test stack: generated bad spec files (one field broken, as the
// schema says) and bad flags exit non-zero naming the field, start no workflow and write nothing to the store.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import type { Client } from '@temporalio/client';
import fc from 'fast-check';

import { lotterySpecSchema } from '../contract/lottery';
import { trainSpecSchema } from '../contract/train';
import { sweepSpecSchema } from '../contract/sweep';
import { endpointsToEnv } from '../infra/endpoints';
import type { ArtifactStore } from '../store';
import { connectClient, openStore } from '../workers/connection';
import { lthRunner } from './support/cli';
import { testEndpoints } from './support/env';
import { apply, example, jsonSchemaOf, mutations, namesField } from './hostile-support';

const e = testEndpoints();
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-hostile-cli-'));
const tag = `hostile${Date.now().toString(36)}`;
let client: Client;
let store: ArtifactStore;

before(async () => {
  client = await connectClient(e);
  store = openStore(e);
});
after(async () => {
  await client?.connection.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function workflows(): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of client.workflow.list()) ids.push(`${info.workflowId}/${info.runId}`);
  return ids.sort();
}
async function objects(): Promise<string[]> {
  return (await store.list('')).map((o) => `${o.key}@${o.bytes}@${o.lastModified.toISOString()}`).sort();
}

/** The run fails naming `field`, and neither Temporal nor the bucket has anything new. */
async function refusedCleanly(args: string[], field: RegExp | string, what: string): Promise<void> {
  const [wBefore, oBefore] = [await workflows(), await objects()];
  const r = await lth(args);
  assert.notEqual(r.code, 0, `${what}: exit 0\n${r.stderr}`);
  assert.ok(r.code !== null, `${what}: timed out`);
  if (typeof field === 'string')
    assert.ok(
      r.stderr.split('\n').some((l) => namesField(l.trim(), field)),
      `${what}: stderr does not name ${field}:\n${r.stderr}`,
    );
  else assert.match(r.stderr, field, what);
  assert.doesNotMatch(r.stderr, /started /, what);
  assert.deepEqual(await workflows(), wBefore, `${what}: a workflow appeared`);
  assert.deepEqual(await objects(), oBefore, `${what}: the store changed`);
}

const kinds = [
  {
    cmd: 'train',
    base: { ...example('lenet-mnist.yaml'), experiment: `${tag}-t` },
    schema: trainSpecSchema,
    skip: [],
  },
  {
    cmd: 'lottery',
    base: { ...example('lottery-lenet-mnist.yaml'), experiment: `${tag}-l` },
    schema: lotterySpecSchema,
    skip: [],
  },
  {
    cmd: 'sweep',
    base: example('sweeps/lottery-lenet-rewind-fraction.yaml'),
    schema: sweepSpecSchema,
    skip: ['base', 'axes.0.values', 'axes.1.values', 'axes.2.values'],
  },
];

for (const k of kinds) {
  test(`lth ${k.cmd}: generated bad spec files exit non-zero naming the field, start nothing, write nothing`, async () => {
    // Missing train: `lth train` builds it from flags and defaults by design.
    const ms = mutations(k.base, jsonSchemaOf(k.schema), k.skip).filter(
      (m) => !(m.how === 'missing' && m.field === 'train'),
    );
    const picks = fc.sample(
      fc.constantFrom(...ms).chain((m) => m.arb.map((op) => ({ m, op }))),
      { numRuns: 4, seed: 21 },
    );
    for (const [i, { m, op }] of picks.entries()) {
      const { spec, field } = apply(k.base, m, op);
      const file = path.join(tmp, `${k.cmd}-${i}.json`);
      fs.writeFileSync(file, JSON.stringify(spec));
      // JSON turns NaN and infinities into null: still a wrong type for a number field.
      await refusedCleanly([k.cmd, '--config', file, '--no-follow'], field, `${m.how} ${JSON.stringify(op)}`);
    }
  });
}

test('bad flags (numbers, choices) exit non-zero naming the flag, start nothing, write nothing', async () => {
  const cfg = path.join(tmp, 'ok.json');
  fs.writeFileSync(cfg, JSON.stringify({ ...example('lenet-mnist.yaml'), experiment: `${tag}-f` }));
  const cases: [string[], RegExp][] = [
    [['train', '--config', cfg, '--epochs', 'abc', '--no-follow'], /--epochs.*expected a number/],
    [['train', '--config', cfg, '--batch-size', '1.5', '--no-follow'], /--batch-size.*expected an integer/],
    [['train', '--config', cfg, '--seed', '', '--no-follow'], /--seed.*expected an integer/],
    [['train', '--config', cfg, '--model', 'gpt-9', '--no-follow'], /--model.*gpt-9.*choices/s],
    [['train', '--config', cfg, '--lr', '-1', '--no-follow'], /train\.optimizer\.lr/],
    [['train', '--config', cfg, '--experiment', '../x', '--no-follow'], /experiment:/],
    [['lottery', '--config', cfg, '--levels', '1e999', '--no-follow'], /--levels.*expected an integer/],
    [['lottery', '--config', cfg, '--fraction', 'NaN', '--no-follow'], /--fraction.*expected a number/],
    [['status', '../etc'], /EXPERIMENT: .*not an experiment name/],
  ];
  for (const [args, re] of cases) await refusedCleanly(args, re, args.join(' '));
});
