// Light worker: runs the workflows and the light activities (planning and bookkeeping: a sweep's trials and
// their outcomes, read through a client) on the light task queue.
import { Command } from 'commander';

import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { createLightActivities } from '../activities/light';
import { connectClient, connectWorker, endpoints, fatalText, waitForService } from './connection';
import { workerLog } from './log';
import { stopWithParent } from './parent-watch';
import { metricsBindAddress, prometheusTelemetry } from './metrics';

export async function runLightWorker(): Promise<void> {
  // Loaded when the worker runs, not when `lth` defines its commands.
  const { Runtime, Worker } = await import('@temporalio/worker');
  // Must precede any connection: the first one creates the runtime with default signal handling.
  const metricsAt = metricsBindAddress('light');
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(metricsAt ? { telemetryOptions: prometheusTelemetry(metricsAt) } : {}),
  });
  const log = workerLog('light');
  if (metricsAt) log(`metrics on http://${metricsAt}/metrics`);
  const e = endpoints();
  // A worker started before Temporal waits for it (visibly, for a bounded time) instead of failing at once.
  const connection = await waitForService('Temporal', e.temporal.address, () => connectWorker(e), log);
  const client = await connectClient(e);
  const worker = await Worker.create({
    connection,
    namespace: e.temporal.namespace,
    taskQueue: LIGHT_TASK_QUEUE,
    workflowsPath: require.resolve('../workflows'),
    activities: createLightActivities({ client }),
  });
  log(`ready on ${e.temporal.address} queue=${LIGHT_TASK_QUEUE} pid=${process.pid}`);
  const unwatch = stopWithParent(() => worker.shutdown(), log);
  try {
    await worker.run();
  } finally {
    unwatch();
    await client.connection.close();
    await connection.close();
    log('stopped');
  }
}

export function lightWorkerCommand(): Command {
  return new Command('light').description('run a light worker (workflows)').action(async () => {
    await runLightWorker();
  });
}

if (require.main === module) {
  lightWorkerCommand()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`light worker: ${fatalText(err)}\n`);
      process.exit(1);
    });
}
