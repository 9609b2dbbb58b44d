/**
 * Streams stored teacher outputs to a student: batches of (sample indices, one row per sample
 * per teacher), from one manifest per teacher, in any sample order.
 *
 * - It refuses, before reading anything else, a manifest whose dataset, split or augmentation
 *   differs from the student's data (the stored soft labels would belong to other images or
 *   other views), and manifests that disagree with each other on the number of samples or
 *   classes. The error names the field, both values and the manifest.
 * - Every shard is downloaded through the store with the manifest's checksum
 *   (`getBytes(key, { expectSha256 })`), so a damaged shard is an IntegrityError naming its
 *   key, and decoded with the manifest's format, classes, k and index range as expectations.
 * - While a batch is assembled, the next `prefetch` shards each teacher will need (in the
 *   order the batches need them) are fetched in the background; at most `concurrency` GETs
 *   run at once, the current batch's first. Decoded shards stay in an LRU bounded by
 *   `cacheBytes`; for a shuffled order over the whole set the cache must hold the sets, or
 *   shards are fetched again: by default it holds them all decoded (at least 256 MiB).
 *
 * Plain typed arrays only: nothing here knows TF.js.
 */
import type { ArtifactStore } from './artifact-store.js';
import { StoreUsageError } from './errors.js';
import { readLogitManifest, type DataIdentity, type LogitManifest } from './logit-manifest.js';
import {
  decodeLogitShard,
  type DecodedLogitShard,
  type LogitFormat,
  type LogitKind,
} from './logit-shards.js';

/** A manifest does not fit the student's data or the other teachers' manifests. */
export class LogitSetMismatchError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'LogitSetMismatchError';

  constructor(
    readonly manifestKey: string,
    readonly field: string,
    readonly expected: unknown,
    readonly actual: unknown,
    message: string,
  ) {
    super(message);
  }
}

export interface LogitReaderOptions {
  /** Shards fetched ahead of need, per teacher (default 2; 0 disables prefetch). */
  prefetch?: number;
  /** At most this many shard downloads at once (default 4). */
  concurrency?: number;
  /** Bound on the decoded shards kept (Float32 values), in bytes (default: every set decoded, at least 256 MiB). */
  cacheBytes?: number;
  /** What the sets must hold: teacher logits (default) or feature maps; a set of the other kind is refused. */
  outputs?: 'logits' | 'features';
}

export interface TeacherInfo {
  name: string;
  manifestKey: string;
  format: LogitFormat;
  k?: number;
  /** What a batch holds for this teacher: logits (float32, float16) or probabilities (top-k). */
  kind: LogitKind;
  classes: number;
}

export interface TeacherRows {
  teacher: string;
  kind: LogitKind;
  classes: number;
  /** Row-major [indices.length, classes], in the order of `indices`. */
  values: Float32Array;
}

export interface LogitBatch {
  indices: Int32Array;
  /** One entry per manifest, in the order the manifests were given. */
  teachers: TeacherRows[];
}

export interface LogitReaderStats {
  /** Shard downloads asked for, urgent or prefetch (queued, running or done). */
  requested: number;
  /** The most downloads that ran at once (never above `concurrency`). */
  peakConcurrency: number;
  /** Shard downloads that completed and decoded. */
  fetched: number;
  fetchedBytes: number;
  /** Shard lookups answered by a cached (or already in flight) shard. */
  hits: number;
  evictions: number;
  cachedBytes: number;
}

interface Slot {
  id: string;
  teacher: number;
  shard: number;
  state: 'queued' | 'loading' | 'ready';
  urgent: boolean;
  bytes: number;
  promise: Promise<DecodedLogitShard>;
  resolve: (v: DecodedLogitShard) => void;
  reject: (e: unknown) => void;
}

function describe(v: unknown): string {
  return JSON.stringify(v);
}

/** The first difference between the student's data and a manifest's, as [field, student, manifest]. */
function identityDifference(student: DataIdentity, m: LogitManifest): [string, unknown, unknown] | null {
  const pairs: [string, unknown, unknown][] = [
    ['dataset', student.dataset, m.dataset],
    ['split', student.split, m.split],
    ['augmentation.policy', student.augmentation.policy, m.augmentation.policy],
    ['augmentation.seed', student.augmentation.seed, m.augmentation.seed],
  ];
  return pairs.find(([, a, b]) => a !== b) ?? null;
}

export class LogitReader {
  readonly sampleCount: number;
  readonly classes: number;
  readonly teachers: readonly TeacherInfo[];

  private readonly sets: readonly { key: string; manifest: LogitManifest }[];
  private readonly prefetch: number;
  private readonly concurrency: number;
  private readonly cacheBytes: number;
  /** Map order is recency order: the first ready entry is the least recently used. */
  private readonly cache = new Map<string, Slot>();
  private readonly urgentQueue: Slot[] = [];
  private readonly backgroundQueue: Slot[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private active = 0;
  private closed = false;
  private readonly counters: LogitReaderStats = {
    requested: 0,
    peakConcurrency: 0,
    fetched: 0,
    fetchedBytes: 0,
    hits: 0,
    evictions: 0,
    cachedBytes: 0,
  };

  /** Reads and validates the manifests (one per teacher), then checks them as the constructor does. */
  static async open(
    store: ArtifactStore,
    manifestKeys: readonly string[],
    student: DataIdentity,
    opts: LogitReaderOptions = {},
  ): Promise<LogitReader> {
    const sets = await Promise.all(
      manifestKeys.map(async (key) => ({ key, manifest: await readLogitManifest(store, key) })),
    );
    return new LogitReader(store, sets, student, opts);
  }

  constructor(
    private readonly store: ArtifactStore,
    sets: readonly { key: string; manifest: LogitManifest }[],
    student: DataIdentity,
    opts: LogitReaderOptions = {},
  ) {
    if (sets.length === 0) throw new StoreUsageError('LogitReader needs at least one manifest');
    for (const { key, manifest } of sets) {
      const diff = identityDifference(student, manifest);
      if (diff) {
        const [field, want, got] = diff;
        throw new LogitSetMismatchError(
          key,
          field,
          want,
          got,
          `logit manifest '${key}' (teacher ${manifest.teacher.name}) does not match the student's data: ` +
            `${field} is ${describe(got)} in the manifest but ${describe(want)} for the student ` +
            `(stored outputs are only valid for the exact dataset, split and augmentation they were computed on)`,
        );
      }
    }
    const outputs = opts.outputs ?? 'logits';
    for (const { key, manifest } of sets) {
      const got = manifest.outputs ?? 'logits';
      if (got !== outputs) {
        throw new LogitSetMismatchError(
          key,
          'outputs',
          outputs,
          got,
          `manifest '${key}' (teacher ${manifest.teacher.name}) holds ${got}, the reader was asked for ${outputs}`,
        );
      }
    }
    const first = sets[0] as { key: string; manifest: LogitManifest };
    for (const { key, manifest } of sets.slice(1)) {
      for (const field of ['sampleCount', 'classes'] as const) {
        if (manifest[field] !== first.manifest[field]) {
          throw new LogitSetMismatchError(
            key,
            field,
            first.manifest[field],
            manifest[field],
            `logit manifests disagree on ${field}: ${manifest[field]} in '${key}' (teacher ${manifest.teacher.name}), ` +
              `${first.manifest[field]} in '${first.key}' (teacher ${first.manifest.teacher.name})`,
          );
        }
      }
    }
    const positiveInt = (name: string, v: number | undefined, dflt: number, min: number): number => {
      const x = v ?? dflt;
      if (!Number.isSafeInteger(x) || x < min)
        throw new StoreUsageError(`LogitReader option ${name} must be an integer ≥ ${min}, got ${x}`);
      return x;
    };
    this.prefetch = positiveInt('prefetch', opts.prefetch, 2, 0);
    this.concurrency = positiveInt('concurrency', opts.concurrency, 4, 1);
    // A shuffled epoch touches every shard in every batch: by default keep every set decoded (a 60k-sample set of
    // 7×7×64 feature maps is 750 MB; of 10 logits, 2.4 MB).
    const decoded = sets.reduce((n, { manifest: m }) => n + m.sampleCount * m.classes * 4, 0);
    this.cacheBytes = positiveInt('cacheBytes', opts.cacheBytes, Math.max(256 * 1024 * 1024, decoded), 0);
    this.sets = sets.map((s) => ({ key: s.key, manifest: s.manifest }));
    this.sampleCount = first.manifest.sampleCount;
    this.classes = first.manifest.classes;
    this.teachers = sets.map(({ key, manifest: m }) => ({
      name: m.teacher.name,
      manifestKey: key,
      format: m.format,
      ...(m.k !== undefined ? { k: m.k } : {}),
      kind: m.format === 'top-k' ? 'probabilities' : 'logits',
      classes: m.classes,
    }));
  }

  stats(): LogitReaderStats {
    return { ...this.counters };
  }

  /** One batch for exactly these sample indices (in this order), without lookahead. */
  async read(indices: ArrayLike<number>): Promise<LogitBatch> {
    const idx = this.checkIndices(indices);
    return this.assemble(idx, idx, idx.length);
  }

  /**
   * Batches of `batchSize` (the last may be smaller) following `order`, a list of sample
   * indices such as an epoch's shuffled permutation, prefetching ahead along it.
   */
  async *batches(order: ArrayLike<number>, batchSize: number): AsyncGenerator<LogitBatch> {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1)
      throw new StoreUsageError(`batchSize must be a positive integer, got ${batchSize}`);
    const all = this.checkIndices(order);
    for (let at = 0; at < all.length; at += batchSize) {
      const end = Math.min(at + batchSize, all.length);
      yield await this.assemble(all.subarray(at, end), all, end);
    }
  }

  /** Batches over the samples [start, end) in index order (default: all of them). */
  contiguousBatches(
    batchSize: number,
    range: { start?: number; end?: number } = {},
  ): AsyncGenerator<LogitBatch> {
    const start = range.start ?? 0;
    const end = range.end ?? this.sampleCount;
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(end) ||
      start < 0 ||
      end > this.sampleCount ||
      start > end
    )
      throw new StoreUsageError(`range [${start}, ${end}) is not within [0, ${this.sampleCount})`);
    const order = new Int32Array(end - start);
    for (let i = 0; i < order.length; i++) order[i] = start + i;
    return this.batches(order, batchSize);
  }

  /** Waits for downloads still in flight (prefetches of an abandoned loop) and drops the cache. */
  async close(): Promise<void> {
    this.closed = true;
    for (const slot of [...this.urgentQueue.splice(0), ...this.backgroundQueue.splice(0)]) {
      this.cache.delete(slot.id);
      slot.reject(new StoreUsageError('LogitReader closed'));
    }
    await Promise.allSettled([...this.inFlight]);
    this.cache.clear();
    this.counters.cachedBytes = 0;
  }

  // ---- internals ----------------------------------------------------------

  private checkIndices(indices: ArrayLike<number>): Int32Array {
    const out = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const v = indices[i] as number;
      if (!Number.isInteger(v) || v < 0 || v >= this.sampleCount)
        throw new StoreUsageError(
          `sample index at position ${i} is ${v}, not an integer in [0, ${this.sampleCount})`,
        );
      out[i] = v;
    }
    return out;
  }

  /**
   * Fetches what `batch` needs (urgently), starts prefetching the next shards along `order`
   * after position `next`, and copies the rows.
   */
  private async assemble(batch: Int32Array, order: Int32Array, next: number): Promise<LogitBatch> {
    if (this.closed) throw new StoreUsageError('LogitReader is closed');
    const needs = this.sets.map(({ manifest }) => {
      const seen = new Set<number>();
      for (const i of batch) seen.add(Math.floor(i / manifest.shardSize));
      return seen;
    });
    const pending = needs.map((shards, t) => [...shards].map((s) => this.acquire(t, s, true)));
    this.prefetchAlong(order, next, needs);
    const teachers = await Promise.all(
      pending.map(async (promises, t) => {
        const shards = await Promise.all(promises);
        const byIndex = new Map(shards.map((s) => [Math.floor(s.start / this.shardSize(t)), s]));
        const C = this.classes;
        const values = new Float32Array(batch.length * C);
        const { manifest } = this.sets[t] as { manifest: LogitManifest };
        for (let r = 0; r < batch.length; r++) {
          const i = batch[r] as number;
          const shard = byIndex.get(Math.floor(i / manifest.shardSize)) as DecodedLogitShard;
          const from = (i - shard.start) * C;
          values.set(shard.values.subarray(from, from + C), r * C);
        }
        const info = this.teachers[t] as TeacherInfo;
        return { teacher: info.name, kind: info.kind, classes: C, values };
      }),
    );
    return { indices: batch, teachers };
  }

  private shardSize(t: number): number {
    return (this.sets[t] as { manifest: LogitManifest }).manifest.shardSize;
  }

  /**
   * Per teacher, the next `prefetch` distinct shards that `order` needs from position `next`
   * on and the current batch does not: cached ones are refreshed in the LRU, missing ones
   * queued behind the urgent downloads. The walk is bounded so that a shuffled order, whose
   * every batch touches the same shards, costs no more than a sequential one.
   */
  private prefetchAlong(order: Int32Array, next: number, current: Set<number>[]): void {
    if (this.prefetch === 0) return;
    this.sets.forEach(({ manifest }, t) => {
      const cur = current[t] as Set<number>;
      const ahead = new Set<number>();
      const limit = Math.min(order.length, next + (this.prefetch + 1) * manifest.shardSize);
      for (let p = next; p < limit && ahead.size < this.prefetch; p++) {
        const s = Math.floor((order[p] as number) / manifest.shardSize);
        if (cur.has(s) || ahead.has(s)) continue;
        ahead.add(s);
        // A failed prefetch is reported when (and if) a batch needs that shard.
        this.acquire(t, s, false).catch(() => undefined);
      }
    });
  }

  private acquire(t: number, s: number, urgent: boolean): Promise<DecodedLogitShard> {
    const id = `${t}:${s}`;
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id);
      this.cache.set(id, hit);
      if (urgent) this.counters.hits++;
      if (urgent && hit.state === 'queued' && !hit.urgent) {
        const at = this.backgroundQueue.indexOf(hit);
        if (at >= 0) this.backgroundQueue.splice(at, 1);
        hit.urgent = true;
        this.urgentQueue.push(hit);
      }
      return hit.promise;
    }
    let resolve!: (v: DecodedLogitShard) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<DecodedLogitShard>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const slot: Slot = {
      id,
      teacher: t,
      shard: s,
      state: 'queued',
      urgent,
      bytes: 0,
      promise,
      resolve,
      reject,
    };
    this.cache.set(id, slot);
    this.counters.requested++;
    (urgent ? this.urgentQueue : this.backgroundQueue).push(slot);
    this.pump();
    return promise;
  }

  private pump(): void {
    while (this.active < this.concurrency) {
      const slot = this.urgentQueue.shift() ?? this.backgroundQueue.shift();
      if (!slot) return;
      this.active++;
      slot.state = 'loading';
      this.counters.peakConcurrency = Math.max(this.counters.peakConcurrency, this.active);
      const run = this.load(slot).finally(() => {
        this.active--;
        this.inFlight.delete(run);
        if (!this.closed) this.pump();
      });
      this.inFlight.add(run);
    }
  }

  private async load(slot: Slot): Promise<void> {
    const { key, manifest } = this.sets[slot.teacher] as { key: string; manifest: LogitManifest };
    const ref = manifest.shards[slot.shard];
    try {
      if (!ref) throw new StoreUsageError(`manifest '${key}' has no shard ${slot.shard}`);
      const { bytes } = await this.store.getBytes(ref.key, { expectSha256: ref.sha256 });
      const decoded = decodeLogitShard(bytes, ref.key, {
        format: manifest.format,
        classes: manifest.classes,
        ...(manifest.k !== undefined ? { k: manifest.k } : {}),
        start: ref.start,
        end: ref.end,
      });
      this.counters.fetched++;
      this.counters.fetchedBytes += bytes.length;
      slot.state = 'ready';
      if (this.cache.get(slot.id) === slot) {
        slot.bytes = decoded.values.byteLength;
        this.counters.cachedBytes += slot.bytes;
      }
      slot.resolve(decoded);
      this.evict();
    } catch (e) {
      // Forget the failure, so that the next batch needing this shard tries again.
      if (this.cache.get(slot.id) === slot) this.cache.delete(slot.id);
      slot.reject(e);
    }
  }

  /** Drops least recently used decoded shards until the cache fits its bound. */
  private evict(): void {
    for (const [id, slot] of this.cache) {
      if (this.counters.cachedBytes <= this.cacheBytes) return;
      if (slot.state !== 'ready') continue;
      this.cache.delete(id);
      this.counters.cachedBytes -= slot.bytes;
      this.counters.evictions++;
    }
  }
}
