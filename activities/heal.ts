// Healing derived objects: a stored object that fails verification (IntegrityError) or that its manifest lists
// but is gone (ArtifactNotFoundError) is recomputed from its inputs when this worker can recompute it to the same
// bytes, i.e. on the backend that computed it. What cannot be recomputed here fails the run with UnderivableError,
// which names the key and says what to do.
import { ArtifactFormatError, ArtifactNotFoundError, IntegrityError } from '../store';

/** The key of a damaged or missing stored object, or null when `err` is something else. */
export function damagedKey(err: unknown): string | null {
  if (err instanceof IntegrityError || err instanceof ArtifactNotFoundError) return err.key;
  return null;
}

/**
 * Whether `err` says a stored object is damaged, missing or malformed: what recomputing it repairs. Anything else,
 * above all a store that did not answer (StoreUnavailableError), says nothing about the object and must not be
 * taken for damage: it is retried as the transient fault it is.
 */
export function isDamage(err: unknown): boolean {
  return damagedKey(err) !== null || err instanceof ArtifactFormatError;
}

/** What to do about damage that a run cannot repair by itself. */
export const REPAIR_NEXT =
  'run `lth fsck` to see all damage and `lth fsck --repair` to remove it, then run the same command again (a failed run starts afresh and recomputes what was removed)';

/** A damaged stored object that this worker cannot recompute: retrying cannot help, a person must act. */
export class UnderivableError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'UnderivableError';

  constructor(
    readonly key: string,
    message: string,
    /** One line: what a person does next. */
    readonly next: string,
  ) {
    super(message);
  }
}

/** The backends' names in a result's backend label (`wasm/4t`, `cpu+wasm`), without thread counts. */
function backendNames(label: string): string[] {
  return label.split('+').map((b) => b.split('/')[0] ?? b);
}

/**
 * Whether a worker on `current` recomputes, bit for bit, what `recorded` computed: the same single backend (a run
 * resumed across backends cannot be reproduced by anyone). WASM's and cpu's results do not depend on threads.
 */
export function reproducibleOn(recorded: string, current: string): boolean {
  const was = backendNames(recorded);
  const now = backendNames(current);
  return was.length === 1 && now.length === 1 && was[0] === now[0];
}

/**
 * Fails with UnderivableError unless a worker on `current` recomputes what `recorded` computed to the same bytes
 * (`what`: the object's owner in words, e.g. `trunk level 1 of <lineage>`).
 */
export function requireReproducible(what: string, key: string, recorded: string, current: string): void {
  if (reproducibleOn(recorded, current)) return;
  const was = backendNames(recorded);
  const next =
    was.length === 1
      ? `start a compute worker on ${was[0]} (\`lth worker --backend ${was[0]}\`) and run the same command again; it recomputes ${key} to the same bytes`
      : `${REPAIR_NEXT}; the levels derived from it keep the old bytes, so start the experiment under a new spec (e.g. another seed) for a consistent lineage`;
  throw new UnderivableError(
    key,
    `${what}: '${key}' is damaged and cannot be recomputed here: it was computed on ${recorded} and this worker runs ${current}, so a recomputation would not give the same bytes (and what was derived from it would no longer match)`,
    next,
  );
}
