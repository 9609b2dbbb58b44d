// `lth demo`: the whole system in one command — stack up, workers started, a small lottery-ticket experiment
// (LeNet-300-100 on MNIST: IMP levels 0..4, then a reinit control) followed live, its report written and the
// UI links printed. `lth demo --train` runs the earlier demo instead: one training run, followed with a bar.
import path from 'node:path';

import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';

import { stackUp } from '../../infra/embedded-stack';
import {
  endpointsToEnv,
  resolveEndpoints,
  stackOptionsFromEnv,
  type StackEndpoints,
} from '../../infra/endpoints';
import { connectClient } from '../../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../../workers/spawn';
import { parseLotterySpec, type LotterySpec } from '../../contract/lottery';
import { type LotteryResult } from '../../contract/lottery';
import { parseTrainSpec } from '../../contract/train';
import { describeResult, followTrain } from '../follow';
import { formatReportTable } from '../../report/table';
import { startOrAttachLottery, startOrAttachTrain } from '../../client/runs';
import { int, num } from '../spec-flags';
import { announceLottery, followLottery, workflowLink } from './lottery';
import { describeWrittenReport, readReport, writeReport, type ReportData } from './report';

export const DEMO_EXPERIMENT = 'demo';

interface DemoFlags {
  train: boolean;
  epochs?: number;
  levels?: number;
  seed: number;
  backend?: string;
}

const positive =
  (parse: (v: string) => number) =>
  (v: string): number => {
    const n = parse(v);
    if (n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${v}"`);
    return n;
  };

/**
 * The demo's lottery-ticket experiment: LeNet-300-100 on full MNIST with open_lth's SGD (lr 0.1, no momentum,
 * batch 128), `epochs` per level, levels 0..`levels` of 20% global magnitude pruning, survivors rewound to their
 * initial values, and a random re-initialisation of the ticket as the control.
 */
export function demoLotterySpec(o: { epochs?: number; levels?: number; seed?: number } = {}): LotterySpec {
  return parseLotterySpec({
    experiment: DEMO_EXPERIMENT,
    train: {
      model: 'lenet-300-100',
      dataset: 'mnist',
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 },
      batchSize: 128,
      epochs: o.epochs ?? 1,
      evalEvery: 100,
      seed: o.seed ?? 0,
    },
    levels: o.levels ?? 4,
    pruning: { kind: 'global-magnitude', fraction: 0.2 },
    rewind: 'init',
    branches: [{ kind: 'reinit', seed: 1 }],
    checkpointEvery: 200,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The report of the experiment that just finished. Visibility may lag the result by a moment (a workflow still
 * listed as running, a branch not listed yet), so it is read again for a few seconds until it shows everything.
 */
async function readFinishedReport(
  client: Client,
  trunkId: string,
  result: LotteryResult,
): Promise<ReportData> {
  let data = await readReport(client, DEMO_EXPERIMENT, trunkId);
  const complete = (d: ReportData) =>
    !d.running &&
    (d.trunk.trunk?.levels.length ?? 0) >= result.levels.length &&
    result.branches.every((b) => d.trunk.branches.some((r) => r.label === b.label));
  for (let i = 0; i < 20 && !complete(data); i++) {
    await sleep(500);
    data = await readReport(client, DEMO_EXPERIMENT, trunkId);
  }
  return data;
}

async function runLotteryDemo(
  client: Client,
  e: StackEndpoints,
  o: DemoFlags,
  say: (line: string) => void,
): Promise<void> {
  const spec = demoLotterySpec(o);
  const run = await startOrAttachLottery(client, spec);
  say(
    `lottery-ticket experiment "${spec.experiment}": LeNet-300-100 on MNIST (60,000 train / 10,000 test images), ` +
      `IMP levels 0..${spec.levels}, then the reinit control`,
  );
  await announceLottery(client, e, run, spec, say);
  const result = await followLottery(client, run, spec);

  const data = await readFinishedReport(client, run.workflowId, result);
  const written = await writeReport(e, data, { format: 'png', metric: 'final', upload: true });
  const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
  process.stdout.write(
    `\n${formatReportTable(data.series)}\n${describeWrittenReport(written)}\n` +
      `  trunk workflow   ${run.workflowId}\n` +
      (link ? `  Temporal UI      ${link}\n` : '') +
      `  levels           experiments/${result.lineageId}/ in bucket ${e.s3.bucket}\n` +
      (e.s3.consoleUrl ? `  MinIO console    ${e.s3.consoleUrl} (user ${e.s3.accessKey})\n` : '') +
      `  look again       npm run lth -- status ${spec.experiment}; npm run lth -- report ${spec.experiment}\n`,
  );
}

async function runTrainDemo(
  client: Client,
  e: StackEndpoints,
  o: DemoFlags,
  say: (line: string) => void,
): Promise<void> {
  const spec = parseTrainSpec({
    experiment: DEMO_EXPERIMENT,
    train: {
      model: 'lenet-300-100',
      dataset: 'mnist',
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      batchSize: 128,
      epochs: o.epochs ?? 2,
      evalEvery: 100,
      seed: o.seed,
    },
    checkpointEvery: 100,
  });
  const run = await startOrAttachTrain(client, spec);
  say(`${run.started ? 'started' : 'attached to'} workflow ${run.workflowId}`);
  say('training LeNet-300-100 on MNIST (60,000 train / 10,000 test images)');
  const result = await followTrain(client, run.handle);
  process.stdout.write(
    `\n${describeResult(result, run.workflowId, e.temporal.uiUrl, e.temporal.namespace)}\n`,
  );
  if (e.s3.consoleUrl)
    process.stdout.write(`  MinIO console    ${e.s3.consoleUrl} (user ${e.s3.accessKey})\n`);
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'bring the embedded stack up, start workers and run a small lottery-ticket experiment ' +
        '(LeNet-300-100 on MNIST, IMP levels 0..4 and a reinit control), then write its report',
    )
    .option(
      '--epochs <n>',
      'epochs of full MNIST per level, default 1 (with --train: of the one run, default 2)',
      positive(num),
    )
    .option('--levels <n>', 'pruning levels after the dense level 0 (default 4)', positive(int))
    .option('--seed <n>', 'seed for init and data order', int, 0)
    .option('--backend <name>', 'compute backend of the compute worker (default: best available)')
    .option('--train', 'run the earlier demo instead: a single training run, no pruning', false)
    .action(async (o: DemoFlags) => {
      if (o.train && o.levels !== undefined) throw new Error('--levels is for the lottery demo, not --train');
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
        await (o.train ? runTrainDemo : runLotteryDemo)(client, e, o, say);
        if (!external) {
          process.stdout.write(
            '\nThe stack keeps running so you can browse the UI; stop it with `npm run lth -- down`.\n',
          );
        }
      } finally {
        await client.connection.close();
        await Promise.all(workers.map((w) => stopWorker(w)));
      }
    });
}
