// Teacher-logit precompute activities: plan a logit set, compute one shard (or find it already stored and valid),
// publish the manifest last. Keys are content-addressed (store/logit-manifest.ts logitSetKeys), so a rerun with the
// same inputs does no teacher work, and a missing or corrupt shard is recomputed.
import { Context } from '@temporalio/activity';

import { loadDataset, type Dataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import { predictLogits } from '../ml/infer';
import { getModel } from '../ml/models';
import {
  IntegrityError,
  logitSetKeys,
  publishLogitManifest,
  readLogitManifest,
  readLogitShardHeader,
  encodeLogitShard,
  type ArtifactStore,
  type LogitShardRef,
} from '../store';
import {
  augmentationLabel,
  parsePrecomputeSpec,
  type LogitPlan,
  type LogitShardResult,
  type PrecomputeSpec,
} from '../workflows/logits-specs';
import { SpecError } from '../workflows/specs';
import { toActivityFailure, type DurableTrainingDeps } from './durable-training';
import { readTrainRun, trainRunId } from './train';

function datasetOf(spec: PrecomputeSpec): Dataset {
  return loadDataset(spec.dataset ?? spec.teacher.train.dataset, spec.split, { limit: spec.limit });
}

export function createLogitActivities(deps: DurableTrainingDeps) {
  const store: ArtifactStore = deps.store;

  /** The finished teacher run; a teacher that was never trained is a spec problem no retry fixes. */
  async function teacherRun(spec: PrecomputeSpec) {
    const runId = trainRunId(spec.teacher.train);
    const run = await readTrainRun(store, runId);
    if (!run) {
      const msg = `teacher.train: no finished training run ${runId} for this config; train it first (lth train or lth teachers train)`;
      throw new SpecError(`invalid precompute spec:\n  ${msg}`, [msg]);
    }
    return run;
  }

  function setKeys(spec: PrecomputeSpec, weightsSha256: string, sampleCount: number) {
    const model = getModel(spec.teacher.train.model);
    return logitSetKeys({
      teacherWeightsSha256: weightsSha256,
      dataset: spec.dataset ?? spec.teacher.train.dataset,
      split: spec.split,
      augmentation: augmentationLabel(spec.augmentation),
      format: spec.format,
      ...(spec.k !== undefined ? { k: spec.k } : {}),
      classes: model.numClasses,
      sampleCount,
      shardSize: spec.shardSize,
    });
  }

  async function plan(spec: PrecomputeSpec): Promise<LogitPlan> {
    await store.ensureBucket();
    const run = await teacherRun(spec);
    const data = datasetOf(spec);
    const keys = setKeys(spec, run.weights.sha256, data.n);
    let complete = false;
    if (await store.exists(keys.manifestKey)) {
      try {
        await readLogitManifest(store, keys.manifestKey, { verify: 'content' });
        complete = true;
      } catch (err) {
        // A damaged set is recomputed shard by shard (valid shards are kept) and published again.
        deps.log(`logit set ${keys.manifestKey} does not verify, recomputing: ${(err as Error).message}`);
      }
    }
    return {
      teacherRunId: run.runId,
      weightsSha256: run.weights.sha256,
      classes: getModel(spec.teacher.train.model).numClasses,
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
      if (err instanceof IntegrityError || (err as Error).name === 'ArtifactFormatError') {
        deps.log(`shard ${key} is damaged, recomputing it: ${(err as Error).message}`);
        return null;
      }
      throw err;
    }
  }

  async function shard(spec: PrecomputeSpec, index: number): Promise<LogitShardResult> {
    const ctx = Context.current();
    const run = await teacherRun(spec);
    const data = datasetOf(spec);
    const model = getModel(spec.teacher.train.model);
    const keys = setKeys(spec, run.weights.sha256, data.n);
    const start = index * spec.shardSize;
    const end = Math.min(start + spec.shardSize, data.n);
    if (!Number.isInteger(index) || index < 0 || start >= data.n) {
      throw new Error(`internal: shard ${index} is outside the ${data.n} samples`);
    }
    const key = keys.shardKey(index);
    const existing = await validShard(key, spec, model.numClasses, start, end);
    if (existing) return { key, sha256: existing.sha256, bytes: existing.bytes, start, end, skipped: true };

    const weights = (await store.getTensors(run.weights.key, { expectSha256: run.weights.sha256 })).tensors;
    const indices = Int32Array.from({ length: end - start }, (_, i) => start + i);
    const images = augmentImages(data, indices, spec.augmentation, spec.augmentation.epoch);
    const logits = await predictLogits(model.name, weights, images, {
      onBatch: (done) => ctx.heartbeat({ shard: index, done }),
    });
    const body = encodeLogitShard({
      format: spec.format,
      classes: model.numClasses,
      ...(spec.k !== undefined ? { k: spec.k } : {}),
      start,
      logits,
    });
    const ref = await store.putBytes(key, body);
    deps.log(`logit shard ${index} (${start}..${end}) of ${spec.teacher.name}: ${ref.bytes} bytes`);
    return { key, sha256: ref.sha256, bytes: ref.bytes, start, end, skipped: false };
  }

  async function publish(spec: PrecomputeSpec, shards: LogitShardResult[]): Promise<string> {
    const run = await teacherRun(spec);
    const data = datasetOf(spec);
    const keys = setKeys(spec, run.weights.sha256, data.n);
    const refs: LogitShardRef[] = [...shards]
      .sort((a, b) => a.start - b.start)
      .map(({ key, sha256, bytes, start, end }) => ({ key, sha256, bytes, start, end }));
    await publishLogitManifest(store, keys.manifestKey, {
      teacher: { name: spec.teacher.name, weightsSha256: run.weights.sha256 },
      dataset: spec.dataset ?? spec.teacher.train.dataset,
      split: spec.split,
      augmentation: augmentationLabel(spec.augmentation),
      format: spec.format,
      ...(spec.k !== undefined ? { k: spec.k } : {}),
      classes: getModel(spec.teacher.train.model).numClasses,
      sampleCount: data.n,
      shardSize: spec.shardSize,
      shards: refs,
    });
    return keys.manifestKey;
  }

  const guarded =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      try {
        return await f(...a);
      } catch (err) {
        throw toActivityFailure(err);
      }
    };

  return {
    planLogits: guarded(async (input: { spec: unknown }) => plan(parsePrecomputeSpec(input.spec))),
    precomputeLogitShard: guarded(async (input: { spec: unknown; shard: number }) =>
      shard(parsePrecomputeSpec(input.spec), input.shard),
    ),
    publishLogits: guarded(async (input: { spec: unknown; shards: LogitShardResult[] }) =>
      publish(parsePrecomputeSpec(input.spec), input.shards),
    ),
  };
}
