// What Temporal sees when an activity fails: a drain hands the work to another worker, bad input never retries,
// anything else (a store or server that is briefly away) is retried with the workflow's backoff, except a store
// that stays away through LTH_STORE_GIVE_UP_ATTEMPTS attempts in a row (activities/store-give-up.ts).
import { ApplicationFailure } from '@temporalio/activity';

import { SpecError } from '../contract/spec';
import { TrainingStoppedError } from '../ml/train';
import { damagedKey, REPAIR_NEXT } from './heal';
import {
  previousUnavailableAttempts,
  storeGiveUpAttemptsFromEnv,
  storeUnavailableFailure,
  storeUnavailableIn,
} from './store-give-up';

/** What a failure's details carry for the CLI: the damaged key and the next step, when there are such. */
export interface FailureDetails {
  key?: string;
  next?: string;
  /** For a store that was unavailable: its endpoint, and how many attempts in a row found it so. */
  endpoint?: string;
  unavailableAttempts?: number;
}

/**
 * `storeUnavailable`: for a failure on an unavailable store, the attempts in a row (this one included) that found it
 * so, and the limit; without it such a failure stays an ordinary, retryable error.
 */
export function toActivityFailure(
  err: unknown,
  storeUnavailable?: { inARow: number; limit: number },
): unknown {
  const store = storeUnavailable ? storeUnavailableIn(err) : null;
  if (store && storeUnavailable)
    return storeUnavailableFailure(store, storeUnavailable.inARow, storeUnavailable.limit);
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
      if (storeUnavailableIn(err) === null) throw toActivityFailure(err);
      const inARow = (await previousUnavailableAttempts()) + 1;
      throw toActivityFailure(err, { inARow, limit: storeGiveUpAttempts() });
    }
  };
}

let giveUpAttempts: number | undefined;

/** The limit, read once; the compute worker checks the variable at start, so a bad value never gets this far. */
function storeGiveUpAttempts(): number {
  giveUpAttempts ??= storeGiveUpAttemptsFromEnv();
  return giveUpAttempts;
}
