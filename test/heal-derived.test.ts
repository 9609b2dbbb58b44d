// Healing derived objects on the real services: a tiny IMP trunk (levels 0..2, rewind to step 10) is trained, then stored objects are damaged behind the store's back with the raw S3 client: a flipped byte
// (checksum header kept, as bit rot leaves it) and other content with its own, matching checksum header (caught
// only against the manifest). A new execution of the same spec through `lth lottery` must recompute exactly the
// damaged levels and run, report their keys (in the result's `healed` and in the level lines), and leave every
// object with the SHA-256 it had before. A branch that reads a damaged trunk level recomputes that level too.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { startOrAttachBranch, startOrAttachLottery } from '../client/runs';
import { trainRunId, trunkLineageId } from '../contract/ids';
import { parseLotterySpec, type LevelResult, type LotteryResult } from '../contract/lottery';
import { endpointsToEnv } from '../infra/endpoints';
import {
  finalWeightsKey,
  levelManifestKey,
  levelTensorKey,
  s3ConfigFromEnv,
  sha256Hex,
  type ArtifactStore,
} from '../store';
import { fsck } from '../store/fsck';
import { openStore } from '../workers/connection';
import { deleteExecution } from './support/delete-execution';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { rawClient } from './support/s3';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

// The stack's own bucket (workers may use no other); the seed and tag keep this file's objects its own.
const e = testEndpoints();
const bucket = e.s3.bucket;
const tag = `hd${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const store: ArtifactStore = openStore(e);
const cfg = s3ConfigFromEnv(endpointsToEnv(e));
assert.ok(cfg);
const raw = rawClient(cfg);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });

const specInput = {
  experiment: tag,
  train: tinyLenetTrain(67, { iterations: 40, evalEvery: 20 }),
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 10 },
  checkpointEvery: 15,
};
const lottery = parseLotterySpec(specInput);
const lineage = trunkLineageId(lottery);
const runId = trainRunId(lottery.train);
const weights = (l: number) => levelTensorKey(lineage, l, 'weights');

/** Every object of this lineage and its dense run, with its content hash (verified against its own header). */
async function snapshot(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const prefix of [`experiments/${lineage}/`, `runs/${runId}/`])
    for (const { key } of await store.list(prefix)) out.set(key, (await store.verify(key)).sha256);
  return out;
}

/** fsck of this lineage's and its dense run's objects. */
async function check() {
  const a = await fsck(store, { prefix: `experiments/${lineage}/` });
  const b = await fsck(store, { prefix: `runs/${runId}/` });
  return { findings: [...a.findings, ...b.findings], clean: a.clean && b.clean };
}

/** A flipped byte in the middle, the checksum header kept: what bit rot does. */
async function flipByte(key: string): Promise<void> {
  const { bytes, ref } = await store.getBytes(key);
  const b = Buffer.from(bytes);
  const i = Math.floor(b.length / 2);
  b[i] = (b[i] as number) ^ 0x01;
  await raw.putObject(bucket, key, b, b.length, { sha256: ref.sha256 });
}

/** Other (valid) content with its own matching checksum header: only the manifest's entry tells. */
async function replaceWith(key: string, from: string): Promise<void> {
  const { bytes } = await store.getBytes(from);
  await raw.putObject(bucket, key, bytes, bytes.length, { sha256: sha256Hex(bytes) });
}

let before = new Map<string, string>();
let trunkWorkflowId = '';

test('damaged levels and the dense run are recomputed by the next execution, to the same bytes, and reported', async () => {
  const first = await startOrAttachLottery(workers.client, lottery);
  trunkWorkflowId = first.workflowId;
  const done = await first.handle.result();
  assert.deepEqual(
    done.levels.map((l) => [l.level, l.healed ?? []]),
    [
      [0, []],
      [1, []],
      [2, []],
    ],
  );
  before = await snapshot();

  // Level 0's weights and the dense run's final weights: a flipped byte. Level 1's weights: level 2's bytes,
  // with a checksum header that matches them.
  await flipByte(weights(0));
  await flipByte(finalWeightsKey(runId));
  await replaceWith(weights(1), weights(2));
  const damaged = await check();
  assert.deepEqual(
    damaged.findings
      .filter((f) => f.problem === 'corrupt')
      .map((f) => f.key)
      .sort(),
    [finalWeightsKey(runId), weights(0), weights(1)].sort(),
  );

  // lth attaches to a completed trunk: delete it, then the same spec starts a new execution.
  await deleteExecution(workers.client, trunkWorkflowId);
  const dir = mkdtempSync(path.join(tmpdir(), 'lth-heal-'));
  const file = path.join(dir, 'lottery.json');
  writeFileSync(file, JSON.stringify(specInput));
  const ran = ok(await lth(['lottery', '--config', file, '--json'], 300_000), 'lth lottery (rerun)');
  const result = JSON.parse(ran.stdout) as LotteryResult;
  const byLevel = (l: number) => result.levels.find((x) => x.level === l) as LevelResult;
  // Level 0: its weights and the run they are copied from; level 1: its weights; level 2 is intact and reused.
  assert.deepEqual(byLevel(0).healed?.sort(), [finalWeightsKey(runId), weights(0)].sort());
  assert.deepEqual(byLevel(1).healed, [weights(1)]);
  assert.equal(byLevel(2).healed, undefined);
  assert.deepEqual(
    result.levels.map((l) => [l.level, l.reused]),
    [
      [0, false],
      [1, false],
      [2, true],
    ],
  );
  // The level lines say what was recomputed.
  assert.match(
    ran.stderr,
    new RegExp(`level  1 .*\\[recomputed damaged: ${weights(1).replace(/\./g, '\\.')}\\]`),
  );

  // Every object has its bytes from before: the recomputation is the same computation on the same backend.
  const now = await snapshot();
  assert.deepEqual([...now.keys()].sort(), [...before.keys()].sort());
  for (const [k, sha] of before) assert.equal(now.get(k), sha, `${k} has its SHA-256 from before the damage`);
  assert.equal((await check()).clean, true);
});

test('a branch that reads a damaged trunk level recomputes it (and only it) before training', async () => {
  assert.ok(before.size > 0, 'the first test trained the trunk');
  await flipByte(weights(2));
  const branch = await startOrAttachBranch(workers.client, lottery, { kind: 'reinit', seed: 5 });
  const r = await branch.handle.result();
  const byLevel = (l: number) => r.levels.find((x) => x.level === l) as LevelResult;
  assert.deepEqual(byLevel(2).healed, [weights(2)], 'branch level 2 recomputed trunk level 2');
  assert.equal(byLevel(1).healed, undefined, 'branch level 1 found trunk level 1 intact');
  assert.equal((await store.verify(weights(2))).sha256, before.get(weights(2)));
  assert.equal(
    (await store.verify(levelManifestKey(lineage, 2))).sha256,
    before.get(levelManifestKey(lineage, 2)),
  );
});
