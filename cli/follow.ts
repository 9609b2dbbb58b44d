// Follows a training run: a progress bar fed by the workflow's status query, then the result.
import type { Client, WorkflowHandle } from '@temporalio/client';
import cliProgress from 'cli-progress';

import type { trainWorkflow } from '../workflows/train';
import type { TrainRunResult, TrainStatus } from '../workflows/train-types';
import { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE, pollerCount } from './runs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? '-' : x.toFixed(digits);
}

export async function followTrain(
  client: Client,
  handle: WorkflowHandle<typeof trainWorkflow>,
  opts: { pollMs?: number; out?: NodeJS.WriteStream } = {},
): Promise<TrainRunResult> {
  const out = opts.out ?? process.stderr;
  const bar = new cliProgress.SingleBar(
    {
      format:
        ' {bar} {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | test acc {acc} | {phase}',
      hideCursor: true,
      stream: out,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let warnedNoWorker = false;
  const resultPromise = handle.result();
  let done = false;
  void resultPromise.finally(() => {
    done = true;
  });
  try {
    while (!done) {
      let status: TrainStatus | null = null;
      try {
        status = await handle.query<TrainStatus>('status');
      } catch {
        // No workflow worker has picked the run up yet: the query has nobody to answer it.
      }
      const p = status?.progress ?? null;
      if (p) {
        const payload = {
          epoch: p.epoch.toFixed(2),
          loss: fmt(p.loss),
          acc: fmt(p.testAccuracy),
          phase: status?.phase ?? '',
        };
        if (!started) {
          bar.start(p.totalSteps, p.step, payload);
          started = true;
        } else {
          bar.setTotal(p.totalSteps);
          bar.update(p.step, payload);
        }
      } else if (!warnedNoWorker) {
        const [light, compute] = await Promise.all([
          pollerCount(client, LIGHT_TASK_QUEUE, 'workflow').catch(() => -1),
          pollerCount(client, COMPUTE_TASK_QUEUE, 'activity').catch(() => -1),
        ]);
        if (light === 0 || compute === 0) {
          out.write(
            `waiting: no ${light === 0 ? 'light' : 'compute'} worker is polling; start workers with \`lth worker\`\n`,
          );
          warnedNoWorker = true;
        }
      }
      await Promise.race([sleep(opts.pollMs ?? 1000), resultPromise.catch(() => undefined)]);
    }
    const result = await resultPromise;
    if (started) bar.update(result.steps, { phase: 'done', acc: fmt(result.final.testAccuracy) });
    return result;
  } finally {
    if (started) bar.stop();
  }
}

export function describeResult(
  result: TrainRunResult,
  workflowId: string,
  uiUrl: string | null,
  namespace: string,
): string {
  const lines = [
    `run ${result.runId}${result.reused ? ' (already finished; stored result reused)' : ''}`,
    `  backend          ${result.backend}`,
    `  steps            ${result.steps}${result.resumedFromStep > 0 && !result.reused ? ` (resumed from step ${result.resumedFromStep})` : ''}`,
    `  test accuracy    ${(result.final.testAccuracy * 100).toFixed(2)}%`,
    `  test loss        ${result.final.testLoss.toFixed(4)}`,
    `  train loss       ${result.final.trainLoss.toFixed(4)} (accuracy ${(result.final.trainAccuracy * 100).toFixed(2)}%)`,
    `  weights          ${result.weights.key}`,
    `                   sha256 ${result.weights.sha256}`,
    `  metrics          ${result.metricsKey}`,
    `  manifest         ${result.manifestKey}`,
  ];
  if (uiUrl)
    lines.push(
      `  Temporal UI      ${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`,
    );
  return lines.join('\n');
}
