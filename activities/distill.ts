// The distillation activities: plan which teachers' logit sets exist and what makes the missing ones, then train
// the ViT student durably (durable-training.ts: checkpoints, heartbeats, exact resume) on the teachers' stored
// outputs, read with LogitReader in the epoch's order, and publish it as a run under runs/<runId>/.
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
} from '../contract/distill';
import { augmentationLabel, parsePrecomputeSpec } from '../contract/precompute';
import { specError } from '../contract/spec';
import { parseTrainSpec, toTrainConfig } from '../contract/train';
import { epochOrder, IMAGE_SIZE, loadDataset, type Dataset } from '../ml/data';
import { augmentImages } from '../ml/data/augment';
import {
  crossEntropyToLabels,
  distillationTotal,
  distillTokensFor,
  objectiveFor,
  type TeacherTargets,
} from '../ml/distill';
import { getModel, vitModel, type VitModelDef } from '../ml/models';
import { fromHost } from '../ml/tensors';
import { stepsPerEpoch, type StepObjective, type TrainConfig } from '../ml/train';
import { LogitReader, type LogitBatch } from '../store';
import { runDurableTraining, type DurableTrainingDeps } from './durable-training';
import { activity } from './failures';
import { logitSetKeysFor } from './logits';
import { publishTrainRun, readTrainRun } from './run-records';

/** The student's training data: the train split of its dataset, limited as its spec says. */
function studentData(spec: DistillSpec): { train: Dataset; test: Dataset } {
  return {
    train: loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit }),
    test: loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit }),
  };
}

/** The student: the registered ViT with the spec's changes and one distillation token per term's head. */
export function studentModel(spec: DistillSpec): VitModelDef {
  const base = getModel(spec.train.model) as VitModelDef;
  if (!base.config) throw specError('distill spec', 'train.model', `${spec.train.model} is not a ViT`);
  const objective = objectiveFor(spec.kd.mode, spec.teachers.length, spec.kd);
  return vitModel(spec.train.model, {
    ...base.config,
    ...spec.student,
    distillTokens: distillTokensFor(objective),
  });
}

/** The batch's images as stored (no view). */
function batchImages(data: Dataset, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * IMAGE_SIZE);
  indices.forEach((i, j) =>
    out.set(data.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE), j * IMAGE_SIZE),
  );
  return out;
}

/**
 * Reads each batch's teacher targets in the epoch's order: a LogitReader generator over the rest of the epoch,
 * started where the batch asked for is (so a resumed run prefetches from its resume point), restarted when a batch
 * is not the one it expects.
 */
function storedTargets(reader: LogitReader, data: Dataset, seed: number, batchSize: number) {
  let stream: { epoch: number; next: number; it: AsyncGenerator<LogitBatch> } | null = null;
  return async (indices: Int32Array, epoch: number): Promise<LogitBatch> => {
    const order = epochOrder(data.n, seed, epoch);
    const at = order.indexOf(indices[0] as number);
    if (!stream || stream.epoch !== epoch || stream.next !== at) {
      await stream?.it.return(undefined);
      stream = { epoch, next: at, it: reader.batches(order.subarray(at), batchSize) };
    }
    const r = await stream.it.next();
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
  images?: Float32Array;
}

export function createDistillActivities(deps: DurableTrainingDeps) {
  const { store } = deps;

  async function plan(spec: DistillSpec): Promise<PlannedTeacher[]> {
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
        // The teacher's outputs on exactly the student's training samples and views.
        const sets = await Promise.all(
          Array.from({ length: epochs }, async (_, epoch) => {
            const p = parsePrecomputeSpec({
              experiment: spec.experiment,
              teacher: { name: t.name, train: t.train },
              dataset: spec.train.dataset,
              split: 'train',
              ...(spec.train.trainLimit !== undefined ? { limit: spec.train.trainLimit } : {}),
              augmentation: { ...spec.augmentation, epoch: spec.augmentation.policy === 'none' ? 0 : epoch },
              format: t.format,
              ...(t.k !== undefined ? { k: t.k } : {}),
              heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
            });
            const key = run ? logitSetKeysFor(p, run.weights.sha256, n).manifestKey : null;
            return { epoch, spec: p, key: key !== null && (await store.exists(key)) ? key : null };
          }),
        );
        return {
          name: t.name,
          manifestKeys: sets.map((s) => s.key),
          trainRunId: runId,
          ...(train ? { train } : {}),
          precompute: sets.filter((s) => s.key === null).map(({ epoch, spec: p }) => ({ epoch, spec: p })),
        };
      }),
    );
  }

  /** Each batch's stored targets: the logit sets of its epoch, read along the epoch's order. */
  async function storedObjective(
    spec: DistillSpec,
    sources: TeacherSource[],
    data: Dataset,
    config: TrainConfig,
  ) {
    const streams = new Map<string, ReturnType<typeof storedTargets>>();
    return async (indices: Int32Array, epoch: number): Promise<TeacherTargets[]> => {
      const keys = sources.map((t) =>
        t.manifestKeys.length === 1 ? t.manifestKeys[0] : t.manifestKeys[epoch],
      );
      if (keys.some((k) => k === undefined)) {
        throw specError(
          'distill spec',
          'teachers',
          `no logit set for epoch ${epoch} (the plan made ${sources[0]?.manifestKeys.length})`,
        );
      }
      const id = keys.join('|');
      let stream = streams.get(id);
      if (!stream) {
        const reader = await LogitReader.open(store, keys as string[], {
          dataset: spec.train.dataset,
          split: 'train',
          augmentation: augmentationLabel({
            ...spec.augmentation,
            epoch: spec.augmentation.policy === 'none' ? 0 : epoch,
          }),
        });
        // Stored outputs of other samples would be silently wrong targets (the reader checked the sets agree).
        if (reader.sampleCount !== data.n) {
          throw specError(
            'distill spec',
            'teachers',
            `the logit sets cover ${reader.sampleCount} samples, the student trains on ${data.n} (train.trainLimit)`,
          );
        }
        stream = storedTargets(reader, data, config.seed, config.batchSize);
        streams.set(id, stream);
      }
      const batch = await stream(indices, epoch);
      return batch.teachers.map((t) => ({
        kind: t.kind,
        values: tf.tensor2d(t.values, [indices.length, t.classes]),
      }));
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
          model,
          params: Object.fromEntries(Object.entries(tensors).map(([n, h]) => [n, fromHost(h)])),
        };
      }),
    );
    return {
      forward: (images: Float32Array, b: number): TeacherTargets[] =>
        teachers.map(({ model, params }) => ({
          kind: 'logits' as const,
          values: tf.tidy(() => model.forward(params, tf.tensor(images, [b, ...model.inputShape]), false)),
        })),
      dispose: () => teachers.forEach((t) => tf.dispose(Object.values(t.params))),
    };
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
    const finished = await readTrainRun(store, runId);
    if (finished) {
      deps.log(`distillation ${runId} already finished; returning its stored result`);
      return { ...finished, reused: true, resumedFromStep: finished.steps, teachers: input.teachers };
    }
    const data = studentData(spec);
    const config = toTrainConfig(spec.train, data.train.n);
    const model = studentModel(spec);
    const objectiveDef = objectiveFor(spec.kd.mode, spec.teachers.length, spec.kd);
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
        const stored = online ? null : await storedObjective(spec, input.teachers, data.train, config);
        const def: StepObjective<BatchTargets> = {
          async prepare(indices, epoch) {
            const images = view(indices, epoch);
            if (online) {
              const x = images ?? batchImages(data.train, indices);
              return { teachers: online.forward(x, indices.length), ...(images ? { images } : {}) };
            }
            return {
              teachers: await (stored as NonNullable<typeof stored>)(indices, epoch),
              ...(images ? { images } : {}),
            };
          },
          images: (_indices, _epoch, extras) => extras.images as Float32Array,
          loss(m, params, batch) {
            const heads = (m as VitModelDef).tokenLogits(params, batch.x, true);
            return distillationTotal(
              heads,
              tf.tensor1d(batch.labels, 'int32'),
              batch.extras.teachers,
              objectiveDef,
            );
          },
          release(extras) {
            tf.dispose(extras.teachers.map((t) => t.values));
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
              (m as VitModelDef).tokenLogits(params, batch.x, true)[0] as tf.Tensor2D,
              tf.tensor1d(batch.labels, 'int32'),
            ),
        };
      }
      const outcome = await runDurableTraining(deps, {
        runId,
        config,
        data,
        model,
        ...(objective ? { objective } : {}),
        start: { weights: model.init(config.seed) },
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
      return {
        ...published,
        reused: false,
        resumedFromStep: outcome.resumedFromStep,
        teachers: input.teachers,
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
