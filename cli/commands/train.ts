import { Command } from 'commander';

import { connectClient, endpoints } from '../../workers/connection';
import { parseTrainSpec, type TrainSpec } from '../../contract/train';
import { describeResult, followTrain } from '../follow';
import { startOrAttachTrain } from '../../client/runs';
import { readSpecFile } from '../spec-file';
import { addTrainOptions, applyTrainFlags, int, type TrainFieldFlags } from '../spec-flags';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

interface TrainFlags extends TrainFieldFlags, RerunFlag {
  config?: string;
  experiment?: string;
  checkpointEvery?: number;
  follow: boolean;
  json?: boolean;
}

/** Flags override the config file, field by field. */
export function specFromFlags(flags: Omit<TrainFlags, 'follow' | 'json' | 'rerun'>): TrainSpec {
  const base = flags.config ? readSpecFile(flags.config) : {};
  const train = applyTrainFlags(base.train, flags);
  if (train.iterations === undefined && train.epochs === undefined) train.epochs = 1;
  const spec: Record<string, unknown> = { ...base, train };
  if (flags.experiment !== undefined) spec.experiment = flags.experiment;
  if (flags.checkpointEvery !== undefined) spec.checkpointEvery = flags.checkpointEvery;
  return parseTrainSpec(spec);
}

export function registerTrainCommand(program: Command): void {
  configureTrainCommand(
    program.command('train').description('start (or attach to) a durable training run and follow it'),
  );
}

/**
 * The options and action of `lth train`, on any command: `lth teachers train` is the same command (a teacher is
 * an ordinary training run; its finished run's weights are what `lth teachers precompute` uses).
 */
export function configureTrainCommand(command: Command): Command {
  const cmd = command
    .option('-c, --config <file>', 'training spec, JSON or YAML')
    .option('-e, --experiment <name>', 'experiment label (search attribute Experiment)');
  addTrainOptions(cmd)
    .option('--checkpoint-every <n>', 'checkpoint to the store every N steps', int)
    .option('--no-follow', 'start the run and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(async (flags: TrainFlags) => {
      const spec = specFromFlags(flags);
      const e = endpoints();
      const client = await connectClient(e);
      try {
        const run = await startOrAttachTrain(client, spec, startOptions(flags));
        process.stderr.write(`${startedText(run, flags)} ${run.workflowId}\n`);
        if (e.temporal.uiUrl) {
          process.stderr.write(
            `  ${e.temporal.uiUrl}/namespaces/${e.temporal.namespace}/workflows/${run.workflowId}\n`,
          );
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
  return cmd;
}
