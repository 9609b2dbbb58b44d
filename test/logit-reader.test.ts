// LogitReader against a real S3 server (MinIO): a two-teacher logit set published the way a
// precompute publishes it (shards, then the manifest), read back in order and shuffled, with
// prefetch and a bounded cache; refusals of mismatched manifests; a damaged shard.
// Endpoint from S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY (`npm test` starts a private MinIO);
// each run uses its own bucket and removes it afterwards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ArtifactStore,
  decodeLogitShard,
  encodeLogitShard,
  IntegrityError,
  isNonRetryable,
  logitSetKeys,
  LogitReader,
  LogitSetMismatchError,
  publishLogitManifest,
  StoreUsageError,
  toProbabilities,
  type Augmentation,
  type DataIdentity,
  type LogitBatch,
  type LogitFormat,
  type S3Config,
} from '../store/index.js';
import { mulberry32 } from '../ml/rng';

import { dropBucket, NO_S3, rawClient, s3, uniqueBucket } from './support/s3.js';

const SAMPLES = 1000;
const CLASSES = 10;
const SHARD = 128; // 8 shards, the last one of 104 samples

function teacherLogits(seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(SAMPLES * CLASSES);
  for (let i = 0; i < out.length; i++) out[i] = (r() - 0.5) * 8;
  return out;
}

function permutation(n: number, seed: number): Int32Array {
  const r = mulberry32(seed);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j] as number, p[i] as number];
  }
  return p;
}

interface PublishedSet {
  manifestKey: string;
  shardKeys: string[];
  /** What a reader must return for every sample, row-major [SAMPLES, CLASSES]. */
  expected: Float32Array;
}

const student: DataIdentity = {
  dataset: 'mnist',
  split: 'train',
  augmentation: { policy: 'random-crop-flip', seed: 7 },
};

/** Encodes and uploads every shard, then publishes the manifest last, as a precompute does. */
async function publishSet(
  store: ArtifactStore,
  teacher: string,
  logits: Float32Array,
  format: LogitFormat,
  k: number | undefined,
  data: { dataset: string; split: string; augmentation: Augmentation } = student,
  sampleCount = SAMPLES,
): Promise<PublishedSet> {
  const weightsSha256 = Buffer.from(teacher.padEnd(32, '-')).toString('hex').slice(0, 64);
  const keys = logitSetKeys({
    teacherWeightsSha256: weightsSha256,
    ...data,
    format,
    ...(k !== undefined ? { k } : {}),
    classes: CLASSES,
    sampleCount,
    shardSize: SHARD,
  });
  const expected = new Float32Array(sampleCount * CLASSES);
  const shards = [];
  for (let i = 0, start = 0; start < sampleCount; i++, start += SHARD) {
    const end = Math.min(start + SHARD, sampleCount);
    const bytes = encodeLogitShard({
      format,
      classes: CLASSES,
      ...(k !== undefined ? { k } : {}),
      start,
      logits: logits.subarray(start * CLASSES, end * CLASSES),
    });
    expected.set(decodeLogitShard(bytes, 'local').values, start * CLASSES);
    const ref = await store.putBytes(keys.shardKey(i), bytes);
    shards.push({ ...ref, start, end });
  }
  await publishLogitManifest(store, keys.manifestKey, {
    teacher: { name: teacher, weightsSha256 },
    ...data,
    format,
    ...(k !== undefined ? { k } : {}),
    classes: CLASSES,
    sampleCount,
    shardSize: SHARD,
    shards,
  });
  return { manifestKey: keys.manifestKey, shardKeys: shards.map((s) => s.key), expected };
}

function assertRows(batch: LogitBatch, sets: PublishedSet[]): void {
  assert.equal(batch.teachers.length, sets.length);
  batch.teachers.forEach((t, ti) => {
    const want = (sets[ti] as PublishedSet).expected;
    assert.equal(t.values.length, batch.indices.length * CLASSES);
    batch.indices.forEach((i, r) => {
      assert.deepEqual(
        t.values.subarray(r * CLASSES, (r + 1) * CLASSES),
        want.subarray(i * CLASSES, (i + 1) * CLASSES),
        `teacher ${t.teacher}, sample ${i}`,
      );
    });
  });
}

describe('logit reader (real S3)', () => {
  if (!s3) {
    it('has an S3 server to test against', () => assert.fail(NO_S3));
    return;
  }
  const cfg: S3Config = { ...s3, bucket: uniqueBucket('logits') };
  const raw = rawClient(cfg);
  const store = new ArtifactStore(cfg);
  const logitsA = teacherLogits(1);
  const logitsB = teacherLogits(2);
  let cnn: PublishedSet;
  let inv: PublishedSet;
  let cnnHalf: PublishedSet;

  before(async () => {
    cnn = await publishSet(store, 'cnn', logitsA, 'float32', undefined);
    inv = await publishSet(store, 'involution', logitsB, 'top-k', 3);
    cnnHalf = await publishSet(store, 'cnn', logitsA, 'float16', undefined);
  });

  after(async () => {
    await dropBucket(raw, cfg.bucket);
  });

  it('describes its teachers: float32 gives logits, top-k gives probabilities', async () => {
    const reader = await LogitReader.open(store, [cnn.manifestKey, inv.manifestKey], student);
    assert.equal(reader.sampleCount, SAMPLES);
    assert.equal(reader.classes, CLASSES);
    assert.deepEqual(
      reader.teachers.map((t) => [t.name, t.format, t.k, t.kind]),
      [
        ['cnn', 'float32', undefined, 'logits'],
        ['involution', 'top-k', 3, 'probabilities'],
      ],
    );
    await reader.close();
  });

  it('reads contiguous batches in order, every value as stored, prefetching the next shards', async () => {
    const reader = await LogitReader.open(store, [cnn.manifestKey, inv.manifestKey], student, {
      prefetch: 2,
    });
    const seen: number[] = [];
    let first = true;
    for await (const batch of reader.contiguousBatches(50)) {
      if (first) {
        // Batch 0 needs shard 0 of each teacher; shards 1 and 2 of each were asked for behind it.
        assert.equal(reader.stats().requested, 2 * 3);
        first = false;
      }
      assertRows(batch, [cnn, inv]);
      seen.push(...batch.indices);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: SAMPLES }, (_, i) => i),
    );
    // The float32 teacher's logits are the teacher's own, bit for bit.
    assert.deepEqual(cnn.expected, logitsA);
    const stats = reader.stats();
    assert.equal(stats.fetched, 2 * 8, 'each shard downloaded exactly once');
    await reader.close();

    const lazy = await LogitReader.open(store, [cnn.manifestKey, inv.manifestKey], student, { prefetch: 0 });
    const it = lazy.contiguousBatches(50);
    await it.next();
    assert.equal(lazy.stats().requested, 2, 'without prefetch only the batch’s own shards');
    await it.return(undefined);
    await lazy.close();
  });

  it('reads a shuffled order batch by batch, with prefetch, each shard fetched once', async () => {
    const reader = await LogitReader.open(store, [cnn.manifestKey, inv.manifestKey], student, {
      prefetch: 3,
      concurrency: 2,
    });
    const order = permutation(SAMPLES, 42);
    const got: number[] = [];
    for await (const batch of reader.batches(order, 64)) {
      assertRows(batch, [cnn, inv]);
      got.push(...batch.indices);
      // Probabilities from either kind of teacher row are distributions.
      for (const t of batch.teachers) {
        const p = toProbabilities(t);
        for (let r = 0; r < batch.indices.length; r++) {
          const sum = p.subarray(r * CLASSES, (r + 1) * CLASSES).reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(sum - 1) < 1e-5);
        }
      }
    }
    assert.deepEqual(got, Array.from(order));
    const stats = reader.stats();
    assert.equal(stats.fetched, 2 * 8);
    assert.equal(stats.evictions, 0);
    assert.ok(stats.hits > 0);
    assert.ok(stats.peakConcurrency >= 1 && stats.peakConcurrency <= 2, `${stats.peakConcurrency} at once`);
    await reader.close();
  });

  it('stays correct with a cache of one shard, fetching again what it evicted', async () => {
    const reader = await LogitReader.open(store, [cnn.manifestKey, cnnHalf.manifestKey], student, {
      cacheBytes: SHARD * CLASSES * 4,
    });
    for await (const batch of reader.batches(permutation(SAMPLES, 3), 100)) assertRows(batch, [cnn, cnnHalf]);
    const stats = reader.stats();
    assert.ok(stats.evictions > 0);
    assert.ok(stats.fetched > 2 * 8, `${stats.fetched} downloads`);
    assert.ok(stats.cachedBytes <= SHARD * CLASSES * 4);
    // The float16 teacher is the float32 one rounded to halves.
    const one = await reader.read([5, 999, 0, 5]);
    assert.deepEqual(Array.from(one.indices), [5, 999, 0, 5]);
    assertRows(one, [cnn, cnnHalf]);
    await reader.close();
  });

  it('refuses indices outside the set and bad options', async () => {
    const reader = await LogitReader.open(store, [cnn.manifestKey], student);
    await assert.rejects(reader.read([0, SAMPLES]), /position 1 is 1000, not an integer in \[0, 1000\)/);
    await assert.rejects(reader.read([1.5]), StoreUsageError);
    await reader.close();
    assert.throws(() => new LogitReader(store, [], student), /at least one manifest/);
    await assert.rejects(
      LogitReader.open(store, [cnn.manifestKey], student, { concurrency: 0 }),
      /concurrency/,
    );
  });

  it('refuses a manifest of another dataset, split or augmentation, naming the field and both values', async () => {
    const cases: [Partial<DataIdentity>, string, RegExp][] = [
      [
        { dataset: 'fashion-mnist' },
        'dataset',
        /dataset is "fashion-mnist" in the manifest but "mnist" for the student/,
      ],
      [{ split: 'test' }, 'split', /split is "test" in the manifest but "train" for the student/],
      [
        { augmentation: { policy: 'none', seed: 7 } },
        'augmentation.policy',
        /augmentation\.policy is "none" in the manifest but "random-crop-flip" for the student/,
      ],
      [
        { augmentation: { policy: 'random-crop-flip', seed: 8 } },
        'augmentation.seed',
        /augmentation\.seed is 8 in the manifest but 7 for the student/,
      ],
    ];
    for (const [patch, field, message] of cases) {
      const other = await publishSet(
        store,
        `teacher-${field}`,
        logitsB,
        'top-k',
        3,
        { ...student, ...patch },
        300,
      );
      await assert.rejects(
        LogitReader.open(store, [cnn.manifestKey, other.manifestKey], student),
        (e: unknown) => {
          assert.ok(e instanceof LogitSetMismatchError, String(e));
          assert.equal(e.field, field);
          assert.equal(e.manifestKey, other.manifestKey);
          assert.match(e.message, message);
          assert.match(e.message, new RegExp(other.manifestKey));
          assert.ok(isNonRetryable(e));
          return true;
        },
      );
    }
  });

  it('refuses teachers whose sample counts differ', async () => {
    const short = await publishSet(store, 'short', logitsB, 'float16', undefined, student, 900);
    await assert.rejects(
      LogitReader.open(store, [cnn.manifestKey, short.manifestKey], student),
      (e: unknown) => {
        assert.ok(e instanceof LogitSetMismatchError, String(e));
        assert.equal(e.field, 'sampleCount');
        assert.match(e.message, /sampleCount: 900 in '.*' \(teacher short\), 1000 in '.*' \(teacher cnn\)/);
        return true;
      },
    );
  });

  it('fails with an IntegrityError naming the key when a shard was damaged behind its back', async () => {
    const victim = await publishSet(store, 'victim', logitsA, 'float32', undefined);
    const key = victim.shardKeys[3] as string;
    const { bytes, ref } = await store.getBytes(key);
    const forged = Buffer.from(bytes);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0x40;
    // The old checksum copied over: the manifest's HEAD check passes, only hashing the content can tell.
    await raw.putObject(cfg.bucket, key, forged, forged.length, { sha256: ref.sha256 });

    const reader = await LogitReader.open(store, [cnn.manifestKey, victim.manifestKey], student, {
      prefetch: 2,
    });
    const ok: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const batch of reader.contiguousBatches(SHARD)) {
          assertRows(batch, [cnn, victim]);
          ok.push(batch.indices[0] as number);
        }
      })(),
      (e: unknown) => {
        assert.ok(e instanceof IntegrityError, String(e));
        assert.equal(e.key, key);
        assert.match(e.message, new RegExp(`'${key}'`));
        assert.equal(e.expectedSha256, ref.sha256);
        assert.ok(isNonRetryable(e));
        return true;
      },
    );
    // Shards 0..2 were served; the damage surfaced when shard 3 was needed, not at prefetch time.
    assert.deepEqual(ok, [0, 128, 256]);
    await reader.close();
  });

  it('checks every shard against the manifest, also one replaced by a valid shard after it was opened', async () => {
    const victim = await publishSet(store, 'replaced', logitsA, 'float32', undefined);
    const reader = await LogitReader.open(store, [victim.manifestKey], student);
    // A well-formed shard for the same range with a consistent recorded checksum: only the
    // manifest's checksum, passed as expectSha256 on every read, can tell it is not the published one.
    const key = victim.shardKeys[5] as string;
    const start = 5 * SHARD;
    const other = encodeLogitShard({
      format: 'float32',
      classes: CLASSES,
      start,
      logits: logitsB.subarray(start * CLASSES, (start + SHARD) * CLASSES),
    });
    const replaced = await store.putBytes(key, other);
    await assert.rejects(reader.read([start + 1]), (e: unknown) => {
      assert.ok(e instanceof IntegrityError, String(e));
      assert.equal(e.key, key);
      assert.equal(e.actualSha256, replaced.sha256);
      assert.match(e.message, /the checksum the caller expected/);
      return true;
    });
    await reader.close();
  });
});
