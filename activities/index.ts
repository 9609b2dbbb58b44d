import { createLogitActivities } from './logits';
import { createLotteryActivities } from './lottery';
import { createTrainActivities, type TrainActivityDeps } from './train';

export type ActivityDeps = TrainActivityDeps;

/** All activities, bound to the worker's store, client and backend. */
export function createActivities(deps: ActivityDeps) {
  return { ...createTrainActivities(deps), ...createLotteryActivities(deps), ...createLogitActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
