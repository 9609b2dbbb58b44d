// The store of finished training runs: runs/<runId>/ holds the final weights, metrics.json and, last, the manifest
// whose `result` is the run's record. `lth train`, an IMP level 0 and a logit precompute's teacher all find a run
// here by its id (contract/ids.ts trainRunId), so one training config is trained once.
import { z } from 'zod';

import { jsonSafe } from '../contract/stored-numbers';
import { trainRunRecordSchema, type TrainRunRecord } from '../contract/train';
import type { TrainConfig } from '../ml/train';
import { finalWeightsKey, runManifestKey, runMetricsKey, type ArtifactStore } from '../store';
import type { DurableTrainingOutcome } from './durable-training';
import { damagedKey, engineFamilyOf, requireReproducible } from './heal';

const runManifestSchema = z.object({
  kind: z.literal('train-run'),
  runId: z.string(),
  result: trainRunRecordSchema,
});

/** Writes a finished run: final weights, metrics.json, and the manifest last. */
export async function publishTrainRun(
  store: ArtifactStore,
  runId: string,
  about: { spec: unknown; config: TrainConfig },
  outcome: Pick<DurableTrainingOutcome, 'result' | 'backend'>,
): Promise<TrainRunRecord> {
  const { result, backend } = outcome;
  const weights = await store.putTensors(finalWeightsKey(runId), result.state.weights, {
    runId,
    step: String(result.state.step),
    model: about.config.model,
    backend,
  });
  const metricsRef = await store.putJson(
    runMetricsKey(runId),
    jsonSafe({
      runId,
      spec: about.spec,
      config: about.config,
      backend,
      final: result.final,
      evals: result.evals,
    }),
  );
  const record = {
    weights,
    metricsKey: metricsRef.key,
    backend,
    steps: result.state.step,
    final: result.final,
    evals: result.evals,
  };
  await store.publishManifest(runManifestKey(runId), {
    kind: 'train-run',
    runId,
    entries: [weights, metricsRef],
    result: jsonSafe(record),
  });
  return { runId, manifestKey: runManifestKey(runId), ...record };
}

/** The backend a run's manifest records, without verifying what it lists; null when unreadable or gone. */
export async function recordedRunBackend(store: ArtifactStore, runId: string): Promise<string | null> {
  try {
    return (await store.getJson(runManifestKey(runId), runManifestSchema)).result.backend;
  } catch {
    return null;
  }
}

/** Unpublishes a damaged run: its manifest (the run then reads as not finished), then the damaged object. */
export async function unpublishTrainRun(store: ArtifactStore, runId: string, damaged: string): Promise<void> {
  await store.remove(runManifestKey(runId));
  if (damaged !== runManifestKey(runId)) await store.remove(damaged);
}

/** The record of a finished run, or null when it has not finished. */
export async function readTrainRun(store: ArtifactStore, runId: string): Promise<TrainRunRecord | null> {
  const manifestKey = runManifestKey(runId);
  if (!(await store.exists(manifestKey))) return null;
  const manifest = runManifestSchema.parse(await store.readManifest(manifestKey));
  return { runId, manifestKey, ...manifest.result };
}

/**
 * The record of a finished run, or null when it must be trained: not finished, or damaged (an object it lists fails
 * verification or is gone). A damaged run is unpublished so that the caller trains it again, which gives its bytes
 * back only on the backend that trained it: elsewhere UnderivableError, naming the key. `what` names the run in
 * messages (`the dense run <id>`); `healing` hears the damaged key and why it is recomputed.
 */
export async function readOrHealTrainRun(
  store: ArtifactStore,
  runId: string,
  worker: {
    backend: string;
    what: string;
    /** Hears the damaged key, why it is recomputed, and the engine family the recomputation must use. */
    healing(key: string, why: string, engine: 'tape' | 'graph' | undefined): void;
  },
): Promise<TrainRunRecord | null> {
  try {
    return await readTrainRun(store, runId);
  } catch (err) {
    const key = damagedKey(err);
    if (key === null) throw err;
    const backend = await recordedRunBackend(store, runId);
    if (backend !== null) requireReproducible(worker.what, key, backend, worker.backend);
    await unpublishTrainRun(store, runId, key);
    worker.healing(
      key,
      `${worker.what} is damaged (${(err as Error).message})`,
      backend === null ? undefined : engineFamilyOf(backend),
    );
    return null;
  }
}
