// When a run stops waiting for its store. The store retries a request for a few seconds (store/retry.ts), then the
// activity attempt fails with a retryable StoreUnavailableError and Temporal retries the activity, with no attempt
// limit (the compute activities' policy, which only a patched() workflow change could alter). So the count is kept
// here: each such failure carries, in its details, how many attempts in a row of this activity have found the
// store unavailable; the next attempt reads it back from the previous attempt's failure (the pending activity's
// last failure, through the worker's client), and the attempt that reaches LTH_STORE_GIVE_UP_ATTEMPTS fails
// non-retryably, naming the endpoint and what to do. An attempt that ended otherwise (a killed or draining worker,
// a heartbeat timeout) breaks the run, so lost workers never count towards giving up.
import { Context } from '@temporalio/activity';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { z } from 'zod';

import { StoreUnavailableError } from '../store';
import type { FailureDetails } from './failures';

export const STORE_GIVE_UP_VAR = 'LTH_STORE_GIVE_UP_ATTEMPTS';
/** With the compute activities' backoff (2 s doubling to 1 min) and the store's 8 s budget: about 4 minutes. */
export const DEFAULT_STORE_GIVE_UP_ATTEMPTS = 8;

const attemptsSchema = z.preprocess(
  (v) => (v === '' || v === undefined ? undefined : Number(v)),
  z.number().int().min(1).max(1000).optional(),
);

/** LTH_STORE_GIVE_UP_ATTEMPTS, or the default; throws naming the variable when it is not 1..1000. */
export function storeGiveUpAttemptsFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env[STORE_GIVE_UP_VAR];
  const r = attemptsSchema.safeParse(raw);
  if (!r.success)
    throw new Error(
      `${STORE_GIVE_UP_VAR}=${JSON.stringify(raw)}: must be a whole number of attempts from 1 to 1000 (default ${DEFAULT_STORE_GIVE_UP_ATTEMPTS})`,
    );
  return r.data ?? DEFAULT_STORE_GIVE_UP_ATTEMPTS;
}

/** The StoreUnavailableError an activity failed with, itself or as a cause; null for any other failure. */
export function storeUnavailableIn(err: unknown): StoreUnavailableError | null {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    if (e instanceof StoreUnavailableError) return e;
    // Something above it already decided (e.g. non-retryable): that decision stands.
    if ((e as { nonRetryable?: unknown }).nonRetryable === true || e instanceof ApplicationFailure)
      return null;
  }
  return null;
}

export function storeNext(endpoint: string): string {
  return `check that the S3 store at ${endpoint} is up and reachable from the compute workers (S3_ENDPOINT), then run the same command again: it resumes from the last stored checkpoint`;
}

/**
 * What an attempt that found the store unavailable reports: retryable with the count (`inARow`, this attempt
 * included) in its details, or, from `limit` on, non-retryable with the endpoint and the next step.
 */
export function storeUnavailableFailure(
  err: StoreUnavailableError,
  inARow: number,
  limit: number,
): ApplicationFailure {
  const details: FailureDetails = { endpoint: err.endpoint, unavailableAttempts: inARow };
  const cause = err.cause instanceof Error ? err.cause : undefined;
  if (inARow < limit)
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nonRetryable: false,
      details: [details],
      ...(cause ? { cause } : {}),
    });
  return ApplicationFailure.create({
    message: `${err.message}; giving up: ${inARow} attempt${inARow === 1 ? '' : 's'} in a row found the store unavailable (${STORE_GIVE_UP_VAR}=${limit})`,
    type: err.name,
    nonRetryable: true,
    details: [{ ...details, next: storeNext(err.endpoint) }],
    ...(cause ? { cause } : {}),
  });
}

/** From a failure's first detail: how many attempts in a row had found the store unavailable. */
export function unavailableAttemptsOf(detail: unknown): number | null {
  if (typeof detail !== 'object' || detail === null) return null;
  const n = (detail as FailureDetails).unavailableAttempts;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : null;
}

const DESCRIBE_DEADLINE_MS = 5_000;

/**
 * How many attempts in a row before this one found the store unavailable: read from the previous attempt's
 * failure. 0 when this is the first attempt, the previous one ended otherwise, or it cannot be told (no activity
 * context, Temporal not answering): not knowing never gives up.
 */
export async function previousUnavailableAttempts(): Promise<number> {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return 0;
  }
  const { attempt, activityId, workflowExecution } = ctx.info;
  if (attempt <= 1 || !workflowExecution) return 0;
  let timer: NodeJS.Timeout | undefined;
  try {
    const describe = ctx.client.workflow
      .getHandle(workflowExecution.workflowId, workflowExecution.runId)
      .describe();
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), DESCRIBE_DEADLINE_MS);
    });
    const d = await Promise.race([describe, deadline]);
    const pending = d?.raw.pendingActivities?.find((a) => a.activityId === activityId);
    const info = pending?.lastFailure?.applicationFailureInfo;
    if (!info || info.type !== 'StoreUnavailableError') return 0;
    const payload = info.details?.payloads?.[0];
    if (!payload) return 1; // a worker without this count: that attempt alone
    return unavailableAttemptsOf(defaultPayloadConverter.fromPayload(payload)) ?? 1;
  } catch {
    return 0;
  } finally {
    clearTimeout(timer);
  }
}
