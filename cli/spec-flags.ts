// Command-line flags shared by the commands that take a spec (`lth train`, `lth lottery`): number parsers
// that fail on the flag, the training options, and how they override the spec file's `train` section.
import { InvalidArgumentError, Option, type Command } from 'commander';

import { specError } from '../contract/spec';
import { DATASET_NAMES, MODEL_NAMES } from '../contract/train';

export const int = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n))
    throw new InvalidArgumentError(`expected an integer, got "${v}"`);
  return n;
};

export const num = (v: string): number => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
  return n;
};

/** The flags that override fields of a spec's `train` section. */
export interface TrainFieldFlags {
  model?: string;
  dataset?: string;
  iterations?: number;
  epochs?: number;
  batchSize?: number;
  optimizer?: 'sgd' | 'adam' | 'adamw';
  lr?: number;
  momentum?: number;
  seed?: number;
  evalEvery?: number;
  trainLimit?: number;
  testLimit?: number;
}

export function addTrainOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--model <name>', 'model').choices([...MODEL_NAMES]))
    .addOption(new Option('--dataset <name>', 'dataset').choices([...DATASET_NAMES]))
    .option('--iterations <n>', 'training steps', int)
    .option('--epochs <n>', 'training epochs (instead of iterations)', num)
    .option('--batch-size <n>', 'batch size', int)
    .addOption(new Option('--optimizer <kind>', 'optimizer').choices(['sgd', 'adam', 'adamw']))
    .option('--lr <x>', 'learning rate', num)
    .option('--momentum <x>', 'SGD momentum', num)
    .option('--seed <n>', 'seed for init and data order', int)
    .option('--eval-every <n>', 'evaluate on the test set every N steps', int)
    .option('--train-limit <n>', 'use only the first N training samples', int)
    .option('--test-limit <n>', 'use only the first N test samples', int);
}

function set(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) obj[key] = value;
}

/**
 * The `train` section of a spec with the flags applied field by field. `--epochs` replaces `iterations` and the
 * other way round; a new optimizer kind starts from its own defaults.
 */
export function applyTrainFlags(base: unknown, flags: TrainFieldFlags): Record<string, unknown> {
  // A `train` that is not an object is the file's mistake: name it rather than start from the defaults.
  if (base !== undefined && (base === null || typeof base !== 'object' || Array.isArray(base)))
    throw specError(
      'spec',
      'train',
      `Invalid input: expected object, received ${base === null ? 'null' : Array.isArray(base) ? 'array' : typeof base}`,
    );
  const train: Record<string, unknown> = base === undefined ? {} : { ...(base as object) };
  set(train, 'model', flags.model);
  set(train, 'dataset', flags.dataset);
  if (flags.epochs !== undefined) {
    train.epochs = flags.epochs;
    delete train.iterations;
  }
  if (flags.iterations !== undefined) {
    train.iterations = flags.iterations;
    delete train.epochs;
  }
  set(train, 'batchSize', flags.batchSize);
  set(train, 'seed', flags.seed);
  set(train, 'evalEvery', flags.evalEvery);
  set(train, 'trainLimit', flags.trainLimit);
  set(train, 'testLimit', flags.testLimit);
  if (flags.optimizer !== undefined || flags.lr !== undefined || flags.momentum !== undefined) {
    const prev = (train.optimizer as Record<string, unknown> | undefined) ?? {};
    const kind = flags.optimizer ?? (prev.kind as string | undefined) ?? 'sgd';
    const optimizer: Record<string, unknown> = kind === prev.kind ? { ...prev } : { kind };
    set(
      optimizer,
      'lr',
      flags.lr ?? (optimizer.lr === undefined ? (kind === 'sgd' ? 0.1 : 1.2e-3) : undefined),
    );
    set(optimizer, 'momentum', flags.momentum);
    train.optimizer = optimizer;
  }
  return train;
}
