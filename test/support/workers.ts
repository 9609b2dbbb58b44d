// The light and compute workers a workflow test runs against: real worker processes (as `lth worker` starts
// them) on the test's stack, on WASM so that results do not depend on which native build a machine has.
import type { Client } from '@temporalio/client';

import { endpointsToEnv, type StackEndpoints } from '../../infra/stack';
import { connectClient } from '../../workers/connection';
import { spawnWorker, stopWorker } from '../../workers/spawn';

export interface TestWorkers {
  client: Client;
  /** Closes the client and stops both workers (they drain first). */
  stop: () => Promise<void>;
}

export async function startTestWorkers(
  e: StackEndpoints,
  env: Record<string, string> = {},
): Promise<TestWorkers> {
  const workerEnv = { ...endpointsToEnv(e), LTH_BACKEND: 'wasm', LTH_PROGRESS_INTERVAL_MS: '200', ...env };
  const workers = [spawnWorker('light', { env: workerEnv }), spawnWorker('compute', { env: workerEnv })];
  const stopAll = () => Promise.all(workers.map((w) => stopWorker(w, 20_000))).then(() => undefined);
  try {
    await Promise.all(workers.map((w) => w.ready));
    const client = await connectClient(e);
    return {
      client,
      stop: async () => {
        await client.connection.close();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
