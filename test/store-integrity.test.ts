// Corruption, absence and outages against a real S3 server (MinIO). Objects are damaged
// behind the store's back with the plain minio client, the way a faulty disk, a stray
// tool or a concurrent writer would. Endpoint from S3_ENDPOINT, S3_ACCESS_KEY,
// S3_SECRET_KEY; each run uses its own bucket and removes it afterwards.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { z } from 'zod';
import {
  ArtifactFormatError,
  ArtifactNotFoundError,
  ArtifactStore,
  encodeSafetensors,
  IntegrityError,
  isNonRetryable,
  StoreUsageError,
  type S3Config,
  type NamedTensors,
} from '../store/index.js';

import { dropBucket, NO_S3, rawClient, s3, uniqueBucket } from './support/s3.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function weights(seed: number): NamedTensors {
  const w = new Float32Array(64);
  for (let i = 0; i < w.length; i++) w[i] = Math.cos(i * seed);
  return { w: { dtype: 'float32', shape: [8, 8], data: w } };
}

/** Asserts an IntegrityError that names the key and both hashes, and is non-retryable. */
function integrityFailure(key: string, expected: string, actual: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof IntegrityError, `expected IntegrityError, got ${String(e)}`);
    assert.match(e.message, new RegExp(`'${escape(key)}'`));
    assert.match(e.message, new RegExp(expected));
    assert.match(e.message, new RegExp(actual));
    assert.equal(e.key, key);
    assert.equal(e.nonRetryable, true);
    assert.ok(isNonRetryable(e));
    return true;
  };
}

function notFound(key: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof ArtifactNotFoundError, `expected ArtifactNotFoundError, got ${String(e)}`);
    assert.match(e.message, new RegExp(`'${escape(key)}'`));
    assert.equal(e.nonRetryable, true);
    return true;
  };
}

describe('artifact store integrity (real S3)', () => {
  if (!s3) {
    it('has an S3 server to test against', () => assert.fail(NO_S3));
    return;
  }
  const cfg: S3Config = { ...s3, bucket: uniqueBucket('integ') };
  const raw = rawClient(cfg);
  const store = new ArtifactStore(cfg);
  const buckets = [cfg.bucket];

  after(async () => {
    for (const b of buckets) await dropBucket(raw, b);
  });

  it('detects an object overwritten behind its back that kept the old checksum', async () => {
    const key = 'experiments/e1/level-2/weights.safetensors';
    const ref = await store.putTensors(key, weights(1));
    // Same size, different bytes, the old sha256 metadata copied over: only hashing the
    // content can tell.
    const forged = encodeSafetensors(weights(2));
    assert.equal(forged.length, ref.bytes);
    const forgedSha = sha256(forged);
    await raw.putObject(cfg.bucket, key, Buffer.from(forged), forged.length, { sha256: ref.sha256 });

    await assert.rejects(store.getTensors(key), integrityFailure(key, ref.sha256, forgedSha));
    await assert.rejects(store.getBytes(key), integrityFailure(key, ref.sha256, forgedSha));
    await assert.rejects(store.verify(key), integrityFailure(key, ref.sha256, forgedSha));
    // The HEAD-only stat cannot see it, which is why reads hash and stat says it does not.
    assert.equal((await store.stat(key)).sha256, ref.sha256);

    // Rewriting through the store repairs the object.
    await store.putTensors(key, weights(1));
    assert.deepEqual((await store.getTensors(key)).ref, ref);
  });

  it('detects a flipped bit', async () => {
    const key = 'runs/r1/checkpoints/step-3.safetensors';
    const ref = await store.putTensors(key, weights(3));
    const { bytes } = await store.getBytes(key);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
    await raw.putObject(cfg.bucket, key, bytes, bytes.length, { sha256: ref.sha256 });
    await assert.rejects(store.getTensors(key), integrityFailure(key, ref.sha256, sha256(bytes)));
  });

  it('refuses an object that carries no checksum', async () => {
    const key = 'runs/r1/foreign.bin';
    await raw.putObject(cfg.bucket, key, Buffer.from('written by someone else'));
    await assert.rejects(
      store.getBytes(key),
      (e: unknown) =>
        e instanceof IntegrityError &&
        /'runs\/r1\/foreign\.bin'/.test(e.message) &&
        /no valid x-amz-meta-sha256 checksum \(it is missing\)/.test(e.message),
    );
    await assert.rejects(store.stat(key), IntegrityError);
  });

  it('detects a mismatch with the checksum the caller expects', async () => {
    const key = 'runs/r1/metrics.json';
    const ref = await store.putJson(key, { loss: 0.25 });
    const other = sha256(Buffer.from('something else'));
    await assert.rejects(
      store.getBytes(key, { expectSha256: other }),
      integrityFailure(key, other, ref.sha256),
    );
    await assert.rejects(
      store.getJson(key, z.object({ loss: z.number() }), { expectSha256: other }),
      integrityFailure(key, other, ref.sha256),
    );
    await assert.rejects(store.getTensors(key, { expectSha256: other }), IntegrityError);
    assert.deepEqual(await store.getJson(key, z.object({ loss: z.number() }), { expectSha256: ref.sha256 }), {
      loss: 0.25,
    });
    await assert.rejects(store.getBytes(key, { expectSha256: 'ABC' }), StoreUsageError);
  });

  it('reports a missing object as ArtifactNotFoundError naming the key', async () => {
    const key = 'runs/never/final/weights.safetensors';
    await assert.rejects(store.getTensors(key), notFound(key));
    await assert.rejects(store.getBytes(key), notFound(key));
    await assert.rejects(store.getJson(key, z.unknown()), notFound(key));
    await assert.rejects(store.stat(key), notFound(key));
    await assert.rejects(store.verify(key), notFound(key));
    assert.equal(await store.exists(key), false);
    const elsewhere = new ArtifactStore({ ...cfg, bucket: uniqueBucket('absent') });
    await assert.rejects(elsewhere.getBytes(key), notFound(key));
  });

  it('reports intact but malformed content as ArtifactFormatError naming the key', async () => {
    await store.putBytes('runs/r1/not-tensors.safetensors', Buffer.from('definitely not safetensors'));
    await assert.rejects(
      store.getTensors('runs/r1/not-tensors.safetensors'),
      (e: unknown) =>
        e instanceof ArtifactFormatError &&
        /'runs\/r1\/not-tensors\.safetensors'/.test(e.message) &&
        e.nonRetryable,
    );
    await store.putBytes('runs/r1/not-json.json', Buffer.from('{"a":'));
    await assert.rejects(
      store.getJson('runs/r1/not-json.json', z.unknown()),
      (e: unknown) => e instanceof ArtifactFormatError && /not valid JSON/.test(e.message),
    );
  });

  describe('manifests', () => {
    const prefix = 'logits/abc/cifar10/f32';
    const manifestKey = `${prefix}/manifest.json`;
    const put = async (n: number) => {
      const entries = [];
      for (let i = 0; i < n; i++)
        entries.push(await store.putBytes(`${prefix}/shard-${i}.bin`, randomBytes(256)));
      return entries;
    };

    it('refuses a manifest listing an entry that was corrupted after publishing', async () => {
      const entries = await put(3);
      await store.publishManifest(manifestKey, { entries, teacher: 'cnn' });
      const victim = entries[1];
      assert.ok(victim);
      const forged = randomBytes(256);
      await raw.putObject(cfg.bucket, victim.key, forged, forged.length, { sha256: victim.sha256 });

      await assert.rejects(
        store.readManifest(manifestKey),
        integrityFailure(victim.key, victim.sha256, sha256(forged)),
      );
      // 'recorded' trusts the checksums on the objects, so this forgery passes it; the
      // read of the entry with the manifest's checksum still catches it.
      const shallow = await store.readManifest(manifestKey, { verify: 'recorded' });
      await assert.rejects(
        store.getBytes(victim.key, { expectSha256: shallow.entries[1]?.sha256 }),
        IntegrityError,
      );
    });

    it('refuses a manifest whose entry was rewritten with other content, even with the cheap check', async () => {
      const [entry] = await put(1);
      assert.ok(entry);
      await store.publishManifest(manifestKey, { entries: [entry] });
      const rewritten = await store.putBytes(entry.key, randomBytes(300)); // new checksum, new size
      for (const verify of ['content', 'recorded'] as const) {
        await assert.rejects(
          store.readManifest(manifestKey, { verify }),
          integrityFailure(entry.key, entry.sha256, rewritten.sha256),
        );
      }
    });

    it('refuses a manifest whose entry vanished', async () => {
      const entries = await put(2);
      await store.publishManifest(manifestKey, { entries });
      const gone = entries[1];
      assert.ok(gone);
      await store.remove(gone.key);
      for (const verify of ['content', 'recorded'] as const) {
        await assert.rejects(store.readManifest(manifestKey, { verify }), notFound(gone.key));
      }
    });

    it('refuses a tampered manifest', async () => {
      const entries = await put(1);
      const mref = await store.publishManifest(manifestKey, { entries });
      const tampered = Buffer.from(JSON.stringify({ entries: [] }));
      await raw.putObject(cfg.bucket, manifestKey, tampered, tampered.length, { sha256: mref.sha256 });
      await assert.rejects(
        store.readManifest(manifestKey),
        integrityFailure(manifestKey, mref.sha256, sha256(tampered)),
      );
    });

    it('refuses a manifest whose listed checksum is wrong, however it was written', async () => {
      const [entry] = await put(1);
      assert.ok(entry);
      const wrong = { ...entry, sha256: sha256(Buffer.from('not it')) };
      await store.putJson(manifestKey, { entries: [wrong] }); // bypassing publishManifest's checks
      await assert.rejects(
        store.readManifest(manifestKey),
        integrityFailure(entry.key, wrong.sha256, entry.sha256),
      );
      await assert.rejects(
        store.readManifest(manifestKey, { verify: 'recorded' }),
        integrityFailure(entry.key, wrong.sha256, entry.sha256),
      );
    });

    it('refuses to publish before the data is written, or with wrong checksums', async () => {
      const [entry] = await put(1);
      assert.ok(entry);
      const missing = { key: `${prefix}/shard-99.bin`, sha256: entry.sha256, bytes: entry.bytes };
      await assert.rejects(
        store.publishManifest(`${prefix}/m2.json`, { entries: [entry, missing] }),
        notFound(missing.key),
      );
      const wrong = { ...entry, sha256: sha256(Buffer.from('nope')) };
      await assert.rejects(store.publishManifest(`${prefix}/m2.json`, { entries: [wrong] }), IntegrityError);
      await assert.rejects(
        store.publishManifest(`${prefix}/m2.json`, { entries: [entry, entry] }),
        (e: unknown) => e instanceof StoreUsageError && /twice/.test(e.message),
      );
      await assert.rejects(
        store.publishManifest(`${prefix}/m2.json`, { entries: [{ ...entry, bytes: -1 }] }),
        (e: unknown) => e instanceof StoreUsageError && /entries\.0\.bytes/.test(e.message),
      );
      assert.equal(await store.exists(`${prefix}/m2.json`), false, 'nothing was published');
    });

    it('names the manifest and the field when a manifest is malformed', async () => {
      await store.putJson(`${prefix}/bad.json`, { entries: [{ key: 'x', sha256: 'short', bytes: 1 }] });
      await assert.rejects(
        store.readManifest(`${prefix}/bad.json`),
        (e: unknown) =>
          e instanceof ArtifactFormatError &&
          /bad\.json/.test(e.message) &&
          /entries\.0\.sha256/.test(e.message),
      );
    });
  });

  it('lets transient faults through as ordinary, retryable errors', async () => {
    // A port that was just free: the connection is refused.
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const down = new ArtifactStore({ ...cfg, endPoint: '127.0.0.1', port, useSSL: false });
    for (const op of [
      () => down.getBytes('k'),
      () => down.putBytes('k', Buffer.from('x')),
      () => down.exists('k'),
      () => down.readManifest('m.json'),
    ]) {
      await assert.rejects(op(), (e: unknown) => {
        assert.ok(!(e instanceof IntegrityError) && !(e instanceof ArtifactNotFoundError), String(e));
        assert.equal(isNonRetryable(e), false);
        assert.match(String((e as { code?: unknown }).code ?? (e as Error).message), /ECONNREFUSED/);
        return true;
      });
    }
  });
});
