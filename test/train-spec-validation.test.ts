// Specs are checked at the edge: bad input fails at once with a message naming each field.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { specFromFlags } from '../cli/commands/train';
import { specHash, trainWorkflowId } from '../contract/ids';
import { MODEL_NAMES as ML_MODEL_NAMES } from '../ml/models';
import { MODEL_NAMES, parseTrainSpec } from '../contract/train';
import { SpecError } from '../contract/spec';

test('defaults fill a minimal spec with open_lth settings', () => {
  const spec = parseTrainSpec({ train: { epochs: 1 } });
  assert.equal(spec.experiment, 'default');
  assert.equal(spec.train.model, 'lenet-300-100');
  assert.deepEqual(spec.train.optimizer, { kind: 'sgd', lr: 0.1, momentum: 0 });
  assert.equal(spec.train.batchSize, 128);
  assert.equal(spec.checkpointEvery, 200);
});

test('every invalid field is named in the error', () => {
  assert.throws(
    () =>
      parseTrainSpec({
        train: { dataset: 'cifar', batchSize: 0, iterations: 10, optimizer: { kind: 'adam', lr: -1 } },
      }),
    (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.match(err.message, /train\.dataset/);
      assert.match(err.message, /train\.batchSize/);
      assert.match(err.message, /train\.optimizer\.lr/);
      return true;
    },
  );
});

test('exactly one of iterations and epochs', () => {
  assert.throws(
    () => parseTrainSpec({ train: {} }),
    /train\.iterations: give exactly one of iterations or epochs/,
  );
  assert.throws(() => parseTrainSpec({ train: { iterations: 5, epochs: 1 } }), /exactly one/);
});

test('unknown fields are refused rather than silently ignored', () => {
  assert.throws(() => parseTrainSpec({ train: { epochs: 1, learningRate: 0.1 } }), /train: .*learningRate/);
});

test('flags override the config file field by field', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-spec-'));
  const file = path.join(dir, 'spec.yaml');
  fs.writeFileSync(
    file,
    'experiment: a\ntrain:\n  dataset: mnist\n  iterations: 100\n  optimizer: { kind: sgd, lr: 0.05, momentum: 0.9 }\n',
  );
  const spec = specFromFlags({ config: file, dataset: 'fashion-mnist', epochs: 2, lr: 0.2 });
  assert.equal(spec.experiment, 'a');
  assert.equal(spec.train.dataset, 'fashion-mnist');
  assert.equal(spec.train.epochs, 2);
  assert.equal(spec.train.iterations, undefined);
  assert.deepEqual(spec.train.optimizer, { kind: 'sgd', lr: 0.2, momentum: 0.9 });
});

test('a config file that is not valid YAML is reported with its name', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-spec-'));
  const file = path.join(dir, 'broken.yaml');
  fs.writeFileSync(file, 'train: [unclosed\n');
  assert.throws(() => specFromFlags({ config: file }), /broken\.yaml is not valid YAML/);
});

test('workflow ids are derived from the spec, independent of key order', () => {
  const a = parseTrainSpec({ experiment: 'x', train: { iterations: 10, seed: 1 } });
  const b = parseTrainSpec({ train: { seed: 1, iterations: 10 }, experiment: 'x' });
  const c = parseTrainSpec({ experiment: 'x', train: { iterations: 10, seed: 2 } });
  assert.equal(trainWorkflowId(a), trainWorkflowId(b));
  assert.notEqual(specHash(a), specHash(c));
  assert.match(trainWorkflowId(a), /^train-x-[0-9a-f]{16}$/);
});

test('specs accept exactly the models ml/ provides', () => {
  assert.deepEqual([...MODEL_NAMES].sort(), [...ML_MODEL_NAMES].sort());
});
