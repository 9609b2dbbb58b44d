// The store of finished training runs: runs/<runId>/ holds the final weights, metrics.json and, last, the manifest
// whose `result` is the run's record. `lth train`, an IMP level 0 and a logit precompute's teacher all find a run
// here by its id (contract/ids.ts trainRunId), so one training config is trained once.
import { z } from 'zod';

import { jsonSafe } from '../contract/stored-numbers';
import { trainRunRecordSchema, type TrainRunRecord } from '../contract/train';
import type { TrainConfig } from '../ml/train';
import { finalWeightsKey, runManifestKey, runMetricsKey, type ArtifactStore } from '../store';
import type { DurableTrainingOutcome } from './durable-training';

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
