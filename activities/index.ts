import type { ComputeActivities } from '../contract/activities';
import { createAnalysisActivities } from './analysis';
import { createDistillActivities } from './distill';
import type { DurableTrainingDeps } from './durable-training';
import { createLogitActivities } from './logits';
import { createLotteryActivities } from './lottery';
import { createTrainActivities } from './train';

export type ActivityDeps = DurableTrainingDeps & {
  /** Seconds between checkpoints of a geometry measure's partial state (default 30). */
  analysisCheckpointSeconds?: number;
};

/** All activities, bound to the worker's store, client and backend: the contract's ComputeActivities. */
export function createActivities(deps: ActivityDeps): ComputeActivities {
  return {
    ...createTrainActivities(deps),
    ...createLotteryActivities(deps),
    ...createLogitActivities(deps),
    ...createDistillActivities(deps),
    ...createAnalysisActivities(deps),
  };
}
