// The light and compute workers a workflow test runs against: real worker processes (as `lth worker` starts
// them) on the test's stack, on WASM so that results do not depend on which native build a machine has.
import type { Client } from '@temporalio/client';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { endpointsToEnv, type StackEndpoints } from '../../infra/endpoints';
import type { NamedTensors } from '../../ml/host-tensor';
import { checkpointPrefix, parseCheckpointStep, type ArtifactStore, type ObjectRef } from '../../store';
import { connectClient, openStore } from '../../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../../workers/spawn';

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

/**
 * Starts the workers before the file's tests and stops them after; `client` is usable inside tests and hooks
 * that run after the first `before`.
 */
export function useTestWorkers(
  e: StackEndpoints,
  env: Record<string, string> = {},
): { readonly client: Client } {
  let running: TestWorkers | null = null;
  before(async () => {
    running = await startTestWorkers(e, env);
  });
  after(async () => {
    await running?.stop();
  });
  return {
    get client(): Client {
      if (!running) throw new Error('the test workers are not started yet (use the client inside a test)');
      return running.client;
    },
  };
}

export interface FaultInjection {
  readonly client: Client;
  readonly store: ArtifactStore;
  /** A compute worker the test may kill; whatever is still running is stopped after the file's tests. */
  spawnCompute: () => SpawnedWorker;
  /** Stops every compute worker started so far (so that the next case owns the compute queue). */
  stopCompute: () => Promise<void>;
  /** Resolves once the training run has a checkpoint at step `atLeast` or later; fails after three minutes. */
  waitForCheckpoint: (runId: string, atLeast: number) => Promise<void>;
  /** Asserts that the stored weights are, tensor for tensor, the bytes of `reference`. */
  assertSameWeights: (stored: ObjectRef, reference: NamedTensors, what: string) => Promise<void>;
}

/**
 * What the fault-injection tests share: a client, the store, one light worker for the whole file, compute
 * workers the tests start and kill themselves, and the workers' backend (WASM unless extraEnv's LTH_BACKEND says
 * tensorflow) in this process for the reference computations.
 */
export function useFaultInjection(
  e: StackEndpoints,
  progressIntervalMs: number,
  extraEnv: Record<string, string> = {},
): FaultInjection {
  const env = {
    ...endpointsToEnv(e),
    LTH_BACKEND: 'wasm',
    LTH_PROGRESS_INTERVAL_MS: String(progressIntervalMs),
    ...extraEnv,
  };
  const workers: SpawnedWorker[] = [];
  let client: Client | null = null;
  const store = openStore(e);
  before(async () => {
    client = await connectClient(e);
    // Loaded here so that the workflow tests using useTestWorkers do not load the ML backends.
    const { selectBackend } = await import('../../ml/backend.js');
    // The reference computations run on the workers' backend and threads (WASM unless the test asks otherwise).
    const threads = extraEnv.LTH_THREADS ? Number(extraEnv.LTH_THREADS) : undefined;
    await selectBackend({
      prefer: extraEnv.LTH_BACKEND === 'tensorflow' ? 'tensorflow' : 'wasm',
      ...(threads ? { threads } : {}),
      log: () => {},
    });
    const light = spawnWorker('light', { env });
    workers.push(light);
    await light.ready;
  });
  after(async () => {
    await client?.connection.close();
    await Promise.all(workers.map((w) => stopWorker(w, 20_000)));
  });
  return {
    get client(): Client {
      if (!client) throw new Error('the client is not connected yet (use it inside a test)');
      return client;
    },
    store,
    spawnCompute: () => {
      const w = spawnWorker('compute', { env });
      workers.push(w);
      return w;
    },
    stopCompute: async () => {
      await Promise.all(workers.filter((w) => w.role === 'compute').map((w) => stopWorker(w, 20_000)));
    },
    waitForCheckpoint: async (runId, atLeast) => {
      const deadline = Date.now() + 180_000;
      for (;;) {
        const steps = (await store.list(checkpointPrefix(runId))).map((o) => parseCheckpointStep(o.key) ?? 0);
        if (steps.some((s) => s >= atLeast)) return;
        assert.ok(Date.now() < deadline, `no checkpoint at step >= ${atLeast} within three minutes`);
        await sleep(20);
      }
    },
    assertSameWeights: async (ref, reference, what) => {
      const stored = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
      assert.deepEqual(Object.keys(stored.tensors).sort(), Object.keys(reference).sort(), what);
      for (const [name, want] of Object.entries(reference)) {
        const got = stored.tensors[name];
        assert.ok(got, `${what}: ${name} is missing`);
        const a = Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength);
        const b = Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength);
        assert.ok(a.equals(b), `${what}: ${name} differs from the undisturbed run`);
      }
    },
  };
}
