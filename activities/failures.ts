// What Temporal sees when an activity fails: a drain hands the work to another worker, bad input never retries,
// anything else (a store or server that is briefly away) is retried with the workflow's backoff.
import { ApplicationFailure } from '@temporalio/activity';

import { SpecError } from '../contract/spec';
import { TrainingStoppedError } from '../ml/train';
import { damagedKey, REPAIR_NEXT } from './heal';

/** What a failure's details carry for the CLI: the damaged key and the next step, when there are such. */
export interface FailureDetails {
  key?: string;
  next?: string;
}

export function toActivityFailure(err: unknown): unknown {
  if (err instanceof TrainingStoppedError) {
    // Retryable on purpose: the next attempt, on any worker, resumes from this checkpoint.
    return ApplicationFailure.retryable(`compute worker is shutting down; ${err.message}`, 'WorkerDraining');
  }
  if (err instanceof SpecError) return ApplicationFailure.nonRetryable(err.message, 'SpecError');
  if (err instanceof Error && (err as { nonRetryable?: unknown }).nonRetryable === true) {
    // A damaged object (or one that cannot be recomputed) names its key and what to do, for `lth` to print.
    const own = stringField(err, 'next');
    const key = damagedKey(err) ?? (own !== undefined ? stringField(err, 'key') : undefined);
    const next = own ?? (key !== undefined ? REPAIR_NEXT : undefined);
    if (key === undefined && next === undefined)
      return ApplicationFailure.nonRetryable(err.message, err.name);
    const details: FailureDetails = { ...(key !== undefined ? { key } : {}), ...(next ? { next } : {}) };
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nonRetryable: true,
      details: [details],
    });
  }
  return err;
}

function stringField(err: Error, field: string): string | undefined {
  const v = (err as unknown as Record<string, unknown>)[field];
  return typeof v === 'string' ? v : undefined;
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
