// A compute worker holds no more tensors after the fourth IMP level than after the first: it logs its backend's live
// tensors and resident memory after every activity (workers/memory-log.ts), and this test reads those lines from a
// real worker process that trains a tiny LeNet-300-100 lottery (levels 0..3) on the real Temporal server and MinIO.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { startOrAttachLottery } from '../client/runs';
import { parseLotterySpec } from '../contract/lottery';
import { endpointsToEnv } from '../infra/endpoints';
import { connectClient } from '../workers/connection';
import { MEMORY_LINE, memoryLine } from '../workers/memory-log';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, tensorMemory } from '../ml/backend';
import { spawnWorker, stopWorker } from '../workers/spawn';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';

const e = testEndpoints();
const tag = `mem${Date.now().toString(36)}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-worker-memory-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const spec = parseLotterySpec({
  experiment: tag,
  train: tinyLenetTrain(9, { iterations: 30, evalEvery: 15 }),
  levels: 3,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 5 },
  checkpointEvery: 10,
});

test('the memory line counts the tensors the backend holds', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const before = MEMORY_LINE.exec(memoryLine('train', { tensors: tensorMemory }));
  const held = [tf.zeros([256, 1024]), tf.ones([3])];
  const during = MEMORY_LINE.exec(memoryLine('train', { tensors: tensorMemory }));
  held.forEach((t) => t.dispose());
  assert.equal(before?.[1], 'train');
  assert.equal(Number(during?.[2]) - Number(before?.[2]), 2);
  assert.ok(
    Math.abs(Number(during?.[3]) - Number(before?.[3]) - 1) < 0.11,
    'a 256×1024 float32 tensor is 1 MiB',
  );
});

test("a compute worker's live tensors stay flat across the levels of an IMP run", async () => {
  const env = { ...endpointsToEnv(e), LTH_BACKEND: 'wasm' };
  const logFile = path.join(tmp, 'compute.log');
  const workers = [spawnWorker('light', { env }), spawnWorker('compute', { env, logFile })];
  const client = await connectClient(e);
  try {
    await Promise.all(workers.map((w) => w.ready));
    const run = await startOrAttachLottery(client, spec);
    const result = await run.handle.result();
    assert.deepEqual(
      result.levels.map((l) => l.level),
      [0, 1, 2, 3],
    );
  } finally {
    await client.connection.close();
    await Promise.all(workers.map((w) => stopWorker(w, 20_000)));
  }
  const levels = fs
    .readFileSync(logFile, 'utf8')
    .split('\n')
    .map((line) => MEMORY_LINE.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === 'lotteryLevel')
    .map((m) => ({ tensors: Number(m[2]), rssMiB: Number(m[4]) }));
  assert.equal(levels.length, 4, 'one memory line per level activity');
  // The first level may leave what a backend keeps for the process (compiled kernels' constants); no later one adds.
  for (const [i, l] of levels.entries()) {
    assert.equal(
      l.tensors,
      levels[0]?.tensors,
      `level ${i}: ${l.tensors} tensors, level 0 left ${levels[0]?.tensors}`,
    );
  }
  process.stderr.write(`worker memory after each level: ${JSON.stringify(levels)}\n`);
});
