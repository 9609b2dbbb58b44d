// Teacher-logit precompute activities: plan a logit set, compute one shard (or find it already stored and valid),
// publish the manifest last. Keys are content-addressed (store/logit-manifest.ts logitSetKeys), so a rerun with the
// same inputs does no teacher work, and a missing or corrupt shard is recomputed. The computation itself
// (createLogitSets) is shared with the distillation, which recomputes a damaged set it meets (heal-logits.ts) by
// exactly this code, so that a healed shard has the bytes the precompute gave it.
import { Context } from '@temporalio/activity';

import { loadDataset, type Dataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { outputWidth, predictLogits } from '../ml/infer';
import { getModel } from '../ml/models';
import {
  logitSetKeys,
  publishLogitManifest,
  readLogitManifest,
  readLogitShardHeader,
  encodeLogitShard,
  type ArtifactStore,
  type LogitShardRef,
} from '../store';
import { trainRunId } from '../contract/ids';
import {
  augmentationLabel,
  parsePrecomputeSpec,
  type LogitPlan,
  type LogitPlanRef,
  type LogitShardInput,
  type LogitShardResult,
  type PlanLogitsInput,
  type PrecomputeSpec,
  type PublishLogitsInput,
} from '../contract/precompute';
import { specError } from '../contract/spec';
import type { DurableTrainingDeps } from './durable-training';
import { activity } from './failures';
import { isDamage } from './heal';
import { readTrainRun } from './run-records';

/** Values stored per sample: the teacher's classes, or the size of its feature map. */
function widthOf(spec: PrecomputeSpec): number {
  return outputWidth(spec.teacher.train.model, spec.outputs ?? 'logits');
}

/** The fields besides the teacher that identify the logit set a precompute spec produces over this many samples. */
function logitSetIdentity(spec: PrecomputeSpec, sampleCount: number) {
  const shape = getModel(spec.teacher.train.model).featureShape;
  return {
    dataset: spec.dataset ?? spec.teacher.train.dataset,
    split: spec.split,
    augmentation: augmentationLabel(spec.augmentation),
    format: spec.format,
    ...(spec.k !== undefined ? { k: spec.k } : {}),
    classes: widthOf(spec),
    sampleCount,
    shardSize: spec.shardSize,
    // Only feature sets name what they hold: logit sets keep the identity (and the keys) they always had.
    ...(spec.outputs === 'features' && shape ? { outputs: 'features' as const, shape: [...shape] } : {}),
  };
}

/** The keys of the logit set a precompute spec produces with these teacher weights over this many samples. */
export function logitSetKeysFor(spec: PrecomputeSpec, weightsSha256: string, sampleCount: number) {
  return logitSetKeys({ teacherWeightsSha256: weightsSha256, ...logitSetIdentity(spec, sampleCount) });
}

type Weights = Awaited<ReturnType<ArtifactStore['getTensors']>>['tensors'];

/** One shard's encoded bytes, not yet stored. */
export interface ComputedShard {
  key: string;
  body: Uint8Array;
  start: number;
  end: number;
}

/**
 * The logit-set computation, without Temporal: plan, one shard (found valid or computed), publish. `onBatch` is told
 * each batch the teacher finished (the activity heartbeats it).
 */
export function createLogitSets(deps: Pick<DurableTrainingDeps, 'store' | 'log'>) {
  const store: ArtifactStore = deps.store;

  // A worker computes shard after shard of the same set: it keeps the last split it normalised and the last
  // weights it downloaded (one of each: a 60k-image split is ~190 MB of floats) instead of redoing both per shard.
  let lastData: { key: string; data: Dataset } | null = null;
  let lastWeights: { sha256: string; weights: Weights } | null = null;

  function datasetOf(spec: PrecomputeSpec): Dataset {
    const name = spec.dataset ?? spec.teacher.train.dataset;
    const key = JSON.stringify([name, spec.split, spec.limit ?? null]);
    if (lastData?.key !== key) lastData = { key, data: loadDataset(name, spec.split, { limit: spec.limit }) };
    return lastData.data;
  }

  async function weightsOf(ref: { key: string; sha256: string }): Promise<Weights> {
    if (lastWeights?.sha256 !== ref.sha256) {
      lastWeights = null;
      const { tensors } = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
      lastWeights = { sha256: ref.sha256, weights: tensors };
    }
    return lastWeights.weights;
  }

  /** The plan's values, or (for a shard scheduled by a workflow started before plans travelled) looked up. */
  async function planRefOf(spec: PrecomputeSpec, given: LogitPlanRef | undefined): Promise<LogitPlanRef> {
    if (given) return given;
    const run = await teacherRun(spec);
    return { weights: run.weights, sampleCount: datasetOf(spec).n };
  }

  /** The finished teacher run; a teacher that was never trained is a spec problem no retry fixes. */
  async function teacherRun(spec: PrecomputeSpec) {
    const runId = trainRunId(spec.teacher.train);
    const run = await readTrainRun(store, runId);
    if (!run) {
      throw specError(
        'precompute spec',
        'teacher.train',
        `no finished training run ${runId} for this config; train it first (lth train or lth teachers train)`,
      );
    }
    return run;
  }

  async function plan(spec: PrecomputeSpec): Promise<LogitPlan> {
    await store.ensureBucket();
    const run = await teacherRun(spec);
    const data = datasetOf(spec);
    const keys = logitSetKeysFor(spec, run.weights.sha256, data.n);
    let complete = false;
    if (await store.exists(keys.manifestKey)) {
      try {
        await readLogitManifest(store, keys.manifestKey, { verify: 'content' });
        complete = true;
      } catch (err) {
        // A damaged set is recomputed shard by shard (valid shards are kept) and published again; a store that
        // does not answer says nothing about the set, and is retried as the transient fault it is.
        if (!isDamage(err)) throw err;
        deps.log(`logit set ${keys.manifestKey} does not verify, recomputing: ${(err as Error).message}`);
      }
    }
    return {
      teacherRunId: run.runId,
      weights: { key: run.weights.key, sha256: run.weights.sha256 },
      weightsSha256: run.weights.sha256,
      classes: widthOf(spec),
      sampleCount: data.n,
      shardCount: Math.ceil(data.n / spec.shardSize),
      manifestKey: keys.manifestKey,
      complete,
    };
  }

  /** The stored shard if it exists, verifies and covers [start, end) in this format; else null. */
  async function validShard(key: string, spec: PrecomputeSpec, classes: number, start: number, end: number) {
    if (!(await store.exists(key))) return null;
    try {
      const { bytes, ref } = await store.getBytes(key);
      readLogitShardHeader(bytes, key, {
        format: spec.format,
        classes,
        ...(spec.k !== undefined ? { k: spec.k } : {}),
        start,
        end,
      });
      return ref;
    } catch (err) {
      if (isDamage(err)) {
        deps.log(`shard ${key} is damaged, recomputing it: ${(err as Error).message}`);
        return null;
      }
      throw err;
    }
  }

  /** Where shard `index` of the set lies, and its key. */
  function shardAt(spec: PrecomputeSpec, index: number, plan: LogitPlanRef) {
    const keys = logitSetKeysFor(spec, plan.weights.sha256, plan.sampleCount);
    const start = index * spec.shardSize;
    const end = Math.min(start + spec.shardSize, plan.sampleCount);
    if (!Number.isInteger(index) || index < 0 || start >= plan.sampleCount) {
      throw new Error(`internal: shard ${index} is outside the ${plan.sampleCount} samples`);
    }
    return { key: keys.shardKey(index), start, end };
  }

  /** Runs the teacher over shard `index`'s samples and encodes the shard; stores nothing. */
  async function computeShard(
    spec: PrecomputeSpec,
    index: number,
    plan: LogitPlanRef,
    onBatch: (done: number) => void = () => undefined,
  ): Promise<ComputedShard> {
    const { key, start, end } = shardAt(spec, index, plan);
    const model = getModel(spec.teacher.train.model);
    const width = widthOf(spec);
    const data = datasetOf(spec);
    if (data.n !== plan.sampleCount) {
      throw new Error(`internal: the plan counted ${plan.sampleCount} samples, the dataset has ${data.n}`);
    }
    const weights = await weightsOf(plan.weights);
    const indices = Int32Array.from({ length: end - start }, (_, i) => start + i);
    const images = augmentImages(data, indices, spec.augmentation, spec.augmentation.epoch);
    const logits = await predictLogits(model.name, weights, images, {
      onBatch,
      outputs: spec.outputs ?? 'logits',
    });
    const body = encodeLogitShard({
      format: spec.format,
      classes: width,
      ...(spec.k !== undefined ? { k: spec.k } : {}),
      start,
      logits,
    });
    return { key, body, start, end };
  }

  /** Shard `index`: the stored one when it is valid, else computed and stored. */
  async function shard(
    spec: PrecomputeSpec,
    index: number,
    given: LogitPlanRef | undefined,
    onBatch?: (done: number) => void,
  ): Promise<LogitShardResult> {
    const plan = await planRefOf(spec, given);
    const { key, start, end } = shardAt(spec, index, plan);
    const existing = await validShard(key, spec, widthOf(spec), start, end);
    if (existing) return { key, sha256: existing.sha256, bytes: existing.bytes, start, end, skipped: true };
    const { body } = await computeShard(spec, index, plan, onBatch);
    const ref = await store.putBytes(key, body);
    deps.log(
      `${spec.outputs === 'features' ? 'feature' : 'logit'} shard ${index} (${start}..${end}) of ${spec.teacher.name}: ${ref.bytes} bytes`,
    );
    return { key, sha256: ref.sha256, bytes: ref.bytes, start, end, skipped: false };
  }

  async function publish(
    spec: PrecomputeSpec,
    shards: LogitShardResult[],
    given: LogitPlanRef | undefined,
  ): Promise<string> {
    const plan = await planRefOf(spec, given);
    const keys = logitSetKeysFor(spec, plan.weights.sha256, plan.sampleCount);
    const refs: LogitShardRef[] = [...shards]
      .sort((a, b) => a.start - b.start)
      .map(({ key, sha256, bytes, start, end }) => ({ key, sha256, bytes, start, end }));
    await publishLogitManifest(store, keys.manifestKey, {
      teacher: { name: spec.teacher.name, weightsSha256: plan.weights.sha256 },
      ...logitSetIdentity(spec, plan.sampleCount),
      shards: refs,
    });
    return keys.manifestKey;
  }

  return { plan, planRefOf, shard, computeShard, publish };
}

export type LogitSets = ReturnType<typeof createLogitSets>;

export function createLogitActivities(deps: DurableTrainingDeps) {
  const sets = createLogitSets(deps);
  return {
    planLogits: activity(async (input: PlanLogitsInput) => sets.plan(parsePrecomputeSpec(input.spec))),
    precomputeLogitShard: activity(async (input: LogitShardInput) => {
      const ctx = Context.current();
      return sets.shard(parsePrecomputeSpec(input.spec), input.shard, input.plan, (done) =>
        ctx.heartbeat({ shard: input.shard, done }),
      );
    }),
    publishLogits: activity(async (input: PublishLogitsInput) =>
      sets.publish(parsePrecomputeSpec(input.spec), input.shards, input.plan),
    ),
  };
}
