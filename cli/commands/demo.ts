// `lth demo`: the whole system in one command — stack up, workers started, a small LeNet-300-100
// run on MNIST followed live, the result and the UI link printed.
import path from 'node:path';

import { Command } from 'commander';

import { endpointsToEnv, resolveEndpoints, stackOptionsFromEnv, stackUp } from '../../infra/stack';
import { connectClient } from '../../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../../workers/spawn';
import { parseTrainSpec } from '../../workflows/specs';
import { describeResult, followTrain } from '../follow';
import { startOrAttachTrain } from '../runs';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('bring the embedded stack up, start workers and run a small LeNet-300-100 training on MNIST')
    .option('--epochs <n>', 'epochs of full MNIST', (v) => Number(v), 2)
    .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 0)
    .option('--backend <name>', 'compute backend (default: best available)')
    .action(async (o: { epochs: number; seed: number; backend?: string }) => {
      const say = (msg: string) => process.stderr.write(`${msg}\n`);
      const external = Boolean(process.env.TEMPORAL_ADDRESS && process.env.S3_ENDPOINT);
      const opts = stackOptionsFromEnv();
      const e = external ? resolveEndpoints() : await stackUp(opts, say);
      const logDir = path.join(opts.home, 'logs');
      say(`starting workers (logs in ${logDir})`);
      const env = endpointsToEnv(e);
      const workers: SpawnedWorker[] = [
        spawnWorker('light', { env, logFile: path.join(logDir, 'light-worker.log') }),
        spawnWorker('compute', {
          env,
          args: o.backend ? ['--backend', o.backend] : [],
          logFile: path.join(logDir, 'compute-worker.log'),
        }),
      ];
      const client = await connectClient(e);
      try {
        await Promise.all(workers.map((w) => w.ready));
        const spec = parseTrainSpec({
          experiment: 'demo',
          train: {
            model: 'lenet-300-100',
            dataset: 'mnist',
            optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
            batchSize: 128,
            epochs: o.epochs,
            evalEvery: 100,
            seed: o.seed,
          },
          checkpointEvery: 100,
        });
        const run = await startOrAttachTrain(client, spec);
        say(`${run.started ? 'started' : 'attached to'} workflow ${run.workflowId}`);
        say('training LeNet-300-100 on MNIST (60,000 train / 10,000 test images)');
        const result = await followTrain(client, run.handle);
        process.stdout.write(`\n${describeResult(result, run.workflowId, e.temporal.uiUrl, e.temporal.namespace)}\n`);
        if (e.s3.consoleUrl) process.stdout.write(`  MinIO console    ${e.s3.consoleUrl} (user ${e.s3.accessKey})\n`);
        if (!external) process.stdout.write('\nThe stack keeps running so you can browse the UI; stop it with `npm run lth -- down`.\n');
      } finally {
        await client.connection.close();
        await Promise.all(workers.map((w) => stopWorker(w)));
      }
    });
}
