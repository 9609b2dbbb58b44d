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

/**
 * What a backend label says about the bytes: `<backend>[/<threads>t][/graph]`, one segment per backend a run was
 * computed on, joined with '+' (`wasm/4t`, `tensorflow/2t/graph`, `cpu+wasm`).
 */
export interface BackendSegment {
  name: string;
  threads: number | null;
  /** The engine family of ml/train/engines/: the graph's bytes are its own. */
  engine: 'tape' | 'graph';
}

export function parseBackendLabel(label: string): BackendSegment[] {
  return label.split('+').map((segment) => {
    const [name = segment, ...rest] = segment.split('/');
    const t = rest.find((p) => /^\d+t$/.test(p));
    return {
      name,
      threads: t === undefined ? null : Number(t.slice(0, -1)),
      engine: rest.includes('graph') ? 'graph' : 'tape',
    };
  });
}

/** The engine family a recorded label names: what a recomputation of its object must use. */
export function engineFamilyOf(label: string): 'tape' | 'graph' {
  return parseBackendLabel(label)[0]?.engine ?? 'tape';
}

/** The label of a run computed on `worker` (a worker's label, `tensorflow/2t`) by an engine of this family. */
export function labelWithEngine(worker: string, engine: 'tape' | 'graph' | undefined): string {
  return engine === 'graph' ? `${worker}/graph` : worker;
}

/** Backends whose results depend on the thread count: native TensorFlow's intra-op pool splits its reductions. */
const THREADED_BYTES = new Set(['tensorflow', 'tensorflow-gpu']);

/**
 * Whether a worker on `current` (a worker's label) recomputes, bit for bit, what `recorded` computed: one backend
 * segment on each side (a run resumed across backends cannot be reproduced by anyone), the same backend, for native
 * TensorFlow the same thread count (measured: conv-2's weights after 8 steps differ between 1 and 2 threads, on the
 * tape and as a graph), and an engine this worker runs (a graph needs native TensorFlow, which the name already
 * says). WASM's and cpu's results do not depend on threads.
 */
export function reproducibleOn(recorded: string, current: string): boolean {
  const was = parseBackendLabel(recorded);
  const now = parseBackendLabel(current);
  if (was.length !== 1 || now.length !== 1) return false;
  const [a, b] = [was[0] as BackendSegment, now[0] as BackendSegment];
  if (a.name !== b.name) return false;
  if (THREADED_BYTES.has(a.name) && a.threads !== b.threads) return false;
  return a.engine === 'tape' || a.name === 'tensorflow';
}

/**
 * Fails with UnderivableError unless a worker on `current` recomputes what `recorded` computed to the same bytes
 * (`what`: the object's owner in words, e.g. `trunk level 1 of <lineage>`).
 */
export function requireReproducible(what: string, key: string, recorded: string, current: string): void {
  if (reproducibleOn(recorded, current)) return;
  const was = parseBackendLabel(recorded);
  const one = was.length === 1 ? was[0] : undefined;
  const threads =
    one && one.threads !== null && THREADED_BYTES.has(one.name) ? ` --threads ${one.threads}` : '';
  const next = one
    ? `start a compute worker on ${one.name} (\`lth worker compute --backend ${one.name}${threads}\`) and run the same command again; it recomputes ${key} to the same bytes`
    : `${REPAIR_NEXT}; the levels derived from it keep the old bytes, so start the experiment under a new spec (e.g. another seed) for a consistent lineage`;
  throw new UnderivableError(
    key,
    `${what}: '${key}' is damaged and cannot be recomputed here: it was computed on ${recorded} and this worker runs ${current}, so a recomputation would not give the same bytes (and what was derived from it would no longer match)`,
    next,
  );
}
