// The IMP level activity: one level of the trunk or of a control branch. It derives the level's mask and
// starting state from stored artifacts of earlier levels, trains durably, and publishes
// experiments/<lineage>/level-<L>/{rewind,mask,weights}.safetensors, metrics.json and, last, manifest.json.
// A level whose manifest exists is returned as it is, so a restarted experiment continues where it stopped.
import { z } from 'zod';

import { loadDataset } from '../ml/data';
import { getModel, type ModelDef } from '../ml/models';
import {
  denseMasks,
  masksFromSparsity,
  prune,
  sparsityReport,
  type PruningStrategy,
  type SparsityReport,
} from '../ml/pruning';
import { deriveSeed } from '../ml/rng';
import type { NamedTensors } from '../ml/tensors';
import {
  initialTrainState,
  maskTrainState,
  stateFromTensors,
  stateToTensors,
  train,
  type TrainConfig,
  type TrainResult,
  type TrainState,
} from '../ml/train';
import {
  levelManifestKey,
  levelTensorKey,
  experimentMetricsKey,
  rewindStateKey,
  type ArtifactStore,
} from '../store';
import {
  parseBranchSpec,
  parseLotterySpec,
  rewindStep,
  type BranchSpec,
  type LotterySpec,
} from '../workflows/lottery-specs';
import { SpecError } from '../workflows/specs';
import type { LevelActivityInput, LevelResult, LevelSource } from '../workflows/lottery-types';
import type { ArtifactRef } from '../workflows/train-types';
import { runDurableTraining, toActivityFailure, type DurableTrainingDeps } from './durable-training';
import {
  branchLineageId,
  globalRandomStrategy,
  oneShotStrategy,
  resolvePruning,
  trunkLineageId,
} from './lottery-plan';
import { publishTrainRun, readTrainRun, toMlConfig, trainRunId } from './train';

const refSchema = z.object({ key: z.string(), sha256: z.string(), bytes: z.number() });
const levelResultSchema = z.object({
  lineageId: z.string(),
  source: z.string(),
  level: z.number().int(),
  remainingPct: z.number(),
  remaining: z.number().int(),
  prunable: z.number().int(),
  startStep: z.number().int(),
  steps: z.number().int(),
  bestTestAccuracy: z.number(),
  bestIteration: z.number().int(),
  finalTestAccuracy: z.number(),
  finalTestLoss: z.number(),
  finalTrainAccuracy: z.number(),
  backend: z.string(),
  weights: refSchema,
  mask: refSchema,
  rewind: refSchema,
  metricsKey: z.string(),
  manifestKey: z.string(),
});
const levelManifestSchema = z.object({ kind: z.literal('imp-level'), result: levelResultSchema });

/** A level asked for before the level it derives from: an orchestration bug that no retry can fix. */
export class LevelNotFinishedError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'LevelNotFinishedError';
}

type StoredLevel = Omit<LevelResult, 'reused' | 'resumedFromStep'>;

/** Context shared by every kind of level: the parsed spec, model, data and training config. */
interface LevelJob {
  spec: LotterySpec;
  model: ModelDef;
  config: TrainConfig;
  data: ReturnType<typeof loadData>;
  strategy: PruningStrategy;
  level: number;
  progressWorkflowId: string | null;
}

function loadData(spec: LotterySpec) {
  return {
    train: loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit }),
    test: loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit }),
  };
}

/** What a level publishes of its training, whether it trained now or reuses a finished dense run. */
interface TrainedLevel {
  weights: NamedTensors;
  step: number;
  final: TrainResult['final'];
  evals: TrainResult['evals'];
  backend: string;
  resumedFromStep: number;
}

function trainedLevel(run: { result: TrainResult; backend: string; resumedFromStep: number }): TrainedLevel {
  const { state, final, evals } = run.result;
  return {
    weights: state.weights,
    step: state.step,
    final,
    evals,
    backend: run.backend,
    resumedFromStep: run.resumedFromStep,
  };
}

/** Best test accuracy and the first step that reached it. */
function best(result: { evals: TrainResult['evals'] }): { accuracy: number; step: number } {
  let top = { accuracy: -1, step: 0 };
  for (const e of result.evals)
    if (e.testAccuracy > top.accuracy) top = { accuracy: e.testAccuracy, step: e.step };
  return top;
}

export function createLotteryActivities(deps: DurableTrainingDeps) {
  const store: ArtifactStore = deps.store;

  async function readLevel(lineageId: string, level: number): Promise<StoredLevel | null> {
    const key = levelManifestKey(lineageId, level);
    if (!(await store.exists(key))) return null;
    const manifest = levelManifestSchema.parse(await store.readManifest(key));
    return manifest.result as StoredLevel;
  }

  async function requireLevel(lineageId: string, level: number, what: string): Promise<StoredLevel> {
    const found = await readLevel(lineageId, level);
    if (!found) {
      throw new LevelNotFinishedError(
        `${what} level ${level} (${levelManifestKey(lineageId, level)}) has not finished; it must be trained first`,
      );
    }
    return found;
  }

  async function tensors(ref: ArtifactRef): Promise<NamedTensors> {
    return (await store.getTensors(ref.key, { expectSha256: ref.sha256 })).tensors;
  }

  async function rewindState(ref: ArtifactRef): Promise<TrainState> {
    const { tensors: t, metadata } = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
    return stateFromTensors(t, metadata);
  }

  /**
   * Writes one level: rewind state and mask first (so a retry sees the same bits), then trains, then weights,
   * metrics and the manifest. `pretrained` skips training (level 0 reuses the dense run's result).
   */
  async function publishLevel(
    job: LevelJob,
    lineageId: string,
    source: LevelSource,
    masks: NamedTensors,
    start: TrainState,
    pretrained: TrainedLevel | null,
    extra: Record<string, unknown>,
  ): Promise<LevelResult> {
    const { level } = job;
    const sparsity: SparsityReport = sparsityReport(masks, job.model.params);
    const { tensors: startTensors, metadata } = stateToTensors(start);
    const rewind = await store.putTensors(levelTensorKey(lineageId, level, 'rewind'), startTensors, {
      ...metadata,
      lineageId,
      level: String(level),
    });
    const mask = await store.putTensors(levelTensorKey(lineageId, level, 'mask'), masks, {
      lineageId,
      level: String(level),
      remaining: String(sparsity.remaining),
      total: String(sparsity.total),
    });

    let outcome: TrainedLevel & { done?: () => Promise<void> };
    if (pretrained) {
      outcome = pretrained;
    } else {
      const run = await runDurableTraining(deps, {
        runId: `${lineageId}-L${level}`,
        config: job.config,
        data: job.data,
        start: { state: start },
        masks,
        checkpointEvery: job.spec.checkpointEvery,
        progress: job.progressWorkflowId
          ? { workflowId: job.progressWorkflowId, signal: 'levelProgress', extra: { level } }
          : null,
      });
      outcome = { ...trainedLevel(run), done: run.removeCheckpoints };
    }
    const weights = await store.putTensors(levelTensorKey(lineageId, level, 'weights'), outcome.weights, {
      lineageId,
      level: String(level),
      step: String(outcome.step),
      backend: outcome.backend,
    });
    const top = best(outcome);
    const stored: StoredLevel = {
      lineageId,
      source,
      level,
      remainingPct: sparsity.remainingPct,
      remaining: sparsity.remaining,
      prunable: sparsity.total,
      startStep: start.step,
      steps: outcome.step,
      bestTestAccuracy: top.accuracy,
      bestIteration: top.step,
      finalTestAccuracy: outcome.final.testAccuracy,
      finalTestLoss: outcome.final.testLoss,
      finalTrainAccuracy: outcome.final.trainAccuracy,
      backend: outcome.backend,
      weights,
      mask,
      rewind,
      metricsKey: experimentMetricsKey(lineageId, level),
      manifestKey: levelManifestKey(lineageId, level),
    };
    const metrics = await store.putJson(stored.metricsKey, {
      ...stored,
      spec: job.spec,
      config: job.config,
      strategy: job.strategy,
      sparsity,
      final: outcome.final,
      evals: outcome.evals,
      ...extra,
    });
    await store.publishManifest(stored.manifestKey, {
      kind: 'imp-level',
      entries: [rewind, mask, weights, metrics],
      result: stored,
    });
    await outcome.done?.();
    deps.log(
      `level ${level} (${source}, ${lineageId}): ${sparsity.remainingPct.toFixed(1)}% remaining, test accuracy ${(100 * outcome.final.testAccuracy).toFixed(2)}%`,
    );
    return { ...stored, reused: false, resumedFromStep: outcome.resumedFromStep };
  }

  /** Level 0: the dense run (shared with `lth train` and other lineages of the same config) and its rewind point. */
  async function denseLevel(job: LevelJob, lineageId: string): Promise<LevelResult> {
    const { spec, config, model } = job;
    const k = rewindStep(spec.rewind);
    const runId = trainRunId(spec.train);
    const init = model.init(config.seed);
    const rewindKey = rewindStateKey(runId, k);
    let dense: TrainedLevel;
    const stored = await readTrainRun(store, runId);
    if (stored) {
      deps.log(`level 0: reusing the finished dense run ${runId}`);
      if (stored.evals.length === 0) throw new Error(`dense run ${runId} has no evaluations`);
      dense = {
        weights: await tensors(stored.weights),
        step: stored.steps,
        final: stored.final,
        evals: stored.evals,
        backend: stored.backend,
        // Reused, not trained: as for any reused result, it is complete at its last step.
        resumedFromStep: stored.steps,
      };
    } else {
      const run = await runDurableTraining(deps, {
        runId,
        config,
        data: job.data,
        start: { weights: init },
        checkpointEvery: spec.checkpointEvery,
        snapshotAt: k > 0 ? [k] : [],
        onSnapshot: async (state) => {
          await store.putTensors(rewindKey, stateToTensors(state).tensors, {
            ...stateToTensors(state).metadata,
            runId,
          });
        },
        progress: job.progressWorkflowId
          ? { workflowId: job.progressWorkflowId, signal: 'levelProgress', extra: { level: 0 } }
          : null,
      });
      await publishTrainRun(store, runId, { spec: { kind: 'imp-level-0', train: spec.train }, config }, run);
      await run.removeCheckpoints();
      dense = trainedLevel(run);
    }

    let start: TrainState;
    if (k === 0) {
      start = initialTrainState(config, job.data.train.n, init);
    } else if (await store.exists(rewindKey)) {
      start = await rewindState({ ...(await store.stat(rewindKey)), key: rewindKey });
    } else {
      // The dense run was trained without this rewind point (by `lth train` or another lineage): replay its
      // first k steps, which the seeded data order and initialisation make the same trajectory.
      deps.log(`level 0: replaying the dense run's first ${k} steps to get its state at step ${k}`);
      const replay = await train({ ...config, iterations: k, evalEvery: 0 }, job.data, {
        initialWeights: init,
      });
      start = replay.state;
      const { tensors: t, metadata } = stateToTensors(start);
      await store.putTensors(rewindKey, t, { ...metadata, runId, replayed: 'true' });
    }
    return publishLevel(job, lineageId, 'trunk', denseMasks(model.params), start, dense, {
      denseRunId: runId,
    });
  }

  async function trunkLevel(job: LevelJob, lineageId: string): Promise<LevelResult> {
    const prev = await requireLevel(lineageId, job.level - 1, 'trunk');
    const zero = await requireLevel(lineageId, 0, 'trunk');
    const masks = prune(await tensors(prev.weights), await tensors(prev.mask), job.strategy);
    const start = maskTrainState(await rewindState(zero.rewind), masks);
    return publishLevel(job, lineageId, 'trunk', masks, start, null, { parent: prev.manifestKey });
  }

  async function branchLevel(
    job: LevelJob,
    branch: Exclude<BranchSpec, { kind: 'rewind' }>,
  ): Promise<LevelResult> {
    const { spec, level, model, config } = job;
    const trunkId = trunkLineageId(spec);
    const lineageId = branchLineageId(spec, branch);
    const trunk = await requireLevel(trunkId, level, 'trunk');
    const zero = await requireLevel(trunkId, 0, 'trunk');
    const trunkMask = await tensors(trunk.mask);
    let masks: NamedTensors;
    let start: TrainState;
    switch (branch.kind) {
      case 'reinit': {
        masks = trunkMask;
        const fresh = model.init(deriveSeed(spec.train.seed, 'reinit', branch.seed));
        start = maskTrainState(initialTrainState(config, job.data.train.n, fresh), masks);
        break;
      }
      case 'random-prune': {
        const seed = deriveSeed(spec.train.seed, 'random-prune', branch.seed, level);
        masks =
          branch.scope === 'global'
            ? prune(await tensors(zero.weights), denseMasks(model.params), {
                ...globalRandomStrategy(job.strategy, sparsityReport(trunkMask, model.params)),
                seed,
              })
            : masksFromSparsity(trunkMask, seed);
        start = maskTrainState(await rewindState(zero.rewind), masks);
        break;
      }
      case 'one-shot':
        masks = prune(
          await tensors(zero.weights),
          denseMasks(model.params),
          oneShotStrategy(job.strategy, sparsityReport(trunkMask, model.params)),
        );
        start = maskTrainState(await rewindState(zero.rewind), masks);
        break;
    }
    return publishLevel(job, lineageId, branch.kind, masks, start, null, {
      branch,
      trunk: trunk.manifestKey,
    });
  }

  async function runLevel(input: LevelActivityInput): Promise<LevelResult> {
    const spec = parseLotterySpec(input.spec);
    const branch = input.branch === undefined ? undefined : parseBranchSpec(input.branch);
    if (branch?.kind === 'rewind') {
      throw new Error('internal: a rewind branch runs as its own trunk, not as branch levels');
    }
    const level = input.level;
    if (!Number.isInteger(level) || level < 0 || level > spec.levels || (branch && level < 1)) {
      throw new Error(`internal: level ${level} is outside this experiment's levels`);
    }
    const lineageId = branch ? branchLineageId(spec, branch) : trunkLineageId(spec);
    await store.ensureBucket();
    const done = await readLevel(lineageId, level);
    if (done) {
      deps.log(`level ${level} of ${lineageId} already finished; returning its stored result`);
      return { ...done, reused: true, resumedFromStep: done.steps };
    }
    const model = getModel(spec.train.model);
    const strategy = resolvePruning(spec.pruning, model);
    const data = loadData(spec);
    const config = toMlConfig(spec.train, data.train.n);
    // The spec can only check this when it gives iterations; with epochs it is known once the data is.
    if (rewindStep(spec.rewind) >= config.iterations) {
      const msg = `rewind.step: ${rewindStep(spec.rewind)} must be before the end of training (${config.iterations} iterations)`;
      throw new SpecError(`invalid lottery spec:\n  ${msg}`, [msg]);
    }
    const job: LevelJob = {
      spec,
      model,
      config,
      data,
      strategy,
      level,
      progressWorkflowId: input.progressWorkflowId,
    };
    if (branch) return branchLevel(job, branch);
    return level === 0 ? denseLevel(job, lineageId) : trunkLevel(job, lineageId);
  }

  return {
    async lotteryLevel(input: LevelActivityInput): Promise<LevelResult> {
      try {
        return await runLevel(input);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  };
}
