// `lth distill` takes a spec file and flags that override it field by field, and refuses a bad spec naming the
// field before it connects to anything.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { distillSpecFromFlags } from '../cli/commands/distill';
import { REPO_ROOT } from '../infra/paths';
import { lthRunner } from './support/cli';

const example = (name: string) => path.join(REPO_ROOT, 'examples/distill', name);
// Nothing listens here: a command that got as far as connecting would fail with another message.
const lth = lthRunner({ ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', S3_ENDPOINT: 'http://127.0.0.1:1' });

test('flags override the distill spec field by field', () => {
  const spec = distillSpecFromFlags({
    config: example('both-tokens.yaml'),
    mode: 'average',
    temperature: 4,
    epochs: 1,
    trainLimit: 6000,
    experiment: 'scarce',
  });
  assert.equal(spec.experiment, 'scarce');
  assert.deepEqual(spec.kd, { mode: 'average', temperature: 4, alpha: 0.5, kdWeight: 1 });
  assert.equal(spec.train.epochs, 1);
  assert.equal(spec.train.trainLimit, 6000);
  assert.equal(spec.teachers.length, 2);
});

test('lth distill refuses a spec that cannot run, naming the field, before connecting', async () => {
  const r = await lth([
    'distill',
    '--config',
    example('deit-hard.yaml'),
    '--mode',
    'tokens',
    '--temperature',
    '0',
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /expected a temperature > 0/);
  const twoTeachers = await lth(['distill', '--config', example('both-tokens.yaml'), '--mode', 'deit-hard']);
  assert.equal(twoTeachers.code, 1, twoTeachers.stderr);
  assert.match(twoTeachers.stderr, /teachers: kd.mode deit-hard takes 1 teacher\(s\), got 2/);
  assert.doesNotMatch(twoTeachers.stderr, /ECONNREFUSED|started/);
});

test('--features and --feature-weight set the feature term; --mode none drops it with the teachers', () => {
  const spec = distillSpecFromFlags({ config: example('cnn.yaml'), features: 'cnn', featureWeight: 0.5 });
  assert.deepEqual(spec.kd.features, { teacher: 'cnn', weight: 0.5, format: 'float16' });
  const fromFile = distillSpecFromFlags({ config: example('cnn-features.yaml'), featureWeight: 2 });
  assert.deepEqual(fromFile.kd.features, { teacher: 'cnn', weight: 2, format: 'float16' });
  const alone = distillSpecFromFlags({ config: example('cnn-features.yaml'), mode: 'none' });
  assert.equal(alone.kd.features, undefined);
  assert.deepEqual(alone.teachers, []);
  assert.throws(
    () => distillSpecFromFlags({ config: example('both-tokens.yaml'), features: 'mlp' }),
    /kd.features.teacher: names no teacher of this spec \(cnn, involution\)/,
  );
});
