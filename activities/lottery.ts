// The IMP level activity: one level of the trunk or of a per-level control branch. Each kind of level derives its
// mask and starting state from stored artifacts of earlier levels, then `trainLevel` writes that start, trains
// durably and publishes the level (level-records.ts). A finished level is returned as it is stored, so a
// restarted experiment continues where it stopped.
//
// Healing: everything a level reads from the store is derived (a level from its trunk's previous level and level
// 0, level 0 from the dense run, the dense run and its rewind point from the spec), so a stored level or run that
// fails verification, or whose manifest is gone, is unpublished and recomputed here, to the same bytes on the
// backend that computed it (heal.ts). The keys are logged and returned in the result's `healed`. A damaged object
// computed on another backend cannot be recomputed to its bytes: UnderivableError names it and what to do.
import { branchKind, branchLabel, type BranchLevelInputs, type BranchSpec } from '../contract/branches';
import { branchLineageId, trainRunId, trunkLineageId } from '../contract/ids';
import {
  parseBranchSpec,
  parseLotterySpec,
  type LevelActivityInput,
  type LevelRecord,
  type LevelResult,
  type LevelSource,
  type LotterySpec,
} from '../contract/lottery';
import { resolvePruning } from '../contract/pruning';
import { rewindStep } from '../contract/rewind';
import { specError } from '../contract/spec';
import { toTrainConfig } from '../contract/train';
import { loadDataset, type Dataset } from '../ml/data';
import type { NamedTensors } from '../ml/host-tensor';
import { getModel, type ModelDef } from '../ml/models';
import { denseMasks, prune, sparsityReport, type PruningStrategy } from '../ml/pruning';
import {
  cursorAt,
  initialTrainState,
  maskTrainState,
  stateToTensors,
  train,
  type TrainConfig,
  type TrainResult,
  type TrainState,
} from '../ml/train';
import { levelManifestKey, rewindStateKey } from '../store';
import { runDurableTraining, type DurableTrainingDeps } from './durable-training';
import { activity } from './failures';
import { damagedKey, engineFamilyOf, requireReproducible } from './heal';
import { createLevelRecords } from './level-records';
import { publishTrainRun, readOrHealTrainRun } from './run-records';

/** What every kind of level shares: the parsed spec, model, data and training config. */
interface LevelJob {
  spec: LotterySpec;
  model: ModelDef;
  config: TrainConfig;
  data: { train: Dataset; test: Dataset };
  strategy: PruningStrategy;
  level: number;
  progressWorkflowId: string | null;
  /** Keys of damaged or missing stored objects recomputed by this activity so far (shared by its levels). */
  healed: string[];
  /** The engine family this level's recomputation must use: the one its damaged record names (heal). */
  engine?: 'tape' | 'graph';
}

/** A level's training, whether it trained now or is a finished dense run reused as level 0. */
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
function best(evals: TrainResult['evals']): { accuracy: number; step: number } {
  let top = { accuracy: -1, step: 0 };
  for (const e of evals) if (e.testAccuracy > top.accuracy) top = { accuracy: e.testAccuracy, step: e.step };
  return top;
}

/** One level to train: where it starts, and (for level 0) the training it reuses instead. */
interface LevelPlan {
  lineageId: string;
  source: LevelSource;
  masks: NamedTensors;
  /** The state it trains from, masked. */
  start: TrainState;
  pretrained?: TrainedLevel;
  /** Recorded in the level's metrics.json: where it came from. */
  about: Record<string, unknown>;
}

export function createLotteryActivities(deps: DurableTrainingDeps) {
  const { store } = deps;
  const levels = createLevelRecords(store);

  /** Notes a damaged or missing object that is being recomputed, in the log and in the result. */
  function heal(healed: string[], key: string, message: string): void {
    deps.log(`healing '${key}': ${message}`);
    healed.push(key);
  }

  /**
   * The finished level, or null when it must be computed. A level that fails verification (an object damaged or
   * gone, or its manifest unreadable) is unpublished, so that it is recomputed, unless this worker cannot
   * recompute it to its bytes (UnderivableError).
   */
  async function readOrHeal(
    healed: string[],
    lineageId: string,
    level: number,
    what: string,
  ): Promise<{ record: LevelRecord } | { record: null; engine?: 'tape' | 'graph' }> {
    try {
      return { record: await levels.read(lineageId, level) };
    } catch (err) {
      const key = damagedKey(err);
      if (key === null) throw err;
      const owner = `${what} level ${level} of ${lineageId}`;
      const backend = await levels.recordedBackend(lineageId, level);
      if (backend !== null) requireReproducible(owner, key, backend, deps.backend);
      await levels.unpublish(lineageId, level, key);
      heal(
        healed,
        key,
        `${owner} is damaged (${(err as Error).message}); recomputing the level from its inputs`,
      );
      // Recomputed on the engine family that computed it, whatever this worker would pick for a new run.
      return backend === null ? { record: null } : { record: null, engine: engineFamilyOf(backend) };
    }
  }

  /**
   * A trunk level another level derives from: the stored one when it verifies, else recomputed now (and its own
   * inputs with it, recursively down to level 0 and the dense run).
   */
  async function ensureTrunkLevel(job: LevelJob, lineageId: string, level: number): Promise<LevelRecord> {
    const found = await readOrHeal(job.healed, lineageId, level, 'trunk');
    if (found.record) return found.record;
    // Not damaged but gone (`lth fsck --repair` removed its manifest): computed all the same.
    const folder = levelManifestKey(lineageId, level).replace(/manifest\.json$/, '');
    if (!job.healed.some((k) => k.startsWith(folder)))
      heal(
        job.healed,
        levelManifestKey(lineageId, level),
        `trunk level ${level} of ${lineageId} is not in the store; computing it`,
      );
    // The engine of a recomputed level is its own record's, never the level that needed it.
    const sub: LevelJob = { ...job, level, progressWorkflowId: null };
    delete sub.engine;
    if (found.engine) sub.engine = found.engine;
    return level === 0 ? denseLevel(sub, lineageId) : trunkLevel(sub, lineageId);
  }

  /** Writes the level's start, trains it from there (unless pretrained), and publishes it. */
  async function trainLevel(job: LevelJob, plan: LevelPlan): Promise<LevelResult> {
    const { level } = job;
    const { lineageId, source, masks, start } = plan;
    const sparsity = sparsityReport(masks, job.model.params);
    const { rewind, mask } = await levels.putStart(lineageId, level, start, masks, sparsity);

    let trained: TrainedLevel;
    let removeCheckpoints = async () => {};
    if (plan.pretrained) {
      trained = plan.pretrained;
    } else {
      const run = await runDurableTraining(deps, {
        runId: `${lineageId}-L${level}`,
        config: job.config,
        data: job.data,
        start: { state: start },
        masks,
        ...(job.engine ? { engine: job.engine } : {}),
        checkpointEvery: job.spec.checkpointEvery,
        progress: job.progressWorkflowId
          ? { workflowId: job.progressWorkflowId, signal: 'levelProgress', extra: { level } }
          : null,
      });
      trained = trainedLevel(run);
      removeCheckpoints = run.removeCheckpoints;
    }
    const top = best(trained.evals);
    const record = await levels.publish(
      {
        lineageId,
        source,
        level,
        remainingPct: sparsity.remainingPct,
        remaining: sparsity.remaining,
        prunable: sparsity.total,
        startStep: start.step,
        steps: trained.step,
        bestTestAccuracy: top.accuracy,
        bestIteration: top.step,
        finalTestAccuracy: trained.final.testAccuracy,
        finalTestLoss: trained.final.testLoss,
        finalTrainAccuracy: trained.final.trainAccuracy,
        backend: trained.backend,
        rewind,
        mask,
      },
      trained.weights,
      {
        spec: job.spec,
        config: job.config,
        strategy: job.strategy,
        sparsity,
        final: trained.final,
        evals: trained.evals,
        ...plan.about,
      },
    );
    await removeCheckpoints();
    deps.log(
      `level ${level} (${source}, ${lineageId}): ${sparsity.remainingPct.toFixed(1)}% remaining, test accuracy ${(100 * trained.final.testAccuracy).toFixed(2)}%`,
    );
    return { ...record, reused: false, resumedFromStep: trained.resumedFromStep };
  }

  /** The dense run's state at step k: stored with the run, or replayed (same seeds, same trajectory). */
  async function denseStateAt(
    job: LevelJob,
    runId: string,
    init: NamedTensors,
    denseBackend: string,
  ): Promise<TrainState> {
    const k = rewindStep(job.spec.rewind);
    const key = rewindStateKey(runId, k);
    if (k === 0) return initialTrainState(job.config, job.data.train.n, init);
    if (await store.exists(key)) {
      try {
        return await levels.state({ ...(await store.stat(key)), key });
      } catch (err) {
        if (damagedKey(err) === null) throw err;
        // Replayed here, it is the same state only on the backend that trained the dense run.
        requireReproducible(`the dense run's rewind point at step ${k}`, key, denseBackend, deps.backend);
        await store.remove(key);
        heal(
          job.healed,
          key,
          `the rewind point is damaged (${(err as Error).message}); replaying the dense run`,
        );
      }
    }
    // The dense run was trained without this rewind point (by `lth train` or another lineage): replay its
    // first k steps, which the seeded data order and initialisation make the same trajectory.
    deps.log(`level 0: replaying the dense run's first ${k} steps to get its state at step ${k}`);
    const replay = await train({ ...job.config, iterations: k, evalEvery: 0 }, job.data, {
      initialWeights: init,
    });
    const { tensors, metadata } = stateToTensors(replay.state);
    await store.putTensors(key, tensors, { ...metadata, runId, replayed: 'true' });
    return replay.state;
  }

  /** Level 0: train the dense network (the ordinary run of this config, shared with `lth train`), keep its rewind point. */
  async function denseLevel(job: LevelJob, lineageId: string): Promise<LevelResult> {
    const { spec, config, model } = job;
    const k = rewindStep(spec.rewind);
    const runId = trainRunId(spec.train);
    const init = model.init(config.seed);
    let dense: TrainedLevel;
    let engine = job.engine;
    const stored = await readOrHealTrainRun(store, runId, {
      backend: deps.backend,
      what: `the dense run ${runId}`,
      healing: (key, why, recorded) => {
        heal(job.healed, key, `${why}; training it again`);
        engine = recorded ?? engine;
      },
    });
    if (stored) {
      deps.log(`level 0: reusing the finished dense run ${runId}`);
      if (stored.evals.length === 0) throw new Error(`dense run ${runId} has no evaluations`);
      dense = {
        weights: await levels.tensors(stored.weights),
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
        ...(engine ? { engine } : {}),
        checkpointEvery: spec.checkpointEvery,
        snapshotAt: k > 0 ? [k] : [],
        onSnapshot: async (state) => {
          const { tensors, metadata } = stateToTensors(state);
          await store.putTensors(rewindStateKey(runId, k), tensors, { ...metadata, runId });
        },
        progress: job.progressWorkflowId
          ? { workflowId: job.progressWorkflowId, signal: 'levelProgress', extra: { level: 0 } }
          : null,
      });
      await publishTrainRun(store, runId, { spec: { kind: 'imp-level-0', train: spec.train }, config }, run);
      await run.removeCheckpoints();
      dense = trainedLevel(run);
    }
    return trainLevel(job, {
      lineageId,
      source: 'trunk',
      masks: denseMasks(model.params),
      start: await denseStateAt(job, runId, init, dense.backend),
      pretrained: dense,
      about: { denseRunId: runId },
    });
  }

  /** Level L >= 1 of IMP: prune level L-1's solution, rewind the survivors, retrain. */
  async function trunkLevel(job: LevelJob, lineageId: string): Promise<LevelResult> {
    const prev = await ensureTrunkLevel(job, lineageId, job.level - 1);
    const zero = await ensureTrunkLevel(job, lineageId, 0);
    const masks = prune(await levels.tensors(prev.weights), await levels.tensors(prev.mask), job.strategy);
    const start = maskTrainState(await levels.state(zero.rewind), masks);
    return trainLevel(job, { lineageId, source: 'trunk', masks, start, about: { parent: prev.manifestKey } });
  }

  /** Level L of a per-level control: its kind derives masks and start from the trunk's level L and level 0. */
  async function branchLevel(job: LevelJob, branch: BranchSpec): Promise<LevelResult> {
    const kind = branchKind(branch);
    if (kind.runs !== 'per-level') {
      throw new Error(`internal: a ${branch.kind} branch runs as its own trunk, not as branch levels`);
    }
    const { spec, level, model, config } = job;
    const trunkId = trunkLineageId(spec);
    const trunk = await ensureTrunkLevel(job, trunkId, level);
    const zero = await ensureTrunkLevel(job, trunkId, 0);
    const inputs: BranchLevelInputs = {
      spec,
      level,
      model,
      strategy: job.strategy,
      trunkMask: () => levels.tensors(trunk.mask),
      denseWeights: () => levels.tensors(zero.weights),
      rewindPoint: () => levels.state(zero.rewind),
      freshStart: (seed) =>
        initialTrainState(config, job.data.train.n, model.init(seed), rewindStep(spec.rewind)),
    };
    const { masks, start, dataSeed } = await kind.derive(branch, inputs);
    // Another data order: the config's seed and the start's data cursor (which must agree) both change.
    const reordered =
      dataSeed === undefined
        ? { job, start }
        : {
            job: { ...job, config: { ...config, seed: dataSeed } },
            start: { ...start, rng: cursorAt(start.step, dataSeed, job.data.train.n, config.batchSize) },
          };
    return trainLevel(reordered.job, {
      lineageId: branchLineageId(spec, branch),
      source: branch.kind,
      masks,
      start: maskTrainState(reordered.start, masks),
      about: { branch, trunk: trunk.manifestKey },
    });
  }

  async function lotteryLevel(input: LevelActivityInput): Promise<LevelResult> {
    const spec = parseLotterySpec(input.spec);
    const branch = input.branch === undefined ? undefined : parseBranchSpec(input.branch);
    const level = input.level;
    if (!Number.isInteger(level) || level < 0 || level > spec.levels || (branch && level < 1)) {
      throw new Error(`internal: level ${level} is outside this experiment's levels`);
    }
    const lineageId = branch ? branchLineageId(spec, branch) : trunkLineageId(spec);
    await store.ensureBucket();
    const healed: string[] = [];
    const found = await readOrHeal(healed, lineageId, level, branch ? branchLabel(branch) : 'trunk');
    if (found.record) {
      deps.log(`level ${level} of ${lineageId} already finished; returning its stored result`);
      return { ...found.record, reused: true, resumedFromStep: found.record.steps };
    }
    const model = getModel(spec.train.model);
    const data = {
      train: loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit }),
      test: loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit }),
    };
    const config = toTrainConfig(spec.train, data.train.n);
    // The spec can only check this when it gives iterations; with epochs it is known once the data is.
    if (rewindStep(spec.rewind) >= config.iterations) {
      throw specError(
        'lottery spec',
        'rewind.step',
        `${rewindStep(spec.rewind)} must be before the end of training (${config.iterations} iterations)`,
      );
    }
    const job: LevelJob = {
      spec,
      model,
      config,
      data,
      strategy: resolvePruning(spec.pruning, model),
      level,
      progressWorkflowId: input.progressWorkflowId,
      healed,
      ...(found.engine ? { engine: found.engine } : {}),
    };
    const r = await (branch
      ? branchLevel(job, branch)
      : level === 0
        ? denseLevel(job, lineageId)
        : trunkLevel(job, lineageId));
    deps.metrics?.level(r.lineageId, r.source, r.level, r.remainingPct);
    if (healed.length === 0) return r;
    deps.log(
      `level ${level} of ${lineageId}: recomputed ${healed.length} damaged or missing object(s): ${healed.join(', ')}`,
    );
    return { ...r, healed };
  }

  return { lotteryLevel: activity(lotteryLevel) };
}
