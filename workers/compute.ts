// Compute worker: runs heavy activities on the compute task queue, one slot per device by default.
// Usage: node --import tsx workers/compute.ts [--backend NAME] [--threads N] [--slots N]
import { Command, Option } from 'commander';
import { z } from 'zod';

import type { BackendName } from '../ml/backend';
import { COMPUTE_TASK_QUEUE } from '../contract/task-queues';
import { connectClient, connectWorker, endpoints, fatalText, openStore, waitForService } from './connection';
import { workerLog } from './log';
import { stopWithParent } from './parent-watch';
import { withMemoryLog } from './memory-log';
import { activityMetrics, instrumentedStore, metricsBindAddress, prometheusTelemetry } from './metrics';

export interface ComputeWorkerOptions {
  backend?: BackendName | 'auto';
  threads?: number;
  slots: number;
  /** Seconds a shutting-down worker lets running activities go on before cancelling them. */
  graceSeconds: number;
}

const workerEnvSchema = z.object({
  LTH_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(5_000),
  LTH_KEEP_CHECKPOINTS: z.coerce.number().int().min(1).default(2),
  /** Seconds between checkpoints of a geometry measure's partial state. */
  LTH_ANALYSIS_CHECKPOINT_SECONDS: z.coerce.number().min(0).default(30),
});

function workerEnv(): z.infer<typeof workerEnvSchema> {
  const parsed = workerEnvSchema.safeParse(process.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`environment variable ${String(issue?.path[0])}: ${issue?.message}`);
  }
  return parsed.data;
}

export async function runComputeWorker(opts: ComputeWorkerOptions): Promise<void> {
  // Loaded when a worker runs, not when `lth` defines its commands: together they cost every CLI call ~1 s.
  const [
    { Runtime, Worker },
    { createActivities },
    { selectBackend, tensorMemory },
    { storeGiveUpAttemptsFromEnv },
  ] = await Promise.all([
    import('@temporalio/worker'),
    import('../activities/index.js'),
    import('../ml/backend.js'),
    import('../activities/store-give-up.js'),
  ]);
  // Must precede any connection: the first one creates the runtime with default signal handling.
  const metricsAt = metricsBindAddress('compute');
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(metricsAt ? { telemetryOptions: prometheusTelemetry(metricsAt) } : {}),
  });
  const meter = metricsAt ? Runtime.instance().metricMeter : null;
  const log = workerLog('compute');
  if (metricsAt) log(`metrics on http://${metricsAt}/metrics`);
  const env = workerEnv();
  // Read again by the activities when a store fails; checked here so that a bad value stops the worker at start.
  storeGiveUpAttemptsFromEnv();
  const backend = await selectBackend({ prefer: opts.backend, threads: opts.threads, log });
  const backendLabel = `${backend.name}${backend.threads ? `/${backend.threads}t` : ''}`;
  const e = endpoints();
  const plainStore = openStore(e, { log });
  const store = meter ? instrumentedStore(plainStore, meter) : plainStore;
  // A worker started before its services waits for them (visibly, for a bounded time) instead of failing at once.
  await waitForService('the S3 store', plainStore.endpoint, () => store.ensureBucket(), log);
  const client = await waitForService('Temporal', e.temporal.address, () => connectClient(e), log);
  // On SIGTERM (preemption notice) running trainings checkpoint at their next batch and hand the
  // activity back for a retry, instead of waiting out the grace period and losing an interval.
  let draining = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      draining = true;
      log(`${sig}: draining (checkpointing running trainings, then stopping)`);
    });
  }
  const connection = await waitForService('Temporal', e.temporal.address, () => connectWorker(e), log);
  const worker = await Worker.create({
    connection,
    namespace: e.temporal.namespace,
    taskQueue: COMPUTE_TASK_QUEUE,
    activities: withMemoryLog(
      createActivities({
        store,
        client,
        backend: backendLabel,
        log,
        draining: () => draining,
        progressIntervalMs: env.LTH_PROGRESS_INTERVAL_MS,
        keepCheckpoints: env.LTH_KEEP_CHECKPOINTS,
        analysisCheckpointSeconds: env.LTH_ANALYSIS_CHECKPOINT_SECONDS,
        ...(meter ? { metrics: activityMetrics(meter) } : {}),
      }),
      { tensors: tensorMemory },
      log,
    ),
    maxConcurrentActivityTaskExecutions: opts.slots,
    shutdownGraceTime: `${opts.graceSeconds} seconds`,
  });
  log(
    `ready on ${e.temporal.address} queue=${COMPUTE_TASK_QUEUE} backend=${backendLabel} slots=${opts.slots} pid=${process.pid}`,
  );
  const unwatch = stopWithParent(() => worker.shutdown(), log);
  try {
    await worker.run();
  } finally {
    unwatch();
    await connection.close();
    await client.connection.close();
    log('stopped');
  }
}

export function computeWorkerCommand(): Command {
  return new Command('compute')
    .description('run a compute worker (heavy ML activities)')
    .addOption(
      new Option('--backend <name>', 'backend').choices([
        'auto',
        'tensorflow-gpu',
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .option(
      '--threads <n>',
      "threads: WASM's pool, native TensorFlow's intra-op pool (whose results depend on it)",
      (v) => Number.parseInt(v, 10),
    )
    .option('--slots <n>', 'concurrent activities', (v) => Number.parseInt(v, 10), 1)
    .option('--grace <seconds>', 'shutdown grace period', (v) => Number.parseInt(v, 10), 60)
    .action(async (o: { backend?: BackendName | 'auto'; threads?: number; slots: number; grace: number }) => {
      await runComputeWorker({
        backend: o.backend,
        threads: o.threads,
        slots: o.slots,
        graceSeconds: o.grace,
      });
    });
}

if (require.main === module) {
  computeWorkerCommand()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`compute worker: ${fatalText(err)}\n`);
      process.exit(1);
    });
}
