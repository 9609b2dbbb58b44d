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
} from '../contract/distill';
import { parsePrecomputeSpec } from '../contract/precompute';
import { specError } from '../contract/spec';
import { parseTrainSpec, toTrainConfig } from '../contract/train';
import { loadDataset, epochOrder, type Dataset } from '../ml/data';
import { distillationTotal, distillTokensFor, objectiveFor, type TeacherTargets } from '../ml/distill';
import { getModel, vitModel, type VitModelDef } from '../ml/models';
import type { StepObjective } from '../ml/train';
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

export function createDistillActivities(deps: DurableTrainingDeps) {
  const { store } = deps;

  async function plan(spec: DistillSpec): Promise<PlannedTeacher[]> {
    await store.ensureBucket();
    const n = studentData(spec).train.n;
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
          return { name: t.name, manifestKey: t.logits };
        }
        const trainSpec = parseTrainSpec({
          experiment: spec.experiment,
          train: t.train,
          checkpointEvery: spec.checkpointEvery,
          heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
        });
        // The teacher's outputs on exactly the student's training samples.
        const precomputeSpec = parsePrecomputeSpec({
          experiment: spec.experiment,
          teacher: { name: t.name, train: t.train },
          dataset: spec.train.dataset,
          split: 'train',
          ...(spec.train.trainLimit !== undefined ? { limit: spec.train.trainLimit } : {}),
          format: t.format,
          ...(t.k !== undefined ? { k: t.k } : {}),
          heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
        });
        const run = await readTrainRun(store, trainRunId(t.train));
        if (run) {
          const { manifestKey } = logitSetKeysFor(precomputeSpec, run.weights.sha256, n);
          if (await store.exists(manifestKey)) return { name: t.name, manifestKey };
        }
        return {
          name: t.name,
          manifestKey: null,
          make: { train: trainSpec, precompute: precomputeSpec },
        };
      }),
    );
  }

  async function distill(input: DistillActivityInput): Promise<DistillResult> {
    const spec = parseDistillSpec(input.spec);
    if (input.teachers.length !== spec.teachers.length) {
      throw new Error(`internal: ${input.teachers.length} teacher sets for ${spec.teachers.length} teachers`);
    }
    const keys = input.teachers.map((t) => t.manifestKey);
    const runId = distillRunId(spec, keys);
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
    let objective: StepObjective<unknown> | undefined;
    if (keys.length > 0) {
      const reader = await LogitReader.open(store, keys, {
        dataset: spec.train.dataset,
        split: 'train',
        augmentation: { policy: 'none', seed: 0 },
      });
      // Stored outputs of other samples would be silently wrong targets (the reader checked the sets agree).
      if (reader.sampleCount !== data.train.n) {
        throw specError(
          'distill spec',
          'teachers',
          `the logit sets cover ${reader.sampleCount} samples, the student trains on ${data.train.n} (train.trainLimit)`,
        );
      }
      const targets = storedTargets(reader, data.train, config.seed, config.batchSize);
      const def: StepObjective<TeacherTargets[]> = {
        async prepare(indices, epoch) {
          const batch = await targets(indices, epoch);
          return batch.teachers.map((t) => ({
            kind: t.kind,
            values: tf.tensor2d(t.values, [indices.length, t.classes]),
          }));
        },
        loss(m, params, batch) {
          const heads = (m as VitModelDef).tokenLogits(params, batch.x, true);
          return distillationTotal(heads, tf.tensor1d(batch.labels, 'int32'), batch.extras, objectiveDef);
        },
        release(extras) {
          tf.dispose(extras.map((t) => t.values));
        },
      };
      objective = def as StepObjective<unknown>;
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
  }

  return {
    planDistill: activity(async (input: DistillPlanInput) => plan(parseDistillSpec(input.spec))),
    distill: activity(distill),
  };
}
