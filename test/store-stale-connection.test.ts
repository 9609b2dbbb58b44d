// A compute worker whose thread was busy for a long time (a forward pass on a slow backend) must still be able to
// store its result: the store's pooled keep-alive connection may have been closed by the server meanwhile
// without the client noticing. Reproduced with a proxy that closes every connection while the test blocks its
// own thread; the next write and read must succeed (they are sent again on a fresh connection).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';

import * as Minio from 'minio';

import { ArtifactStore } from '../store/index.js';
import { dropBucket, NO_S3, rawClient, s3, uniqueBucket } from './support/s3.js';

if (!s3) throw new Error(NO_S3);
const cfg = s3;
const bucket = uniqueBucket('stale');
const proxy = spawn(
  process.execPath,
  ['--import', 'tsx', path.join(__dirname, 'support', 'drop-proxy.ts'), cfg.endPoint, String(cfg.port)],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = readline.createInterface({ input: proxy.stdout! })[Symbol.asyncIterator]();
const nextLine = async (): Promise<string> => {
  const r = await lines.next();
  if (r.done) throw new Error('the proxy exited');
  return r.value;
};
let store: ArtifactStore;
let client: Minio.Client;

before(async () => {
  const port = Number(await nextLine());
  store = new ArtifactStore({ ...cfg, endPoint: '127.0.0.1', port, bucket });
  client = rawClient(cfg);
});

after(async () => {
  proxy.stdin!.end();
  proxy.kill();
  await dropBucket(client, bucket);
});

/** Keeps this thread busy, as a long synchronous forward pass does: nothing else runs meanwhile. */
function blockThread(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

/** Asks the proxy to close every connection shortly, then blocks through it. */
async function serverClosesWhileBlocked(): Promise<void> {
  proxy.stdin!.write('drop 100\n');
  assert.equal(await nextLine(), 'scheduled');
  blockThread(800);
}

test('a write and a read right after a long busy stretch succeed although their pooled connection died', async () => {
  const first = Buffer.from('first object');
  await store.putBytes('stale/first', first);

  await serverClosesWhileBlocked();
  const second = Buffer.from('written on a connection the server had closed');
  const ref = await store.putBytes('stale/second', second);
  assert.equal(ref.bytes, second.length);

  await serverClosesWhileBlocked();
  const back = await store.getBytes('stale/second');
  assert.deepEqual(back.bytes, second);

  await serverClosesWhileBlocked();
  assert.equal(await store.exists('stale/first'), true);
});
