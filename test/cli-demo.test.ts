// `lth demo` without running it (the real demo trains five levels of full MNIST): its experiment spec, its
// options and the flags it refuses.
//   node --import tsx --test test/cli-demo.test.ts
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { demoLotterySpec } from '../cli/commands/demo';
import { REPO_ROOT } from '../infra/paths';

function lth(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts'), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('the demo experiment: LeNet-300-100 on MNIST, open_lth SGD, levels 0..4 of 20% global magnitude, reinit', () => {
  const spec = demoLotterySpec();
  assert.equal(spec.experiment, 'demo');
  assert.equal(spec.train.model, 'lenet-300-100');
  assert.equal(spec.train.dataset, 'mnist');
  assert.deepEqual(spec.train.optimizer, { kind: 'sgd', lr: 0.1, momentum: 0 });
  assert.equal(spec.train.batchSize, 128);
  assert.equal(spec.train.epochs, 1);
  assert.equal(spec.train.seed, 0);
  assert.equal(spec.train.trainLimit, undefined);
  assert.equal(spec.levels, 4);
  assert.deepEqual(spec.pruning, { kind: 'global-magnitude', fraction: 0.2 });
  assert.equal(spec.rewind, 'init');
  assert.deepEqual(spec.branches, [{ kind: 'reinit', seed: 1 }]);

  const other = demoLotterySpec({ epochs: 2, levels: 6, seed: 3 });
  assert.equal(other.train.epochs, 2);
  assert.equal(other.levels, 6);
  assert.equal(other.train.seed, 3);
});

test('lth demo --help lists its options; --levels with --train is refused before anything starts', () => {
  const help = lth(['demo', '--help']);
  assert.equal(help.status, 0, help.stderr);
  for (const flag of ['--epochs', '--levels', '--seed', '--backend', '--train'])
    assert.match(help.stdout, new RegExp(`${flag} `));
  assert.match(help.stdout, /lottery-ticket\s+experiment/);

  const bad = lth(['demo', '--train', '--levels', '2']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--levels is for the lottery demo, not --train/);
  assert.doesNotMatch(bad.stderr, /started/);

  const zero = lth(['demo', '--epochs', '0']);
  assert.notEqual(zero.status, 0);
  assert.match(zero.stderr, /expected a positive number/);
});
