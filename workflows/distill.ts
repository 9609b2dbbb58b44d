import {
  defineQuery,
  defineSignal,
  executeChild,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';

import {
  parseDistillSpec,
  teacherWorkflowIds,
  type DistillResult,
  type DistillStatus,
  type TeacherSource,
} from '../contract/distill';
import * as sa from '../contract/search-attributes';
import type { TrainProgressUpdate } from '../contract/train';
import { computeActivities } from './compute-activities';
import { precomputeLogitsWorkflow } from './logits';
import { parseInput } from './spec-input';
import { trainWorkflow } from './train';

export const distillProgressSignal = defineSignal<[TrainProgressUpdate]>('trainProgress');
export const distillStatusQuery = defineQuery<DistillStatus>('status');

/**
 * Ensemble distillation into a ViT student (LIB-KD): every teacher's logit set must exist first, so a teacher given
 * by its training spec whose set is missing is trained and precomputed as child workflows (each reuses what the
 * store holds); then one durable activity trains the student on the stored outputs.
 */
export async function distillWorkflow(input: unknown): Promise<DistillResult> {
  const spec = parseInput(parseDistillSpec, input);
  const { workflowId } = workflowInfo();
  const status: DistillStatus = {
    phase: 'planning',
    experiment: spec.experiment,
    teachers: spec.teachers.map((t) => ({ name: t.name, ready: false, making: false })),
    progress: null,
    result: null,
  };
  const phase = (p: DistillStatus['phase']) => {
    status.phase = p;
    upsertSearchAttributes([{ key: sa.PHASE, value: p }]);
  };
  setHandler(distillStatusQuery, () => status);
  setHandler(distillProgressSignal, (update) => {
    if (status.progress !== null && update.step < status.progress.step) return;
    status.progress = update;
  });
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: 'distill' },
    { key: sa.PHASE, value: 'planning' },
  ]);
  const { planDistill, distill } = computeActivities(spec.heartbeatTimeoutSeconds);
  try {
    const planned = await planDistill({ spec });
    phase('teachers');
    const teachers = await Promise.all(
      planned.map(async (t, i): Promise<TeacherSource> => {
        const view = status.teachers[i] as DistillStatus['teachers'][number];
        const ids = teacherWorkflowIds(workflowId, t.name);
        view.making = t.train !== undefined || t.precompute.length > 0;
        // The teacher's training first: every precompute of it needs its weights.
        if (t.train) await executeChild(trainWorkflow, { args: [t.train], workflowId: ids.train });
        const made = await Promise.all(
          t.precompute.map(async ({ epoch, spec: p }) => {
            const features = p.outputs === 'features';
            const r = await executeChild(precomputeLogitsWorkflow, {
              args: [p],
              workflowId: features ? ids.features(epoch) : ids.logits(epoch),
            });
            return { epoch, features, key: r.manifestKey };
          }),
        );
        const manifestKeys = [...t.manifestKeys];
        const featureKeys = t.featureKeys ? [...t.featureKeys] : null;
        for (const m of made) {
          if (m.features && featureKeys) featureKeys[m.epoch] = m.key;
          else if (!m.features) manifestKeys[m.epoch] = m.key;
        }
        if ([...manifestKeys, ...(featureKeys ?? [])].some((k) => k === null)) {
          throw new Error(`internal: teacher ${t.name} still lacks a stored set after its precomputes`);
        }
        view.making = false;
        view.ready = true;
        return {
          name: t.name,
          manifestKeys: manifestKeys as string[],
          trainRunId: t.trainRunId,
          ...(featureKeys ? { featureKeys: featureKeys as string[] } : {}),
        };
      }),
    );
    phase('training');
    const result = await distill({ spec, teachers, progressWorkflowId: workflowId });
    status.result = result;
    phase('done');
    upsertSearchAttributes([{ key: sa.TEST_ACCURACY, value: result.final.testAccuracy }]);
    return result;
  } catch (err) {
    phase('failed');
    throw err;
  }
}
