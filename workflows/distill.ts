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
    teachers: spec.teachers.map((t) => ({ name: t.name, manifestKey: null, making: false })),
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
      planned.map(async (t, i) => {
        const view = status.teachers[i] as DistillStatus['teachers'][number];
        if (t.manifestKey !== null) {
          view.manifestKey = t.manifestKey;
          return { name: t.name, manifestKey: t.manifestKey };
        }
        if (!t.make)
          throw new Error(`internal: teacher ${t.name} has neither a logit set nor a way to make one`);
        view.making = true;
        const ids = teacherWorkflowIds(workflowId, t.name);
        await executeChild(trainWorkflow, { args: [t.make.train], workflowId: ids.train });
        const logits = await executeChild(precomputeLogitsWorkflow, {
          args: [t.make.precompute],
          workflowId: ids.logits,
        });
        view.manifestKey = logits.manifestKey;
        view.making = false;
        return { name: t.name, manifestKey: logits.manifestKey };
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
