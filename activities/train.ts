// The `train` activity: a thin adapter between the durable world (Temporal, the store) and ml/.
// It resumes from the newest intact checkpoint, checkpoints every N steps before heartbeating
// the checkpoint key, and publishes the run's manifest last.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { z } from 'zod';

import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import {
  epochsToIterations,
  stateFromTensors,
  stateToTensors,
  train,
  TrainingStoppedError,
  type TrainConfig,
  type TrainState,
} from '../ml/train';
import {
  ArtifactStore,
  IntegrityError,
  checkpointKey,
  checkpointPrefix,
  contentHash,
  finalWeightsKey,
  parseCheckpointStep,
  runManifestKey,
  runMetricsKey,
} from '../store';
import { parseTrainSpec, SpecError, type TrainConfigSpec, type TrainSpec } from '../workflows/specs';
import type {
  ArtifactRef,
  TrainActivityInput,
  TrainProgressUpdate,
  TrainRunResult,
} from '../workflows/train-types';

export interface TrainActivityDeps {
  store: ArtifactStore;
  /** Used to signal progress to the owning workflow; null disables progress signals. */
  client: Client | null;
  backend: string;
  log: (msg: string) => void;
  /** Minimum milliseconds between progress signals (each one is a history event). */
  progressIntervalMs?: number;
  /** True once the worker was asked to stop: running trainings checkpoint and hand over. */
  draining?: () => boolean;
  /** How many recent checkpoints to keep per run; older ones are deleted once superseded. */
  keepCheckpoints?: number;
}

const checkpointRefSchema = z.object({
  key: z.string(),
  sha256: z.string(),
  bytes: z.number(),
  step: z.number().int(),
});
type CheckpointRef = z.infer<typeof checkpointRefSchema>;

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

function asNonRetryable(err: unknown): unknown {
  if (err instanceof TrainingStoppedError) {
    // Retryable on purpose: the next attempt, on any worker, resumes from this checkpoint.
    return ApplicationFailure.retryable(`compute worker is shutting down; ${err.message}`, 'WorkerDraining');
  }
  if (err instanceof SpecError) return ApplicationFailure.nonRetryable(err.message, 'SpecError');
  if (err instanceof Error && (err as { nonRetryable?: unknown }).nonRetryable === true) {
    return ApplicationFailure.nonRetryable(err.message, err.name);
  }
  return err;
}

export function createTrainActivities(deps: TrainActivityDeps) {
  const progressIntervalMs = deps.progressIntervalMs ?? 5_000;
  const keepCheckpoints = Math.max(1, deps.keepCheckpoints ?? 2);

  async function loadResumePoint(
    runId: string,
    hinted: CheckpointRef | null,
  ): Promise<{ state: TrainState; ref: CheckpointRef; backends: string[] } | null> {
    const listed = await deps.store.list(checkpointPrefix(runId));
    const candidates = new Map<string, number>();
    for (const { key } of listed) {
      const step = parseCheckpointStep(key);
      if (step !== null) candidates.set(key, step);
    }
    if (hinted) candidates.set(hinted.key, hinted.step);
    // Newest first; a checkpoint that fails verification is skipped, not trusted.
    const ordered = [...candidates.entries()].sort((a, b) => b[1] - a[1]);
    for (const [key, step] of ordered) {
      try {
        const { tensors, metadata, ref } = await deps.store.getTensors(key);
        const state = stateFromTensors(tensors, metadata);
        if (state.step !== step) throw new Error(`checkpoint ${key} holds step ${state.step}`);
        const backends = (metadata.backends ?? '').split(',').filter((b) => b.length > 0);
        return { state, ref: { ...ref, step }, backends };
      } catch (err) {
        if (err instanceof IntegrityError) {
          deps.log(`skipping corrupt checkpoint ${key}: ${err.message}`);
          continue;
        }
        throw err;
      }
    }
    return null;
  }

  async function reuseFinished(runId: string): Promise<TrainRunResult | null> {
    const manifestKey = runManifestKey(runId);
    if (!(await deps.store.exists(manifestKey))) return null;
    const manifest = manifestSchema.parse(await deps.store.readManifest(manifestKey));
    return { runId, manifestKey, ...manifest.result, reused: true, resumedFromStep: manifest.result.steps };
  }

  return {
    async train(input: TrainActivityInput): Promise<TrainRunResult> {
      try {
        return await runTraining(input);
      } catch (err) {
        throw asNonRetryable(err);
      }
    },
  };

  async function runTraining(input: TrainActivityInput): Promise<TrainRunResult> {
    const ctx = Context.current();
    const spec: TrainSpec = parseTrainSpec(input.spec);
    const runId = trainRunId(spec.train);
    await deps.store.ensureBucket();

    const finished = await reuseFinished(runId);
    if (finished) {
      deps.log(`run ${runId} already finished; returning its stored result`);
      return finished;
    }

    const hinted = checkpointRefSchema.safeParse(ctx.info.heartbeatDetails);
    const resume = await loadResumePoint(runId, hinted.success ? hinted.data : null);
    const trainData = loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit });
    const testData = loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit });
    const config = toMlConfig(spec.train, trainData.n);
    const model = getModel(config.model);
    // Bits depend on the backend: a run resumed elsewhere says so in its result.
    const backends = [...(resume?.backends ?? [])];
    if (backends[backends.length - 1] !== deps.backend) backends.push(deps.backend);
    const backendLabel = backends.join('+');
    if (backends.length > 1)
      deps.log(
        `run ${runId}: resuming a checkpoint written on ${backends.slice(0, -1).join('+')} with ${deps.backend}; not bit-identical to a single-backend run`,
      );
    deps.log(
      resume
        ? `run ${runId}: resuming from step ${resume.state.step} (${resume.ref.key}), attempt ${ctx.info.attempt}`
        : `run ${runId}: starting fresh, ${config.iterations} steps on ${deps.backend}`,
    );

    let lastCheckpoint: CheckpointRef | null = resume?.ref ?? null;
    const written: string[] = lastCheckpoint ? [lastCheckpoint.key] : [];
    let lastSignalAt = 0;
    let lastProgress: TrainProgressUpdate | null = null;

    const signalProgress = async (update: TrainProgressUpdate, force: boolean) => {
      lastProgress = update;
      if (!deps.client || !input.progressWorkflowId) return;
      const now = Date.now();
      if (!force && now - lastSignalAt < progressIntervalMs) return;
      lastSignalAt = now;
      try {
        await deps.client.workflow.getHandle(input.progressWorkflowId).signal('trainProgress', update);
      } catch (err) {
        // Progress is advisory: losing a signal must never fail the training.
        deps.log(`progress signal failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    };

    // Heartbeats also flow between checkpoints so a dead worker is noticed within the timeout.
    const heartbeatTimer = setInterval(() => ctx.heartbeat(lastCheckpoint), 1_000);
    let latestEval: { testAccuracy: number; testLoss: number } | null = null;
    try {
      const result = await train(
        config,
        { train: trainData, test: testData },
        {
          initialWeights: resume ? undefined : model.init(config.seed),
          resumeFrom: resume?.state,
          checkpointEvery: spec.checkpointEvery,
          signal: ctx.cancellationSignal,
          stopRequested: deps.draining,
          onCheckpoint: async (state) => {
            const { tensors, metadata } = stateToTensors(state);
            const key = checkpointKey(runId, state.step);
            const ref = await deps.store.putTensors(key, tensors, {
              ...metadata,
              runId,
              backends: backends.join(','),
            });
            lastCheckpoint = { ...ref, step: state.step };
            ctx.heartbeat(lastCheckpoint);
            written.push(key);
            while (written.length > keepCheckpoints) {
              const old = written.shift();
              if (old !== undefined) await deps.store.remove(old);
            }
          },
          onProgress: (p) => {
            const isEval = p.testAccuracy !== undefined;
            if (isEval) latestEval = { testAccuracy: p.testAccuracy ?? 0, testLoss: p.testLoss ?? 0 };
            void signalProgress(
              {
                step: p.step,
                totalSteps: p.totalSteps,
                epoch: p.epoch,
                loss: Number.isFinite(p.loss) ? p.loss : null,
                testAccuracy: latestEval?.testAccuracy ?? null,
                testLoss: latestEval?.testLoss ?? null,
                checkpointKey: lastCheckpoint?.key ?? null,
                backend: deps.backend,
              },
              isEval,
            );
          },
        },
      );

      const weights: ArtifactRef = await deps.store.putTensors(finalWeightsKey(runId), result.state.weights, {
        runId,
        step: String(result.state.step),
        model: config.model,
        backend: backendLabel,
      });
      const metrics = {
        runId,
        spec,
        config,
        backend: backendLabel,
        final: result.final,
        evals: result.evals,
      };
      const metricsRef = await deps.store.putJson(runMetricsKey(runId), metrics);
      const runResult = {
        weights,
        metricsKey: metricsRef.key,
        backend: backendLabel,
        steps: result.state.step,
        final: result.final,
        evals: result.evals,
      };
      await deps.store.publishManifest(runManifestKey(runId), {
        kind: 'train-run',
        runId,
        entries: [weights, metricsRef],
        result: runResult,
      });
      if (lastProgress)
        await signalProgress({ ...(lastProgress as TrainProgressUpdate), step: result.state.step }, true);
      for (const key of written) await deps.store.remove(key);
      return {
        runId,
        manifestKey: runManifestKey(runId),
        ...runResult,
        reused: false,
        resumedFromStep: resume?.state.step ?? 0,
      };
    } finally {
      clearInterval(heartbeatTimer);
    }
  }
}
