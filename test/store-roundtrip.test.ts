// Round trips through a real S3 server (MinIO). The endpoint comes only from the
// environment: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY. Each run uses its own bucket
// and removes it afterwards.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  ArtifactFormatError,
  ArtifactStore,
  ArtifactNotFoundError,
  isNonRetryable,
  checkpointKey,
  contentHash,
  storeFromEnv,
  type S3Config,
  type NamedTensors,
} from '../store/index.js';

import { dropBucket, NO_S3, rawClient, s3, uniqueBucket } from './support/s3.js';

function bytesOf(a: Float32Array | Float64Array | Int32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function checkpointTensors(): NamedTensors {
  const w = new Float32Array(1000);
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(i) * 1e-3;
  w[0] = -0;
  w[1] = Number.NaN;
  new DataView(w.buffer).setUint32(2 * 4, 0x7f800123, true); // signalling-NaN bit pattern
  w[3] = 1e-45;
  return {
    'conv1.weight': { dtype: 'float32', shape: [10, 10, 10], data: w },
    'conv1.mask': { dtype: 'uint8', shape: [7], data: new Uint8Array([1, 0, 1, 1, 0, 0, 1]) },
    step: { dtype: 'int32', shape: [], data: new Int32Array([1200]) },
    'rng.state': { dtype: 'int32', shape: [4], data: new Int32Array([-1, 0, 2147483647, -2147483648]) },
  };
}

describe('artifact store round trips (real S3)', () => {
  if (!s3) {
    it('has an S3 server to test against', () => assert.fail(NO_S3));
    return;
  }
  const cfg: S3Config = { ...s3, bucket: uniqueBucket('rt') };
  const raw = rawClient(cfg);
  const store = new ArtifactStore(cfg);
  const buckets: string[] = [cfg.bucket];

  after(async () => {
    for (const b of buckets) await dropBucket(raw, b);
  });

  it('creates its bucket on demand, also when several stores race to create it', async () => {
    const fresh = { ...cfg, bucket: uniqueBucket('race') };
    buckets.push(fresh.bucket);
    assert.equal(await raw.bucketExists(fresh.bucket), false);
    const racers = Array.from({ length: 4 }, () => new ArtifactStore(fresh));
    await Promise.all(racers.map((s) => s.ensureBucket()));
    assert.equal(await raw.bucketExists(fresh.bucket), true);

    const lazy = { ...cfg, bucket: uniqueBucket('lazy') };
    buckets.push(lazy.bucket);
    const s = new ArtifactStore(lazy);
    // Reads never create buckets: a missing bucket just means the object is missing.
    await assert.rejects(s.getBytes('nothing/here.bin'), ArtifactNotFoundError);
    assert.equal(await raw.bucketExists(lazy.bucket), false);
    assert.deepEqual(await s.list(''), []);
    await s.putJson('first.json', { hello: 'world' });
    assert.equal(await raw.bucketExists(lazy.bucket), true);
  });

  it('recreates its bucket on the retry after it was deleted behind its back', async () => {
    const gone = { ...cfg, bucket: uniqueBucket('gone') };
    buckets.push(gone.bucket);
    const s = new ArtifactStore(gone);
    await s.putBytes('a.bin', Buffer.from('a'));
    await dropBucket(raw, gone.bucket);
    // The first write after the deletion fails as a plain, retryable error...
    await assert.rejects(s.putBytes('b.bin', Buffer.from('b')), (e: unknown) => !isNonRetryable(e));
    // ...and the retry succeeds.
    await s.putBytes('b.bin', Buffer.from('b'));
    assert.equal(await s.exists('b.bin'), true);
  });

  it('round-trips a tensor set bit-exactly, with its metadata', async () => {
    const key = checkpointKey('run-rt', 1200);
    const tensors = checkpointTensors();
    const metadata = { backend: 'tensorflow', step: '1200', 'data-order': 'seed=7;epoch=3', note: 'ü ✓' };
    const ref = await store.putTensors(key, tensors, metadata);
    assert.equal(ref.key, key);
    assert.match(ref.sha256, /^[0-9a-f]{64}$/);

    const got = await store.getTensors(key);
    assert.deepEqual(got.ref, ref);
    assert.deepEqual(got.metadata, metadata);
    assert.deepEqual(Object.keys(got.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const g = got.tensors[name];
      assert.ok(g, name);
      assert.equal(g.dtype, t.dtype, name);
      assert.deepEqual(g.shape, t.shape, name);
      assert.equal(g.data.constructor, t.data.constructor, name);
      assert.ok(bytesOf(g.data).equals(bytesOf(t.data)), `${name} differs`);
    }
    const st = await store.stat(key);
    assert.deepEqual({ key: st.key, sha256: st.sha256, bytes: st.bytes }, ref);
    const head = await raw.statObject(cfg.bucket, key);
    assert.equal(head.metaData.sha256, ref.sha256, 'checksum is stored as x-amz-meta-sha256');
  });

  it('round-trips JSON through a schema, as canonical (sorted-key) text', async () => {
    const schema = z.object({
      level: z.number().int(),
      accuracy: z.number(),
      tags: z.array(z.string()),
      extra: z.object({ sparsity: z.number() }),
    });
    const value = { tags: ['imp', 'rewind'], level: 3, extra: { sparsity: 0.488 }, accuracy: 0.9123 };
    const ref = await store.putJson('experiments/e1/level-3/metrics.json', value);
    assert.deepEqual(await store.getJson('experiments/e1/level-3/metrics.json', schema), value);
    const { bytes } = await store.getBytes(ref.key);
    assert.equal(
      bytes.toString('utf8'),
      '{\n  "accuracy": 0.9123,\n  "extra": {\n    "sparsity": 0.488\n  },\n  "level": 3,\n  "tags": [\n    "imp",\n    "rewind"\n  ]\n}\n',
    );
    const reordered = await store.putJson('experiments/e1/level-3/metrics-copy.json', {
      level: 3,
      accuracy: 0.9123,
      extra: { sparsity: 0.488 },
      tags: ['imp', 'rewind'],
    });
    assert.equal(reordered.sha256, ref.sha256, 'same value, same bytes, whatever the key order');
  });

  it('names the key and the field when JSON fails its schema', async () => {
    await store.putJson('experiments/e1/spec.json', { model: { width: '64' } });
    await assert.rejects(
      store.getJson('experiments/e1/spec.json', z.object({ model: z.object({ width: z.number() }) })),
      (e: unknown) => {
        assert.ok(e instanceof ArtifactFormatError);
        assert.match(e.message, /'experiments\/e1\/spec\.json'/);
        assert.match(e.message, /model\.width/);
        assert.equal(e.nonRetryable, true);
        return true;
      },
    );
  });

  it('round-trips raw bytes of any size, including empty', async () => {
    for (const size of [0, 1, 5 * 1024 * 1024 + 3]) {
      const data = randomBytes(size);
      const ref = await store.putBytes(`logits/t/ds/f32/shard-${size}.bin`, data);
      const got = await store.getBytes(ref.key, { expectSha256: ref.sha256 });
      assert.ok(got.bytes.equals(data), `size ${size}`);
      assert.deepEqual(got.ref, ref);
      assert.deepEqual(await store.verify(ref.key), ref);
    }
  });

  it('publishes a manifest after its data and reads it back verified', async () => {
    const prefix = `logits/${contentHash({ teacher: 'cnn', seed: 1 })}/cifar10/f32`;
    const entries = [];
    for (let i = 0; i < 3; i++)
      entries.push(await store.putBytes(`${prefix}/shard-${i}.bin`, randomBytes(1000 + i)));
    const manifest = { entries, teacher: 'cnn', shardSize: 1000, classes: 10 };
    const mref = await store.publishManifest(`${prefix}/manifest.json`, manifest);
    assert.equal(mref.key, `${prefix}/manifest.json`);

    const back = await store.readManifest(`${prefix}/manifest.json`);
    assert.deepEqual(back, manifest);

    // Entries taken from stat() carry lastModified; the manifest stores plain refs.
    const fromStat = await Promise.all(entries.map((e) => store.stat(e.key)));
    const sref = await store.publishManifest(`${prefix}/manifest-from-stat.json`, { entries: fromStat });
    assert.deepEqual(await store.readManifest(sref.key), { entries });
    assert.deepEqual(
      await store.readManifest(`${prefix}/manifest.json`, { verify: 'recorded', expectSha256: mref.sha256 }),
      manifest,
    );
    for (const entry of back.entries)
      assert.deepEqual((await store.getBytes(entry.key, { expectSha256: entry.sha256 })).ref, entry);
  });

  it('is idempotent: the same content under the same key gives the same ref and object', async () => {
    const key = 'runs/run-idem/final/weights.safetensors';
    const first = await store.putTensors(key, checkpointTensors(), { a: '1' });
    const second = await store.putTensors(key, checkpointTensors(), { a: '1' });
    assert.deepEqual(second, first);
    assert.equal((await store.getTensors(key)).ref.sha256, first.sha256);

    const j1 = await store.putJson('runs/run-idem/metrics.json', { b: 2, a: 1 });
    const j2 = await store.putJson('runs/run-idem/metrics.json', { a: 1, b: 2 });
    assert.deepEqual(j2, j1);

    const m = { entries: [first, j1], kind: 'final' };
    const m1 = await store.publishManifest('runs/run-idem/manifest.json', m);
    const m2 = await store.publishManifest('runs/run-idem/manifest.json', m);
    assert.deepEqual(m2, m1);
    assert.deepEqual(await store.list('runs/run-idem/').then((l) => l.map((o) => o.key)), [
      'runs/run-idem/final/weights.safetensors',
      'runs/run-idem/manifest.json',
      'runs/run-idem/metrics.json',
    ]);
  });

  it('lists by prefix in key order, checks existence, removes idempotently', async () => {
    await store.putBytes('runs/run-ls/checkpoints/step-10.safetensors', Buffer.from('b'));
    await store.putBytes('runs/run-ls/checkpoints/step-9.safetensors', Buffer.from('a'));
    await store.putBytes('runs/run-lsx/other.bin', Buffer.from('c'));
    const listed = await store.list('runs/run-ls/');
    assert.deepEqual(
      listed.map((o) => [o.key, o.bytes]),
      [
        ['runs/run-ls/checkpoints/step-10.safetensors', 1],
        ['runs/run-ls/checkpoints/step-9.safetensors', 1],
      ],
    );
    assert.ok(listed.every((o) => o.lastModified instanceof Date));
    assert.equal(await store.exists('runs/run-ls/checkpoints/step-9.safetensors'), true);
    await store.remove('runs/run-ls/checkpoints/step-9.safetensors');
    await store.remove('runs/run-ls/checkpoints/step-9.safetensors');
    assert.equal(await store.exists('runs/run-ls/checkpoints/step-9.safetensors'), false);
  });

  it('storeFromEnv uses the S3_* variables', async () => {
    const s = storeFromEnv({ ...process.env, S3_BUCKET: cfg.bucket });
    assert.equal(s.bucket, cfg.bucket);
    await s.putJson('runs/run-env/metrics.json', { a: 1, b: 2 });
    assert.deepEqual(
      await store.getJson('runs/run-env/metrics.json', z.object({ a: z.number(), b: z.number() })),
      { a: 1, b: 2 },
    );
    assert.throws(() => storeFromEnv({}), /S3_ENDPOINT is not set/);
  });
});
