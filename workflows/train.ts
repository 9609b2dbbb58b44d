import {
  defineQuery,
  defineSignal,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';

import * as sa from '../contract/search-attributes';
import {
  parseTrainSpec,
  type TrainProgressUpdate,
  type TrainRunResult,
  type TrainStatus,
} from '../contract/train';
import { computeActivities } from './compute-activities';
import { parseInput } from './spec-input';

export const trainProgressSignal = defineSignal<[TrainProgressUpdate]>('trainProgress');
export const trainStatusQuery = defineQuery<TrainStatus>('status');

/**
 * One durable training run. The activity checkpoints to the store and heartbeats the checkpoint key,
 * so a lost compute worker costs at most one checkpoint interval; the workflow only keeps the
 * latest progress for queries and search attributes.
 */
export async function trainWorkflow(input: unknown): Promise<TrainRunResult> {
  const spec = parseInput(parseTrainSpec, input);

  const status: TrainStatus = { phase: 'queued', experiment: spec.experiment, progress: null, result: null };
  let lastReportedAccuracy: number | null = null;

  setHandler(trainStatusQuery, () => status);
  setHandler(trainProgressSignal, (update) => {
    // Progress signals can arrive out of order after a retry; never go backwards.
    if (status.progress !== null && update.step < status.progress.step) return;
    status.progress = update;
    if (status.phase === 'queued') {
      status.phase = 'training';
      upsertSearchAttributes([{ key: sa.PHASE, value: 'training' }]);
    }
    if (update.testAccuracy !== null && update.testAccuracy !== lastReportedAccuracy) {
      lastReportedAccuracy = update.testAccuracy;
      upsertSearchAttributes([{ key: sa.TEST_ACCURACY, value: update.testAccuracy }]);
    }
  });

  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: 'train' },
    { key: sa.PHASE, value: 'queued' },
  ]);

  const { train } = computeActivities(spec.heartbeatTimeoutSeconds);

  try {
    const result = await train({ spec, progressWorkflowId: workflowInfo().workflowId });
    status.phase = 'done';
    status.result = result;
    upsertSearchAttributes([
      { key: sa.PHASE, value: 'done' },
      { key: sa.TEST_ACCURACY, value: result.final.testAccuracy },
    ]);
    return result;
  } catch (err) {
    status.phase = 'failed';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'failed' }]);
    throw err;
  }
}
