// Shared setup for the store tests: a throw-away bucket per file on the real S3 server.
import { randomBytes } from 'node:crypto';

import * as Minio from 'minio';

import { s3ConfigFromEnv, type S3Config } from '../../store/index.js';

export const NO_S3 =
  'S3_ENDPOINT is not set: the store tests need a real S3/MinIO server, e.g. ' +
  'S3_ENDPOINT=http://127.0.0.1:9000 S3_ACCESS_KEY=... S3_SECRET_KEY=... node --import tsx --test test/store-*.test.ts';
export const s3 = s3ConfigFromEnv();

export function uniqueBucket(tag: string): string {
  return `lth-test-${tag}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function rawClient(cfg: S3Config): Minio.Client {
  return new Minio.Client({
    endPoint: cfg.endPoint,
    port: cfg.port,
    useSSL: cfg.useSSL,
    accessKey: cfg.accessKey,
    secretKey: cfg.secretKey,
  });
}

export async function dropBucket(client: Minio.Client, bucket: string): Promise<void> {
  if (!(await client.bucketExists(bucket))) return;
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.listObjectsV2(bucket, '', true);
    s.on('data', (o: Minio.BucketItem) => {
      if (o.name) names.push(o.name);
    });
    s.on('error', reject);
    s.on('end', resolve);
  });
  if (names.length) await client.removeObjects(bucket, names);
  await client.removeBucket(bucket);
}
