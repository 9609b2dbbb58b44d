/**
 * Errors of the artifact store. Those marked `nonRetryable` describe a state that
 * retrying cannot fix (corrupt or missing data, bad input, bad configuration);
 * activities turn them into non-retryable ApplicationFailures. Anything else the
 * store throws (connection refused, timeouts, 5xx) is transient and must be retried.
 */
import type { z } from 'zod';

type Issue = { path: PropertyKey[]; message: string; depth: number };

/**
 * The problems themselves: a value that matches no option of a union gets the problems of the option it came
 * closest to (the one whose problems lie deepest, then the fewest; an unknown key counts as one level below its
 * object), so `teachers.0.train.batchSize` is named instead of `teachers.0: Invalid input`.
 */
function flatIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): Issue[] {
  return issues.flatMap((i): Issue[] => {
    const path = [...prefix, ...i.path];
    if (i.code === 'unrecognized_keys') return [{ path, message: i.message, depth: path.length + 1 }];
    if (i.code === 'invalid_union' && i.errors.length > 0) {
      const options = i.errors.map((errs) => flatIssues(errs, path));
      const depth = (o: Issue[]) => Math.max(...o.map((x) => x.depth));
      const best = options.reduce((b, o) =>
        depth(o) > depth(b) || (depth(o) === depth(b) && o.length < b.length) ? o : b,
      );
      const tied = options.filter((o) => depth(o) === depth(best) && o.length === best.length);
      // Options that fail at the union itself (wrong type for each) say nothing more than zod's own message.
      if (depth(best) > path.length && tied.length === 1) return best;
      // As close in several options (e.g. neither `logits` nor `train` given): one line offering each.
      if (depth(best) > path.length)
        return [
          {
            path,
            depth: path.length,
            message: `matches none of its forms: ${tied
              .map((o) =>
                o.map((x) => `${x.path.map(String).join('.') || '(root)'}: ${x.message}`).join('; '),
              )
              .join(' | or | ')}`,
          },
        ];
    }
    return [{ path, message: i.message, depth: path.length }];
  });
}

/** One `field: message` line per problem a schema found, `(root)` for the value itself. */
export function issueLines(error: z.ZodError): string[] {
  return flatIssues(error.issues, []).map(
    (i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`,
  );
}

/** The problems a schema found, on one line: what the store's errors about a bad object or manifest quote. */
export function formatIssues(error: z.ZodError): string {
  return issueLines(error).join('; ');
}

/** Stored bytes do not hash to the checksum recorded with them or expected by the caller. */
export class IntegrityError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'IntegrityError';

  constructor(
    readonly key: string,
    readonly expectedSha256: string,
    readonly actualSha256: string,
    detail?: string,
  ) {
    super(
      `integrity check failed for '${key}': expected sha256 ${expectedSha256}, got ${actualSha256}` +
        (detail ? ` (${detail})` : ''),
    );
  }
}

export class ArtifactNotFoundError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'ArtifactNotFoundError';

  constructor(
    readonly key: string,
    readonly bucket: string,
    options?: { cause?: unknown },
  ) {
    super(`artifact not found: '${key}' in bucket '${bucket}'`, options);
  }
}

/** The object is intact (its hash matches) but its content is not what the reader needs. */
export class ArtifactFormatError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'ArtifactFormatError';

  constructor(
    readonly key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`artifact '${key}': ${message}`, options);
  }
}

/** The caller passed something the store refuses to write (bad key, non-JSON value, bad manifest). */
export class StoreUsageError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'StoreUsageError';
}

export class S3ConfigError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'S3ConfigError';
}

/** True for errors that retrying cannot fix; false means "transient, retry". */
export function isNonRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { nonRetryable?: unknown }).nonRetryable === true;
}
