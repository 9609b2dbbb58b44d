// The `train` activity: one durable training run (see durable-training.ts) from the model's seeded
// initialisation, published under runs/<runId>/ with its manifest last.
import { z } from 'zod';

import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { epochsToIterations, type TrainConfig } from '../ml/train';
import { ArtifactStore, contentHash, finalWeightsKey, runManifestKey, runMetricsKey } from '../store';
import { parseTrainSpec, type TrainConfigSpec, type TrainSpec } from '../workflows/specs';
import type { ArtifactRef, TrainActivityInput, TrainRunResult } from '../workflows/train-types';
import {
  runDurableTraining,
  toActivityFailure,
  type DurableTrainingDeps,
  type DurableTrainingOutcome,
} from './durable-training';

export type TrainActivityDeps = DurableTrainingDeps;

const manifestSchema = z.object({
  kind: z.literal('train-run'),
  runId: z.string(),
  result: z.object({
    weights: z.object({ key: z.string(), sha256: z.string(), bytes: z.number() }),
    metricsKey: z.string(),
    backend: z.string(),
    steps: z.number(),
    final: z.object({
      testAccuracy: z.number(),
      testLoss: z.number(),
      trainLoss: z.number(),
      trainAccuracy: z.number(),
    }),
    evals: z.array(z.object({ step: z.number(), testAccuracy: z.number(), testLoss: z.number() })),
  }),
});

/** Identity of a training run's artifacts: the hash of everything that determines its result. */
export function trainRunId(config: TrainConfigSpec): string {
  return contentHash({ kind: 'train', config }).slice(0, 24);
}

export function toMlConfig(config: TrainConfigSpec, trainSize: number): TrainConfig {
  const iterations = config.iterations ?? epochsToIterations(config.epochs ?? 1, trainSize, config.batchSize);
  return {
    model: config.model,
    dataset: config.dataset,
    optimizer: config.optimizer,
    batchSize: config.batchSize,
    iterations,
    evalEvery: config.evalEvery,
    seed: config.seed,
    trainLimit: config.trainLimit,
    testLimit: config.testLimit,
  };
}

export function createTrainActivities(deps: TrainActivityDeps) {
  async function reuseFinished(runId: string): Promise<TrainRunResult | null> {
    const stored = await readTrainRun(deps.store, runId);
    return stored ? { ...stored, reused: true, resumedFromStep: stored.steps } : null;
  }

  async function runTraining(input: TrainActivityInput): Promise<TrainRunResult> {
    const spec: TrainSpec = parseTrainSpec(input.spec);
    const runId = trainRunId(spec.train);
    await deps.store.ensureBucket();

    const finished = await reuseFinished(runId);
    if (finished) {
      deps.log(`run ${runId} already finished; returning its stored result`);
      return finished;
    }
    const trainData = loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit });
    const testData = loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit });
    const config = toMlConfig(spec.train, trainData.n);
    const outcome = await runDurableTraining(deps, {
      runId,
      config,
      data: { train: trainData, test: testData },
      start: { weights: getModel(config.model).init(config.seed) },
      checkpointEvery: spec.checkpointEvery,
      progress: input.progressWorkflowId
        ? { workflowId: input.progressWorkflowId, signal: 'trainProgress' }
        : null,
    });
    const published = await publishTrainRun(deps.store, runId, { spec, config }, outcome);
    await outcome.removeCheckpoints();
    return { ...published, reused: false, resumedFromStep: outcome.resumedFromStep };
  }

  return {
    async train(input: TrainActivityInput): Promise<TrainRunResult> {
      try {
        return await runTraining(input);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}

/**
 * Writes a finished run under runs/<runId>/: final weights, metrics.json, and the manifest last. A later run
 * of the same training config (from `lth train` or an IMP level 0) finds the manifest and reuses the result.
 */
export async function publishTrainRun(
  store: ArtifactStore,
  runId: string,
  about: { spec: unknown; config: TrainConfig },
  outcome: Pick<DurableTrainingOutcome, 'result' | 'backend'>,
): Promise<Omit<TrainRunResult, 'reused' | 'resumedFromStep'>> {
  const { result, backend } = outcome;
  const weights: ArtifactRef = await store.putTensors(finalWeightsKey(runId), result.state.weights, {
    runId,
    step: String(result.state.step),
    model: about.config.model,
    backend,
  });
  const metricsRef = await store.putJson(runMetricsKey(runId), {
    runId,
    spec: about.spec,
    config: about.config,
    backend,
    final: result.final,
    evals: result.evals,
  });
  const runResult = {
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
    result: runResult,
  });
  return { runId, manifestKey: runManifestKey(runId), ...runResult };
}

/** The stored result of a finished run, or null when it has not finished. */
export async function readTrainRun(
  store: ArtifactStore,
  runId: string,
): Promise<Omit<TrainRunResult, 'reused' | 'resumedFromStep'> | null> {
  const manifestKey = runManifestKey(runId);
  if (!(await store.exists(manifestKey))) return null;
  const manifest = manifestSchema.parse(await store.readManifest(manifestKey));
  return { runId, manifestKey, ...manifest.result };
}
