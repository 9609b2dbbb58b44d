// The distillation activities: plan which teachers' logit sets exist and what makes the missing ones, then train
// the ViT student durably (durable-training.ts: checkpoints, heartbeats, exact resume) on the teachers' stored
// outputs, read with LogitReader in the epoch's order, and publish it as a run under runs/<runId>/.
//
// Healing: a teacher's logit shard or set that is damaged or gone is recomputed from the teacher's weights and the
// dataset (heal-logits.ts) and read again, and a damaged stored student is trained again; the keys are logged and
// returned in the result's `healed`. The student reads the same bytes either way, so its result is the one an
// undisturbed run gives on the same backend.
import * as tf from '@tensorflow/tfjs-core';

import { distillRunId, trainRunId } from '../contract/ids';
import {
  parseDistillSpec,
  type DistillActivityInput,
  type DistillPlanInput,
  type DistillResult,
  type DistillSpec,
  type PlannedTeacher,
  type TeacherSource,
  type TeacherSpec,
} from '../contract/distill';
import { augmentationLabel, parsePrecomputeSpec, type PrecomputeSpec } from '../contract/precompute';
import { specError } from '../contract/spec';
import { parseTrainSpec, toTrainConfig } from '../contract/train';
import { epochOrder, imageSize, loadDataset, type Dataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import {
  crossEntropyToLabels,
  distillationTotal,
  distillTokensFor,
  objectiveFor,
  type DistillObjective,
  type TeacherTargets,
} from '../ml/distill';
import { getModel, vitModel, type ModelDef, type VitModelDef } from '../ml/models';
import { fromHost } from '../ml/tensors';
import { stepsPerEpoch, type StepObjective, type TrainConfig } from '../ml/train';
import { LogitReader, type LogitBatch } from '../store';
import { runDurableTraining, type DurableTrainingDeps } from './durable-training';
import { activity } from './failures';
import { logitSetKeysFor } from './logits';
import { createLogitHealer, type LogitHealer } from './heal-logits';
import { publishTrainRun, readOrHealTrainRun, readTrainRun } from './run-records';

/** The student's training data: the train split of its dataset, limited as its spec says. */
function studentData(spec: DistillSpec): { train: Dataset; test: Dataset } {
  return {
    train: loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit }),
    test: loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit }),
  };
}

/** The spec's objective: its KD mode over its teachers, and the feature term naming its teacher by index. */
export function distillObjective(spec: DistillSpec): DistillObjective {
  const f = spec.kd.features;
  return objectiveFor(spec.kd.mode, spec.teachers.length, {
    ...spec.kd,
    features: f
      ? { teacher: spec.teachers.findIndex((t) => t.name === f.teacher), weight: f.weight }
      : undefined,
  });
}

/** The feature-distillation teacher's model (the spec validated that it is given by a training spec). */
function featureTeacherModel(spec: DistillSpec): ModelDef | null {
  const f = spec.kd.features;
  const teacher = f ? spec.teachers.find((t) => t.name === f.teacher) : undefined;
  return teacher && 'train' in teacher ? getModel(teacher.train.model) : null;
}

/**
 * The student: the registered ViT with the spec's changes, one distillation token per term's head, and with feature
 * distillation a projection of its patch tokens to the teacher's channels (the patch grid must be the map's).
 */
export function studentModel(spec: DistillSpec): VitModelDef {
  const base = getModel(spec.train.model) as VitModelDef;
  if (!base.config) throw specError('distill spec', 'train.model', `${spec.train.model} is not a ViT`);
  const teacher = featureTeacherModel(spec);
  const map = teacher?.featureShape;
  const student = vitModel(spec.train.model, {
    ...base.config,
    ...spec.student,
    distillTokens: distillTokensFor(distillObjective(spec)),
    ...(map ? { featureChannels: map[2] } : {}),
  });
  if (map && (map[0] !== student.grid || map[1] !== student.grid)) {
    throw specError(
      'distill spec',
      'student.patch',
      `patch ${student.config.patch} makes a ${student.grid}×${student.grid} grid of patches, ` +
        `${teacher.name}'s feature map is ${map[0]}×${map[1]}: feature distillation pairs them position by position`,
    );
  }
  return student;
}

/** The batch's images as stored (no view). */
function batchImages(data: Dataset, indices: Int32Array): Float32Array {
  const size = imageSize(data);
  const out = new Float32Array(indices.length * size);
  indices.forEach((i, j) => out.set(data.images.subarray(i * size, (i + 1) * size), j * size));
  return out;
}

/**
 * Reads each batch's teacher targets in the epoch's order: a LogitReader generator over the rest of the epoch,
 * started where the batch asked for is (so a resumed run prefetches from its resume point), restarted when a batch
 * is not the one it expects. A shard found damaged or missing is recomputed (`heal`) and the batch read again: it
 * then gets the very bytes it would have got, so the training goes on as if nothing had happened.
 */
function storedTargets(
  reader: LogitReader,
  data: Dataset,
  seed: number,
  batchSize: number,
  heal: (err: unknown) => Promise<void>,
) {
  let stream: { epoch: number; next: number; it: AsyncGenerator<LogitBatch> } | null = null;
  const nextBatch = async (indices: Int32Array, epoch: number): Promise<IteratorResult<LogitBatch>> => {
    const order = epochOrder(data.n, seed, epoch);
    const at = order.indexOf(indices[0] as number);
    if (!stream || stream.epoch !== epoch || stream.next !== at) {
      await stream?.it.return(undefined);
      stream = { epoch, next: at, it: reader.batches(order.subarray(at), batchSize) };
    }
    return stream.it.next();
  };
  return async (indices: Int32Array, epoch: number): Promise<LogitBatch> => {
    let r: IteratorResult<LogitBatch>;
    for (;;) {
      try {
        r = await nextBatch(indices, epoch);
        break;
      } catch (err) {
        // The generator ended with the error: the next try starts a new one at this batch.
        stream = null;
        await heal(err);
      }
    }
    if (!stream) throw new Error('internal: no stored-target stream after a batch was read');
    if (r.done || r.value.indices.length !== indices.length || r.value.indices[0] !== indices[0]) {
      throw new Error(
        `internal: the stored-target stream is out of step with the batch at sample ${indices[0]}`,
      );
    }
    stream.next += indices.length;
    return r.value;
  };
}

/** The teachers' outputs for one batch, and the view of the images the student (and an online teacher) sees. */
interface BatchTargets {
  teachers: TeacherTargets[];
  /** The feature teacher's map at the batch's samples, [B, h·w, c]. */
  features?: tf.Tensor3D;
  images?: Float32Array;
}

/**
 * The precompute of a teacher's outputs (its logits, or for the feature teacher its feature maps) on exactly the
 * student's training samples and the views of `epoch`: what the plan schedules, and what a damaged set is recomputed
 * from.
 */
export function teacherSetSpec(
  spec: DistillSpec,
  t: Extract<TeacherSpec, { train: unknown }>,
  epoch: number,
  outputs: 'logits' | 'features',
): PrecomputeSpec {
  return parsePrecomputeSpec({
    experiment: spec.experiment,
    teacher: { name: t.name, train: t.train },
    dataset: spec.train.dataset,
    split: 'train',
    ...(spec.train.trainLimit !== undefined ? { limit: spec.train.trainLimit } : {}),
    augmentation: {
      ...spec.augmentation,
      epoch: spec.augmentation.policy === 'none' ? 0 : epoch,
    },
    ...(outputs === 'features'
      ? { outputs, format: spec.kd.features?.format ?? 'float16' }
      : { format: t.format, ...(t.k !== undefined ? { k: t.k } : {}) }),
    heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
  });
}

export function createDistillActivities(deps: DurableTrainingDeps) {
  const { store } = deps;

  async function plan(spec: DistillSpec): Promise<PlannedTeacher[]> {
    // A student that cannot be built (a patch grid that is not the feature map's) fails here, before any teacher runs.
    studentModel(spec);
    await store.ensureBucket();
    const n = studentData(spec).train.n;
    const config = toTrainConfig(spec.train, n);
    // Every epoch sees other views under a random policy: a logit set per epoch; otherwise one serves them all.
    const epochs =
      spec.augmentation.policy === 'none'
        ? 1
        : Math.ceil(config.iterations / stepsPerEpoch(n, config.batchSize));
    return Promise.all(
      spec.teachers.map(async (t, i): Promise<PlannedTeacher> => {
        if ('logits' in t) {
          if (!(await store.exists(t.logits))) {
            throw specError(
              'distill spec',
              `teachers.${i}.logits`,
              `no logit set '${t.logits}' in the store`,
            );
          }
          return { name: t.name, manifestKeys: [t.logits], trainRunId: null, precompute: [] };
        }
        const runId = trainRunId(t.train);
        const run = await readTrainRun(store, runId);
        const train = run
          ? undefined
          : parseTrainSpec({
              experiment: spec.experiment,
              train: t.train,
              checkpointEvery: spec.checkpointEvery,
              heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
            });
        if (spec.targets === 'online') {
          return {
            name: t.name,
            manifestKeys: [],
            trainRunId: runId,
            ...(train ? { train } : {}),
            precompute: [],
          };
        }
        const setsOf = (outputs: 'logits' | 'features') =>
          Promise.all(
            Array.from({ length: epochs }, async (_, epoch) => {
              const p = teacherSetSpec(spec, t, epoch, outputs);
              const key = run ? logitSetKeysFor(p, run.weights.sha256, n).manifestKey : null;
              return { epoch, spec: p, key: key !== null && (await store.exists(key)) ? key : null };
            }),
          );
        const sets = await setsOf('logits');
        const featureSets = spec.kd.features?.teacher === t.name ? await setsOf('features') : null;
        const missing = [...sets, ...(featureSets ?? [])].filter((s) => s.key === null);
        return {
          name: t.name,
          manifestKeys: sets.map((s) => s.key),
          trainRunId: runId,
          ...(train ? { train } : {}),
          ...(featureSets ? { featureKeys: featureSets.map((s) => s.key) } : {}),
          precompute: missing.map(({ epoch, spec: p }) => ({ epoch, spec: p })),
        };
      }),
    );
  }

  /**
   * A reader of one epoch's stored sets (logits of every teacher, or the feature teacher's maps), checked against the
   * student's data, and a stream of it along the epoch's order.
   */
  async function storedStream(
    spec: DistillSpec,
    keys: string[],
    epoch: number,
    data: Dataset,
    config: TrainConfig,
    outputs: 'logits' | 'features',
    healer: LogitHealer,
  ) {
    const identity = {
      dataset: spec.train.dataset,
      split: 'train',
      augmentation: augmentationLabel({
        ...spec.augmentation,
        epoch: spec.augmentation.policy === 'none' ? 0 : epoch,
      }),
    };
    // Opening checks each manifest and the checksums recorded with its shards: what is damaged or gone is
    // recomputed, then the sets are opened again.
    let reader: LogitReader | null = null;
    while (!reader) {
      try {
        reader = await LogitReader.open(store, keys, identity, { outputs });
      } catch (err) {
        await healer.heal(keys, err);
      }
    }
    // Stored outputs of other samples would be silently wrong targets (the reader checked the sets agree).
    if (reader.sampleCount !== data.n) {
      throw specError(
        'distill spec',
        outputs === 'features' ? 'kd.features' : 'teachers',
        `the ${outputs === 'features' ? 'feature-map' : 'logit'} sets cover ${reader.sampleCount} samples, the student trains on ${data.n} (train.trainLimit)`,
      );
    }
    return storedTargets(reader, data, config.seed, config.batchSize, (err) => healer.heal(keys, err));
  }

  /** Each batch's stored targets: the sets of its epoch (logits, and feature maps), read along the epoch's order. */
  async function storedObjective(
    spec: DistillSpec,
    sources: TeacherSource[],
    data: Dataset,
    config: TrainConfig,
    healer: LogitHealer,
  ) {
    const streams = new Map<string, ReturnType<typeof storedTargets>>();
    /** The batch's rows of the sets `keys` hold for this epoch (one set per epoch, or one for all). */
    const read = async (
      keys: string[][],
      indices: Int32Array,
      epoch: number,
      outputs: 'logits' | 'features',
    ) => {
      const sets = keys.map((k) => (k.length === 1 ? k[0] : k[epoch]));
      if (sets.some((k) => k === undefined)) {
        throw specError(
          'distill spec',
          outputs === 'features' ? 'kd.features' : 'teachers',
          `no stored ${outputs} set for epoch ${epoch} (the plan made ${keys[0]?.length})`,
        );
      }
      const id = `${outputs}:${sets.join('|')}`;
      let stream = streams.get(id);
      if (!stream) {
        stream = await storedStream(spec, sets as string[], epoch, data, config, outputs, healer);
        streams.set(id, stream);
      }
      return (await stream(indices, epoch)).teachers;
    };
    const featureKeys = sources.find((t) => t.featureKeys !== undefined)?.featureKeys;
    const map = featureTeacherModel(spec)?.featureShape;
    if (spec.kd.features && (!featureKeys || !map)) {
      throw specError(
        'distill spec',
        'kd.features.teacher',
        'the plan gave no feature-map sets for this teacher',
      );
    }
    return async (indices: Int32Array, epoch: number): Promise<Omit<BatchTargets, 'images'>> => {
      const logits = await read(
        sources.map((t) => t.manifestKeys),
        indices,
        epoch,
        'logits',
      );
      const teachers = logits.map((t) => ({
        kind: t.kind,
        values: tf.tensor2d(t.values, [indices.length, t.classes]),
      }));
      if (!featureKeys || !map) return { teachers };
      const [rows] = await read([featureKeys], indices, epoch, 'features');
      return {
        teachers,
        features: tf.tensor3d((rows as (typeof logits)[number]).values, [
          indices.length,
          map[0] * map[1],
          map[2],
        ]),
      };
    };
  }

  /** Online targets: each teacher's weights on the device once, run forward on every batch's view. */
  async function onlineTeachers(spec: DistillSpec, sources: TeacherSource[]) {
    const teachers = await Promise.all(
      sources.map(async (t, i) => {
        const given = spec.teachers[i];
        const run = t.trainRunId ? await readTrainRun(store, t.trainRunId) : null;
        if (!given || !('train' in given) || !run) {
          throw specError('distill spec', `teachers.${i}`, `teacher ${t.name} has no finished training run`);
        }
        const { tensors } = await store.getTensors(run.weights.key, { expectSha256: run.weights.sha256 });
        const model = getModel(given.train.model);
        return {
          name: given.name,
          model,
          params: Object.fromEntries(Object.entries(tensors).map(([n, h]) => [n, fromHost(h)])),
        };
      }),
    );
    const featureTeacher = teachers.find((t) => t.name === spec.kd.features?.teacher);
    return {
      forward: (images: Float32Array, b: number): Omit<BatchTargets, 'images'> =>
        tf.tidy(() => {
          const inputs = teachers.map(({ model }) => tf.tensor(images, [b, ...model.inputShape]));
          const out: Omit<BatchTargets, 'images'> = {
            teachers: teachers.map(({ model, params }, i) => ({
              kind: 'logits' as const,
              values: model.forward(params, inputs[i] as tf.Tensor, false),
            })),
          };
          if (featureTeacher?.model.features) {
            const map = featureTeacher.model.features(featureTeacher.params, inputs[0] as tf.Tensor);
            const [, h, w, c] = map.shape;
            out.features = tf.reshape(map, [b, h * w, c]) as tf.Tensor3D;
          }
          return out as unknown as tf.TensorContainer;
        }) as unknown as Omit<BatchTargets, 'images'>,
      dispose: () => teachers.forEach((t) => tf.dispose(Object.values(t.params))),
    };
  }

  /**
   * The precompute spec of the stored set `manifestKey` of this distillation: the teacher (given by its training
   * spec) and epoch whose set it is, checked against the key that spec gives with the teacher's weights now; null
   * when no teacher's training spec makes it (a set given by its key).
   */
  async function derivedSet(
    spec: DistillSpec,
    sources: TeacherSource[],
    n: number,
    manifestKey: string,
  ): Promise<PrecomputeSpec | null> {
    for (const [i, source] of sources.entries()) {
      const t = spec.teachers[i];
      if (!t || !('train' in t)) continue;
      const candidates = [
        { outputs: 'logits' as const, epoch: source.manifestKeys.indexOf(manifestKey) },
        { outputs: 'features' as const, epoch: source.featureKeys?.indexOf(manifestKey) ?? -1 },
      ].filter((c) => c.epoch >= 0);
      if (candidates.length === 0) continue;
      // A damaged teacher run fails here, naming its key: the set's input is gone.
      const run = await readTrainRun(store, trainRunId(t.train));
      for (const { outputs, epoch } of candidates) {
        const p = teacherSetSpec(spec, t, epoch, outputs);
        if (run && logitSetKeysFor(p, run.weights.sha256, n).manifestKey === manifestKey) return p;
      }
    }
    return null;
  }

  async function distill(input: DistillActivityInput): Promise<DistillResult> {
    const spec = parseDistillSpec(input.spec);
    if (input.teachers.length !== spec.teachers.length) {
      throw new Error(
        `internal: ${input.teachers.length} teacher sources for ${spec.teachers.length} teachers`,
      );
    }
    const runId = distillRunId(spec, input.teachers);
    await store.ensureBucket();
    // The split is loaded again only if a set needs healing: a reused result needs no data at all.
    const healer = createLogitHealer(deps, (key) =>
      derivedSet(spec, input.teachers, studentData(spec).train.n, key),
    );
    // A damaged stored student (its manifest, weights or metrics) is trained again where this worker reproduces it.
    let engine: 'tape' | 'graph' | undefined;
    const finished = await readOrHealTrainRun(store, runId, {
      backend: deps.backend,
      what: `the distillation ${runId}`,
      healing: (key, why, recorded) => {
        deps.log(`healing '${key}': ${why}; training the student again`);
        healer.healed.push(key);
        engine = recorded;
      },
    });
    if (finished) {
      deps.log(`distillation ${runId} already finished; returning its stored result`);
      return { ...finished, reused: true, resumedFromStep: finished.steps, teachers: input.teachers };
    }
    const data = studentData(spec);
    const config = toTrainConfig(spec.train, data.train.n);
    const model = studentModel(spec);
    const objectiveDef = distillObjective(spec);
    const augmented = spec.augmentation.policy !== 'none';
    const view = (indices: Int32Array, epoch: number) =>
      augmented ? augmentImages(data.train, indices, spec.augmentation, epoch) : undefined;
    const online =
      spec.targets === 'online' && input.teachers.length > 0
        ? await onlineTeachers(spec, input.teachers)
        : null;
    try {
      let objective: StepObjective<unknown> | undefined;
      if (input.teachers.length > 0) {
        const stored = online
          ? null
          : await storedObjective(spec, input.teachers, data.train, config, healer);
        const def: StepObjective<BatchTargets> = {
          async prepare(indices, epoch) {
            const images = view(indices, epoch);
            const targets = online
              ? online.forward(images ?? batchImages(data.train, indices), indices.length)
              : await (stored as NonNullable<typeof stored>)(indices, epoch);
            return { ...targets, ...(images ? { images } : {}) };
          },
          images: (_indices, _epoch, extras) => extras.images as Float32Array,
          loss(m, params, batch) {
            const { heads, patches } = (m as VitModelDef).tokenOutputs(params, batch.x, true, batch.noise);
            const teacherMap = batch.extras.features;
            return distillationTotal(
              heads,
              batch.labelTensor,
              batch.extras.teachers,
              objectiveDef,
              patches && teacherMap ? { student: patches, teacher: teacherMap } : undefined,
            );
          },
          // Everything the loss reads from the batch's targets: with it, the step may run as one graph.
          feeds: (extras) => ({
            ...Object.fromEntries(extras.teachers.map((t, i) => [`teacher/${i}`, t.values])),
            ...(extras.features ? { features: extras.features } : {}),
          }),
          release(extras) {
            tf.dispose(extras.teachers.map((t) => t.values));
            extras.features?.dispose();
          },
        };
        if (!augmented) delete def.images;
        objective = def as StepObjective<unknown>;
      } else if (augmented) {
        objective = {
          prepare: async (indices, epoch) => view(indices, epoch),
          images: (_i, _e, extras) => extras as Float32Array,
          loss: (m, params, batch) =>
            crossEntropyToLabels(
              (m as VitModelDef).tokenLogits(params, batch.x, true, batch.noise)[0] as tf.Tensor2D,
              batch.labelTensor,
            ),
          feeds: () => ({}),
        };
      }
      const outcome = await runDurableTraining(deps, {
        runId,
        config,
        data,
        model,
        ...(objective ? { objective } : {}),
        start: { weights: model.init(config.seed) },
        ...(engine ? { engine } : {}),
        checkpointEvery: spec.checkpointEvery,
        progress: input.progressWorkflowId
          ? { workflowId: input.progressWorkflowId, signal: 'trainProgress' }
          : null,
      });
      const published = await publishTrainRun(
        store,
        runId,
        { spec: { kind: 'distill', spec, teachers: input.teachers, student: model.config }, config },
        outcome,
      );
      await outcome.removeCheckpoints();
      const { healed } = healer;
      if (healed.length > 0)
        deps.log(
          `distillation ${runId}: recomputed ${healed.length} damaged or missing object(s): ${healed.join(', ')}`,
        );
      return {
        ...published,
        reused: false,
        resumedFromStep: outcome.resumedFromStep,
        teachers: input.teachers,
        ...(healed.length > 0 ? { healed: [...healed] } : {}),
      };
    } finally {
      online?.dispose();
    }
  }

  return {
    planDistill: activity(async (input: DistillPlanInput) => plan(parseDistillSpec(input.spec))),
    distill: activity(distill),
  };
}
