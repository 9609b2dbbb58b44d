// Follows a training run: a progress bar fed by the workflow's status query, then the result.
import type { Client, WorkflowHandle } from '@temporalio/client';
import cliProgress from 'cli-progress';

import type { trainWorkflow } from '../workflows/train';
import type { TrainProgressUpdate, TrainRunResult } from '../contract/train';
import { pollerCount } from '../client/runs';
import { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { inWorkflow } from './failure-text';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? '-' : x.toFixed(digits);
}

/** Where a progress bar stands: position, total and the values its format names. */
export interface BarPosition {
  value: number;
  total: number;
  payload: Record<string, string | number>;
}

export interface BarFollow<S, R> {
  /** cli-progress format string. */
  format: string;
  /** The bar's position from a `status` answer, or null when there is nothing to show yet. */
  position: (status: S) => BarPosition | null;
  /** The bar's last position, from the result. */
  final: (result: R) => BarPosition;
  /** Draw the final bar even if no status was ever shown (a run that was already done). */
  showFinalIfNeverStarted: boolean;
  /** Called at a poll that had nothing to show (e.g. to say that no worker is polling). */
  idle?: () => Promise<void>;
}

/**
 * A progress bar fed by a workflow's `status` query every `pollMs` until the workflow ends, then its result.
 * Query failures (no worker has picked the workflow up yet, so nobody answers) just leave the bar as it is.
 */
export async function followWithBar<S, R>(
  handle: { query: (name: string) => Promise<unknown>; result: () => Promise<R> },
  follow: BarFollow<S, R>,
  opts: { pollMs?: number; out?: NodeJS.WriteStream } = {},
): Promise<R> {
  const bar = new cliProgress.SingleBar(
    {
      format: follow.format,
      hideCursor: true,
      stream: opts.out ?? process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const show = (p: BarPosition): void => {
    if (!started) {
      bar.start(p.total, p.value, p.payload);
      started = true;
    } else {
      bar.setTotal(p.total);
      bar.update(p.value, p.payload);
    }
  };
  // A failure names its workflow when the handle knows it (cli/failure-text.ts prints the cause chain).
  const workflowId = (handle as { workflowId?: unknown }).workflowId;
  const resultPromise = handle.result().catch((err: unknown) => {
    throw typeof workflowId === 'string' ? inWorkflow(err, workflowId) : err;
  });
  let done = false;
  void resultPromise.finally(() => {
    done = true;
  });
  try {
    while (!done) {
      const status = (await handle.query('status').catch(() => null)) as S | null;
      const p = status === null ? null : follow.position(status);
      if (p) show(p);
      else await follow.idle?.();
      await Promise.race([sleep(opts.pollMs ?? 1000), resultPromise.catch(() => undefined)]);
    }
    const result = await resultPromise;
    if (started || follow.showFinalIfNeverStarted) show(follow.final(result));
    return result;
  } finally {
    if (started) bar.stop();
  }
}

/** A workflow that trains one network: its status has a phase and the training's progress (train, distill). */
interface TrainingStatus {
  phase: string;
  progress: TrainProgressUpdate | null;
}

export async function followTrain<R extends TrainRunResult = TrainRunResult>(
  client: Client,
  handle:
    | WorkflowHandle<typeof trainWorkflow>
    | { query: (name: string) => Promise<unknown>; result: () => Promise<R> },
  opts: { pollMs?: number; out?: NodeJS.WriteStream } = {},
): Promise<R> {
  const out = opts.out ?? process.stderr;
  let warnedNoWorker = false;
  let lastPayload: BarPosition['payload'] = {};
  return followWithBar<TrainingStatus, R>(
    handle as { query: (name: string) => Promise<unknown>; result: () => Promise<R> },
    {
      format:
        ' {bar} {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | test acc {acc} | {phase}',
      position: (status) => {
        const p = status.progress;
        if (!p) return null;
        lastPayload = {
          epoch: p.epoch.toFixed(2),
          loss: fmt(p.loss),
          acc: fmt(p.testAccuracy),
          phase: status.phase,
        };
        return { value: p.step, total: p.totalSteps, payload: lastPayload };
      },
      final: (result) => ({
        value: result.steps,
        total: result.steps,
        payload: { ...lastPayload, phase: 'done', acc: fmt(result.final.testAccuracy) },
      }),
      showFinalIfNeverStarted: false,
      idle: async () => {
        if (warnedNoWorker) return;
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
      },
    },
    opts,
  );
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
