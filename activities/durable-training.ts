// One training run made durable: resume from the newest intact checkpoint, checkpoint every N steps and then
// heartbeat the checkpoint's key, hand over on drain, signal throttled progress to a workflow. Shared by the
// `train` activity and the IMP level activities; the caller decides what the run starts from and what it
// publishes when it is done.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { z } from 'zod';

import type { Dataset } from '../ml/data';
import type { ModelDef } from '../ml/models';
import type { NamedTensors } from '../ml/tensors';
import { objectRefSchema } from '../contract/spec';
import type { TrainProgressUpdate } from '../contract/train';
import {
  stateFromTensors,
  stateToTensors,
  train,
  type StepObjective,
  type TrainConfig,
  type TrainResult,
  type TrainState,
} from '../ml/train';
import {
  ArtifactStore,
  IntegrityError,
  checkpointKey,
  checkpointPrefix,
  parseCheckpointStep,
} from '../store';
import { labelWithEngine } from './heal';
import type { ActivityMetrics } from './metrics';

export interface DurableTrainingDeps {
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
  /** Where throughput, loss and checkpoint costs are reported (the worker's Prometheus exporter), if anywhere. */
  metrics?: ActivityMetrics;
}

export interface DurableTrainingJob {
  /** Names the run's checkpoint folder; the same job always gets the same id. */
  runId: string;
  config: TrainConfig;
  data: { train: Dataset; test: Dataset };
  /** Where a run with no checkpoint starts: initial weights, or a whole state (a rewind point). */
  start: { weights: NamedTensors } | { state: TrainState };
  masks?: NamedTensors;
  /** The model, when it is not the registry's `config.model` (a student with distillation tokens). */
  model?: ModelDef;
  /** What each step minimises (distillation); default the cross-entropy. */
  objective?: StepObjective<unknown>;
  /** The engine family a recomputation must use: the one the damaged run's record names (heal). */
  engine?: 'tape' | 'graph';
  checkpointEvery: number;
  snapshotAt?: number[];
  onSnapshot?: (state: TrainState) => Promise<void>;
  /** Workflow and signal that receive progress; `extra` is merged into every update (e.g. the level). */
  progress: { workflowId: string; signal: string; extra?: Record<string, unknown> } | null;
}

export interface DurableTrainingOutcome {
  result: TrainResult;
  /** Backends the run used, in order, joined with '+'. */
  backend: string;
  resumedFromStep: number;
  /** Deletes the run's checkpoints; call once its result is published. */
  removeCheckpoints(): Promise<void>;
}

/** What a heartbeat carries: the newest checkpoint written, so a retry resumes from it. */
const checkpointRefSchema = objectRefSchema.extend({ step: z.number().int() });
type CheckpointRef = z.infer<typeof checkpointRefSchema>;

async function loadResumePoint(
  deps: DurableTrainingDeps,
  runId: string,
  hinted: CheckpointRef | null,
): Promise<{ state: TrainState; ref: CheckpointRef; backends: string[] } | null> {
  const listed = await deps.store.list(checkpointPrefix(runId));
  const candidates = new Map<string, number>();
  for (const { key } of listed) {
    const step = parseCheckpointStep(key);
    if (step !== null) candidates.set(key, step);
  }
  // A hint from another run (a heartbeat of an earlier job in the same activity) is not ours.
  if (hinted && hinted.key.startsWith(checkpointPrefix(runId))) candidates.set(hinted.key, hinted.step);
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

export async function runDurableTraining(
  deps: DurableTrainingDeps,
  job: DurableTrainingJob,
): Promise<DurableTrainingOutcome> {
  const ctx = Context.current();
  const progressIntervalMs = deps.progressIntervalMs ?? 5_000;
  const keepCheckpoints = Math.max(1, deps.keepCheckpoints ?? 2);
  const { runId, config } = job;

  const hinted = checkpointRefSchema.safeParse(ctx.info.heartbeatDetails);
  const resume = await loadResumePoint(deps, runId, hinted.success ? hinted.data : null);
  // Bits depend on the backend, its thread count and the engine family (which a resumed run keeps: ml/train/engines):
  // a run resumed elsewhere says so in its result.
  const backendsWith = (engine: TrainState['engine']) => {
    const here = labelWithEngine(deps.backend, engine);
    const list = [...(resume?.backends ?? [])];
    if (list[list.length - 1] !== here) list.push(here);
    return list;
  };
  const resumedOn = resume ? backendsWith(resume.state.engine) : [];
  if (resumedOn.length > 1)
    deps.log(
      `run ${runId}: resuming a checkpoint written on ${resumedOn.slice(0, -1).join('+')} with ${resumedOn[resumedOn.length - 1]}; not bit-identical to a single-backend run`,
    );
  const startState = 'state' in job.start ? job.start.state : null;
  deps.log(
    resume
      ? `run ${runId}: resuming from step ${resume.state.step} (${resume.ref.key}), attempt ${ctx.info.attempt}`
      : `run ${runId}: starting at step ${startState?.step ?? 0}, ${config.iterations} steps in all on ${deps.backend}`,
  );

  let lastCheckpoint: CheckpointRef | null = resume?.ref ?? null;
  const written: string[] = lastCheckpoint ? [lastCheckpoint.key] : [];
  let lastSignalAt = 0;
  let lastProgress: TrainProgressUpdate | null = null;

  const signalProgress = async (update: TrainProgressUpdate, force: boolean) => {
    lastProgress = update;
    if (!deps.client || !job.progress) return;
    const now = Date.now();
    if (!force && now - lastSignalAt < progressIntervalMs) return;
    lastSignalAt = now;
    try {
      await deps.client.workflow
        .getHandle(job.progress.workflowId)
        .signal(job.progress.signal, { ...update, ...job.progress.extra });
    } catch (err) {
      // Progress is advisory: losing a signal must never fail the training.
      deps.log(`progress signal failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  // Heartbeats also flow between checkpoints so a dead worker is noticed within the timeout.
  const heartbeatTimer = setInterval(() => ctx.heartbeat(lastCheckpoint), 1_000);
  let latestEval: { testAccuracy: number; testLoss: number } | null = null;
  let lastRate: { step: number; at: number } | null = null;
  const resumeFrom = resume?.state ?? startState ?? undefined;
  try {
    const result = await train(config, job.data, {
      initialWeights: resumeFrom ? undefined : 'weights' in job.start ? job.start.weights : undefined,
      resumeFrom,
      // A checkpoint read back without an engine field was computed on the tape (only the graph's is written).
      ...((resume ? (resume.state.engine ?? 'tape') : job.engine)
        ? { engine: resume ? (resume.state.engine ?? 'tape') : job.engine }
        : {}),
      masks: job.masks,
      ...(job.model ? { model: job.model } : {}),
      ...(job.objective ? { objective: job.objective } : {}),
      checkpointEvery: job.checkpointEvery,
      snapshotAt: job.snapshotAt?.filter((k) => k > (resumeFrom?.step ?? 0)),
      onSnapshot: job.onSnapshot,
      signal: ctx.cancellationSignal,
      stopRequested: deps.draining,
      onCheckpoint: async (state) => {
        const { tensors, metadata } = stateToTensors(state);
        const key = checkpointKey(runId, state.step);
        const putStarted = performance.now();
        const ref = await deps.store.putTensors(key, tensors, {
          ...metadata,
          runId,
          backends: backendsWith(state.engine).join(','),
        });
        deps.metrics?.checkpoint((performance.now() - putStarted) / 1000, ref.bytes);
        lastCheckpoint = { ...ref, step: state.step };
        ctx.heartbeat(lastCheckpoint);
        written.push(key);
        while (written.length > keepCheckpoints) {
          const old = written.shift();
          if (old !== undefined) await deps.store.remove(old);
        }
      },
      onProgress: (p) => {
        const now = performance.now();
        const samplesPerSec =
          lastRate && p.step > lastRate.step
            ? ((p.step - lastRate.step) * config.batchSize * 1000) / (now - lastRate.at)
            : null;
        lastRate = { step: p.step, at: now };
        deps.metrics?.training(runId, {
          step: p.step,
          loss: Number.isFinite(p.loss) ? p.loss : null,
          samplesPerSec,
        });
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
    });
    if (lastProgress)
      await signalProgress({ ...(lastProgress as TrainProgressUpdate), step: result.state.step }, true);
    for (const note of result.engine?.notes ?? []) deps.log(`run ${runId}: ${note}`);
    return {
      result,
      backend: backendsWith(result.state.engine).join('+'),
      resumedFromStep: resume?.state.step ?? 0,
      removeCheckpoints: async () => {
        // All of the run's checkpoints: an earlier attempt (a killed worker) may have left older ones than the one
        // this attempt resumed from, which it never wrote and so never rotated out.
        const listed = (await deps.store.list(checkpointPrefix(runId))).map((o) => o.key);
        for (const key of new Set([...written, ...listed])) await deps.store.remove(key);
      },
    };
  } finally {
    clearInterval(heartbeatTimer);
  }
}
