// One schema for a training config: the spec's `train` section is ml/'s config schema with defaults and `epochs`
// added, so what `lth train` accepts is exactly what the trainer on the compute worker accepts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { SpecError } from '../contract/spec';
import { parseTrainSpec, toTrainConfig, trainConfigSpecSchema } from '../contract/train';
import { parseTrainConfig, trainConfigSchema } from '../ml/train';
import { lthRunner } from './support/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-train-config-'));
// Nothing listens here: a command that got as far as connecting would fail with another message.
const lth = lthRunner({ ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', S3_ENDPOINT: 'http://127.0.0.1:1' });

const BAD_OPTIMIZERS: [string, Record<string, unknown>, RegExp][] = [
  ['momentum 1', { kind: 'sgd', lr: 0.1, momentum: 1 }, /train\.optimizer\.momentum: /],
  [
    'nesterov without momentum',
    { kind: 'sgd', lr: 0.1, nesterov: true },
    /train\.optimizer\.nesterov: nesterov needs momentum > 0/,
  ],
  ['an unknown optimizer field', { kind: 'adam', lr: 1e-3, amsgrad: true }, /train\.optimizer: .*amsgrad/],
];

for (const [what, optimizer, message] of BAD_OPTIMIZERS) {
  test(`lth train refuses a spec with ${what}, naming the field, before anything starts`, async () => {
    const file = path.join(tmp, `${what.replace(/ /g, '-')}.yaml`);
    fs.writeFileSync(
      file,
      JSON.stringify({ experiment: 'bad-optimizer', train: { iterations: 10, optimizer } }),
    );
    const r = await lth(['train', '--config', file, '--no-follow']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /ECONNREFUSED|connect|started/i);
    // The workflow's and the activity's own check is the same parse.
    assert.throws(() => parseTrainSpec({ train: { iterations: 10, optimizer } }), SpecError);
  });
}

test('the spec schema is the ml schema with epochs: the same fields, nothing copied', () => {
  const ml = Object.keys(trainConfigSchema.shape).sort();
  const spec = Object.keys(trainConfigSpecSchema.shape).sort();
  assert.deepEqual(spec, [...ml, 'epochs'].sort());
});

test('every spec the schema accepts is a config the trainer accepts', () => {
  const specs = [
    { epochs: 1 },
    { iterations: 5, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 } },
    { iterations: 5, optimizer: { kind: 'adam', lr: 1e-3 }, evalEvery: 0, model: 'conv-2', seed: 3 },
    { epochs: 0.5, dataset: 'fashion-mnist', batchSize: 7, trainLimit: 100, testLimit: 10 },
  ];
  for (const s of specs) {
    const { train } = parseTrainSpec({ train: s });
    const config = toTrainConfig(train, 1000);
    assert.deepEqual(parseTrainConfig(config), config);
    assert.equal(
      config.iterations,
      train.iterations ?? Math.ceil(((train.epochs ?? 1) * 1000) / train.batchSize),
    );
  }
});
