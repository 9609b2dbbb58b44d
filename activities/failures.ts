// What Temporal sees when an activity fails: a drain hands the work to another worker, bad input never retries,
// anything else (a store or server that is briefly away) is retried with the workflow's backoff.
import { ApplicationFailure } from '@temporalio/activity';

import { SpecError } from '../contract/spec';
import { TrainingStoppedError } from '../ml/train';

export function toActivityFailure(err: unknown): unknown {
  if (err instanceof TrainingStoppedError) {
    // Retryable on purpose: the next attempt, on any worker, resumes from this checkpoint.
    return ApplicationFailure.retryable(`compute worker is shutting down; ${err.message}`, 'WorkerDraining');
  }
  if (err instanceof SpecError) return ApplicationFailure.nonRetryable(err.message, 'SpecError');
  if (err instanceof Error && (err as { nonRetryable?: unknown }).nonRetryable === true) {
    return ApplicationFailure.nonRetryable(err.message, err.name);
  }
  return err;
}

/** An activity function whose errors reach Temporal as toActivityFailure says. */
export function activity<A extends unknown[], R>(f: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    try {
      return await f(...args);
    } catch (err) {
      throw toActivityFailure(err);
    }
  };
}
