import { Command, Option } from 'commander';

import { connectClient, endpoints } from '../../workers/connection';
import { MODEL_NAMES, parseTrainSpec, type TrainSpec } from '../../workflows/specs';
import { describeResult, followTrain } from '../follow';
import { startOrAttachTrain } from '../runs';
import { readSpecFile } from '../spec-file';

interface TrainFlags {
  config?: string;
  experiment?: string;
  model?: string;
  dataset?: string;
  iterations?: number;
  epochs?: number;
  batchSize?: number;
  optimizer?: 'sgd' | 'adam';
  lr?: number;
  momentum?: number;
  seed?: number;
  evalEvery?: number;
  trainLimit?: number;
  testLimit?: number;
  checkpointEvery?: number;
  follow: boolean;
  json?: boolean;
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`expected an integer, got "${v}"`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got "${v}"`);
  return n;
};

/** Flags override the config file, field by field. */
export function specFromFlags(flags: Omit<TrainFlags, 'follow' | 'json'>): TrainSpec {
  const base = flags.config ? readSpecFile(flags.config) : {};
  const train = { ...((base.train as Record<string, unknown> | undefined) ?? {}) };
  const set = (obj: Record<string, unknown>, key: string, value: unknown) => {
    if (value !== undefined) obj[key] = value;
  };
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
  if (train.iterations === undefined && train.epochs === undefined) train.epochs = 1;
  set(train, 'batchSize', flags.batchSize);
  set(train, 'seed', flags.seed);
  set(train, 'evalEvery', flags.evalEvery);
  set(train, 'trainLimit', flags.trainLimit);
  set(train, 'testLimit', flags.testLimit);
  if (flags.optimizer !== undefined || flags.lr !== undefined || flags.momentum !== undefined) {
    const prev = (train.optimizer as Record<string, unknown> | undefined) ?? {};
    const kind = flags.optimizer ?? (prev.kind as string | undefined) ?? 'sgd';
    const optimizer: Record<string, unknown> = kind === prev.kind ? { ...prev } : { kind };
    set(optimizer, 'lr', flags.lr ?? (optimizer.lr === undefined ? (kind === 'adam' ? 1.2e-3 : 0.1) : undefined));
    set(optimizer, 'momentum', flags.momentum);
    train.optimizer = optimizer;
  }
  const spec: Record<string, unknown> = { ...base, train };
  set(spec, 'experiment', flags.experiment);
  set(spec, 'checkpointEvery', flags.checkpointEvery);
  return parseTrainSpec(spec);
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('start (or attach to) a durable training run and follow it')
    .option('-c, --config <file>', 'training spec, JSON or YAML')
    .option('-e, --experiment <name>', 'experiment label (search attribute Experiment)')
    .addOption(new Option('--model <name>', 'model').choices([...MODEL_NAMES]))
    .addOption(new Option('--dataset <name>', 'dataset').choices(['mnist', 'fashion-mnist']))
    .option('--iterations <n>', 'training steps', int)
    .option('--epochs <n>', 'training epochs (instead of iterations)', num)
    .option('--batch-size <n>', 'batch size', int)
    .addOption(new Option('--optimizer <kind>', 'optimizer').choices(['sgd', 'adam']))
    .option('--lr <x>', 'learning rate', num)
    .option('--momentum <x>', 'SGD momentum', num)
    .option('--seed <n>', 'seed for init and data order', int)
    .option('--eval-every <n>', 'evaluate on the test set every N steps', int)
    .option('--train-limit <n>', 'use only the first N training samples', int)
    .option('--test-limit <n>', 'use only the first N test samples', int)
    .option('--checkpoint-every <n>', 'checkpoint to the store every N steps', int)
    .option('--no-follow', 'start the run and return without waiting')
    .option('--json', 'print the result as JSON')
    .action(async (flags: TrainFlags) => {
      const spec = specFromFlags(flags);
      const e = endpoints();
      const client = await connectClient(e);
      try {
        const run = await startOrAttachTrain(client, spec);
        process.stderr.write(`${run.started ? 'started' : 'attached to'} ${run.workflowId}\n`);
        if (e.temporal.uiUrl) {
          process.stderr.write(`  ${e.temporal.uiUrl}/namespaces/${e.temporal.namespace}/workflows/${run.workflowId}\n`);
        }
        if (!flags.follow) return;
        const result = await followTrain(client, run.handle);
        process.stdout.write(
          flags.json
            ? `${JSON.stringify({ workflowId: run.workflowId, ...result }, null, 2)}\n`
            : `${describeResult(result, run.workflowId, e.temporal.uiUrl, e.temporal.namespace)}\n`,
        );
      } finally {
        await client.connection.close();
      }
    });
}
