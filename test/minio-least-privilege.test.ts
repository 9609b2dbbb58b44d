// The workers' least-privilege MinIO user that `lth up` creates (infra/embedded-stack.ts, ensureWorkerUser): the
// endpoints the tests get from test/run.ts are that user's, which may do anything in the stack's bucket and nothing
// else: no other bucket (create, list, read, write), no admin API; a wrong secret is refused. Only what needs the
// admin (making another bucket to probe, creating a probe user) uses the admin keys, which stay with `lth up`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import type { Client } from 'minio';

import { ensureWorkerUser, minioAdminBinary } from '../infra/embedded-stack';
import {
  DEV_S3_ACCESS_KEY,
  DEV_S3_WORKER_ACCESS_KEY,
  embeddedAdminS3,
  s3Client,
  stackOptionsFromEnv,
  type StackEndpoints,
} from '../infra/endpoints';
import { dropBucket } from './support/s3';
import { testEndpoints } from './support/env';

const e = testEndpoints();
const rand = () => `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
// Outside the bucket and outside the test stack's extra `lth-test-*` grant (test/run.ts).
const other = `other-${rand()}`;
const prefix = `least-privilege/${rand()}/`;
// The admin's view of the same MinIO, only when it is the embedded stack test/run.ts started (its admin keys are
// the documented constants); against external services the tests that need the admin are skipped.
const admin: StackEndpoints['s3'] | null = (() => {
  if (!e.embedded) return null;
  const a = embeddedAdminS3(stackOptionsFromEnv(process.env));
  return a.endpoint === e.s3.endpoint ? a : null;
})();
const needsAdmin = admin ? {} : { skip: 'not the embedded test stack: its admin keys are unknown' };

let worker: Client;
let root: Client | null = null;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return String((err as { code?: unknown }).code ?? (err as Error).message);
  }
  return 'no error';
}

function listKeys(c: Client, bucket: string, pre = ''): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const keys: string[] = [];
    const s = c.listObjectsV2(bucket, pre, true);
    s.on('data', (o: { name?: string }) => {
      if (o.name) keys.push(o.name);
    });
    s.on('error', reject);
    s.on('end', () => resolve(keys));
  });
}

function adminTool(env: Record<string, string>, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(minioAdminBinary(), args, { env: { PATH: process.env.PATH ?? '', ...env } }, (err, _o, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

before(async () => {
  worker = await s3Client(e.s3);
  if (admin) {
    root = await s3Client(admin);
    await root.makeBucket(other);
    await root.putObject(other, 'secret.txt', Buffer.from('not for workers'));
  }
});

after(async () => {
  const names = await listKeys(worker, e.s3.bucket, prefix).catch(() => []);
  if (names.length) await worker.removeObjects(e.s3.bucket, names);
  if (root) await dropBucket(root, other);
});

test('the tests get the workers’ user, not the admin', needsAdmin, () => {
  assert.equal(e.s3.accessKey, DEV_S3_WORKER_ACCESS_KEY);
  assert.notEqual(e.s3.accessKey, DEV_S3_ACCESS_KEY);
  assert.notEqual(e.s3.secretKey, admin?.secretKey);
});

test('the workers’ user reads, writes, lists and deletes in its bucket', async () => {
  assert.equal(await worker.bucketExists(e.s3.bucket), true);
  const key = `${prefix}a.txt`;
  await worker.putObject(e.s3.bucket, key, Buffer.from('hello'));
  const stat = await worker.statObject(e.s3.bucket, key);
  assert.equal(stat.size, 5);
  const body = await worker.getObject(e.s3.bucket, key);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'hello');
  assert.deepEqual(await listKeys(worker, e.s3.bucket, prefix), [key]);
  await worker.removeObject(e.s3.bucket, key);
  assert.deepEqual(await listKeys(worker, e.s3.bucket, prefix), []);
});

test('the workers’ user cannot create another bucket', needsAdmin, async () => {
  const fresh = `other-${rand()}`;
  assert.equal(await code(worker.makeBucket(fresh)), 'AccessDenied');
  assert.equal(await root?.bucketExists(fresh), false);
});

test('the workers’ user lists no bucket but its own', needsAdmin, async () => {
  const names = (await worker.listBuckets()).map((b) => b.name);
  assert.ok(names.includes(e.s3.bucket), `own bucket listed: ${names.join(', ')}`);
  assert.ok(!names.includes(other), `${other} not listed: ${names.join(', ')}`);
  // Everything it sees is its bucket or the test stack's throw-away buckets (test/run.ts).
  for (const n of names) assert.ok(n === e.s3.bucket || n.startsWith('lth-test-'), n);
});

test('the workers’ user can neither read nor change another bucket', needsAdmin, async () => {
  assert.equal(await code(worker.bucketExists(other)), 'AccessDenied');
  assert.equal(await code(worker.statObject(other, 'secret.txt')), 'AccessDenied');
  assert.equal(await code(worker.getObject(other, 'secret.txt')), 'AccessDenied');
  assert.equal(await code(listKeys(worker, other)), 'AccessDenied');
  assert.equal(await code(worker.putObject(other, 'planted.txt', Buffer.from('x'))), 'AccessDenied');
  assert.equal(await code(worker.removeObject(other, 'secret.txt')), 'AccessDenied');
  assert.equal(await code(worker.removeBucket(other)), 'AccessDenied');
  assert.deepEqual(await listKeys(root as Client, other), ['secret.txt'], 'the other bucket is unchanged');
});

test('the workers’ user cannot use the admin API, e.g. to widen its own policy', async () => {
  const r = await adminTool(
    {
      LTH_MINIO_ROOT_USER: e.s3.accessKey,
      LTH_MINIO_ROOT_PASSWORD: e.s3.secretKey,
      LTH_MINIO_USER_SECRET: e.s3.secretKey,
    },
    ['ensure-user', '--endpoint', e.s3.endpoint, '--bucket', '*', '--user', e.s3.accessKey],
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Access Denied/);
});

test('a wrong secret or an unknown user is refused', async () => {
  const wrong = await s3Client({ ...e.s3, secretKey: `${e.s3.secretKey}-wrong` });
  assert.equal(await code(listKeys(wrong, e.s3.bucket)), 'SignatureDoesNotMatch');
  assert.equal(
    await code(wrong.putObject(e.s3.bucket, `${prefix}x`, Buffer.from('x'))),
    'SignatureDoesNotMatch',
  );
  const unknown = await s3Client({ ...e.s3, accessKey: `nobody${randomBytes(3).toString('hex')}` });
  assert.equal(await code(unknown.bucketExists(e.s3.bucket)), 'InvalidAccessKeyId');
});

test('ensureWorkerUser is idempotent and leaves the user exactly one bucket', needsAdmin, async () => {
  const probe = { accessKey: `lthprobe${randomBytes(3).toString('hex')}`, secretKey: `probe-${rand()}` };
  const log: string[] = [];
  const a = admin as StackEndpoints['s3'];
  // First granted the other bucket, then (twice) the stack's: the earlier grant must be gone.
  await ensureWorkerUser({ ...a, bucket: other }, probe, [], (l) => log.push(l));
  await ensureWorkerUser(a, probe, [], (l) => log.push(l));
  await ensureWorkerUser(a, probe, [], (l) => log.push(l));
  assert.match(
    log.at(-1) ?? '',
    new RegExp(`workers use the S3 user ${probe.accessKey}, allowed only bucket ${e.s3.bucket}`),
  );
  assert.ok(!log.join('\n').includes(probe.secretKey), 'the secret is never logged');
  const c = await s3Client({ ...e.s3, ...probe });
  assert.equal(await c.bucketExists(e.s3.bucket), true);
  assert.equal(await code(listKeys(c, other)), 'AccessDenied');
  assert.equal(
    await code(c.makeBucket(`lth-test-${rand()}`)),
    'AccessDenied',
    'no extra buckets unless asked',
  );
});
