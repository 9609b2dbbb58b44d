// lth fsck on the real services: a tiny IMP trunk (its dense run, rewind point, levels 0..1) and a logit set of its
// dense run are produced by the real workflows in a private bucket, with a report, analysis objects and checkpoints
// beside them. Then each object kind gets one kind of damage, written with the raw S3 client behind the store's back
// (bit rot): a flipped byte, a truncation, other content under the same key with a matching checksum header, a
// deleted object. fsck must name exactly those (problem, key) pairs, --repair must leave a store on which fsck is
// clean, and a new execution of the same specs must recompute what was removed, to the same SHA-256s as before.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startOrAttachLottery } from '../client/runs';
import { trainRunId, trunkLineageId } from '../contract/ids';
import { parseLotterySpec } from '../contract/lottery';
import { parsePrecomputeSpec } from '../contract/precompute';
import { LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { endpointsToEnv } from '../infra/endpoints';
import {
  analysisKey,
  checkpointKey,
  contentHash,
  experimentReportKey,
  finalWeightsKey,
  levelManifestKey,
  levelTensorKey,
  rewindStateKey,
  runManifestKey,
  runMetricsKey,
  s3ConfigFromEnv,
  sha256Hex,
  type ArtifactStore,
} from '../store';
import { fsck, RERUN_NOTE, type FsckReport } from '../store/fsck';
import { openStore } from '../workers/connection';
import { precomputeLogitsWorkflow } from '../workflows/logits';
import { deleteExecution } from './support/delete-execution';
import { lthRunner } from './support/cli';
import { testEndpoints } from './support/env';
import { dropBucket, rawClient, uniqueBucket } from './support/s3';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const base = testEndpoints();
const bucket = uniqueBucket('fsck');
// A bucket of its own, so that fsck sees exactly what this file wrote.
const e = { ...base, s3: { ...base.s3, bucket } };
const tag = `fk${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const store: ArtifactStore = openStore(e);
const cfg = s3ConfigFromEnv(endpointsToEnv(e));
assert.ok(cfg);
const raw = rawClient(cfg);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });

after(async () => {
  await dropBucket(raw, bucket);
});

const train = tinyLenetTrain(61, { iterations: 40, evalEvery: 20 });
const lottery = parseLotterySpec({
  experiment: tag,
  train,
  levels: 1,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 10 },
  checkpointEvery: 15,
});
// The teacher is the trunk's dense run itself: the same training config is the same run.
const precompute = parsePrecomputeSpec({
  experiment: tag,
  teacher: { name: 'fsck-lenet', train },
  split: 'test',
  limit: 100,
  format: 'float32',
  shardSize: 50,
});
const lineage = trunkLineageId(lottery);
const runId = trainRunId(lottery.train);
const unfinishedRun = contentHash({ tag, what: 'an unfinished run' }).slice(0, 24);

const K = {
  runManifest: runManifestKey(runId),
  runWeights: finalWeightsKey(runId),
  runMetrics: runMetricsKey(runId),
  rewindState: rewindStateKey(runId, 10),
  level: (l: number, a: 'weights' | 'mask' | 'rewind') => levelTensorKey(lineage, l, a),
  levelMetrics: (l: number) => `experiments/${lineage}/level-${l}/metrics.json`,
  levelManifest: (l: number) => levelManifestKey(lineage, l),
  report: experimentReportKey(lineage, 'report.md'),
  plot: experimentReportKey(lineage, 'accuracy.svg'),
  // A checkpoint of a run without a manifest (running or cancelled): kept, its next start resumes from it.
  liveCheckpoint: checkpointKey(unfinishedRun, 15),
  // Checkpoints a killed worker left behind after the dense run and level 1 were published: garbage.
  orphanRunCheckpoint: checkpointKey(runId, 15),
  orphanLevelCheckpoint: checkpointKey(`${lineage}-L1`, 30),
  analysisResult: analysisKey(`fsck-${tag}`, 'result.json'),
  analysisArrays: analysisKey(`fsck-${tag}`, 'arrays.safetensors'),
  analysisDoneProgress: analysisKey(`fsck-${tag}`, 'progress.safetensors'),
  analysisLiveProgress: analysisKey(`fsck-${tag}-live`, 'progress.safetensors'),
  // Level 2 is not in the spec: its start written and never published (a cancelled level). Ambiguous.
  partialMask: levelTensorKey(lineage, 2, 'mask'),
  partialRewind: levelTensorKey(lineage, 2, 'rewind'),
  foreign: `notes-${tag}/readme.txt`,
};
let logitManifest = '';
let shard = (i: number): string => `${logitManifest.replace(/manifest\.json$/, '')}shard-${i}.bin`;

/** problem → sorted keys, for exact comparisons. */
function byProblem(r: Pick<FsckReport, 'findings'>): Record<string, string[]> {
  const out: Record<string, string[]> = { corrupt: [], missing: [], orphan: [], unlisted: [] };
  for (const f of r.findings) out[f.problem]!.push(f.key);
  for (const k of Object.keys(out)) out[k]!.sort();
  return out;
}

const sorted = (keys: string[]): string[] => [...keys].sort();

/** Every lth object's content hash (verified against its header), the foreign object left out. */
async function snapshot(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { key } of await store.list('')) {
    if (key === K.foreign) continue;
    out.set(key, (await store.verify(key)).sha256);
  }
  return out;
}

async function rawPut(key: string, bytes: Buffer, headerSha: string | null): Promise<void> {
  await raw.putObject(bucket, key, bytes, bytes.length, headerSha === null ? {} : { sha256: headerSha });
}

/** Rewrites `key` behind the store's back, keeping the checksum header it had (what bit rot does). */
async function damage(key: string, f: (b: Buffer) => Buffer): Promise<void> {
  const { bytes, ref } = await store.getBytes(key);
  await rawPut(key, f(Buffer.from(bytes)), ref.sha256);
}
const flipByte = (b: Buffer): Buffer => {
  const i = Math.floor(b.length / 2);
  b[i] = (b[i] as number) ^ 0x01;
  return b;
};
const truncate = (b: Buffer): Buffer => b.subarray(0, Math.floor(b.length / 2));

let before = new Map<string, string>();

test('the real artifacts and their neighbours: fsck tells orphans from what is unlisted by design, and --repair removes only the orphans', async () => {
  assert.equal(trainRunId(precompute.teacher.train), runId, 'the logit teacher is the dense run');
  const trunk = await startOrAttachLottery(workers.client, lottery);
  const levels = (await trunk.handle.result()).levels;
  assert.deepEqual(
    levels.map((l) => l.level),
    [0, 1],
  );
  const pre = await workers.client.workflow.execute(precomputeLogitsWorkflow, {
    args: [precompute],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-precompute`,
  });
  assert.equal(pre.shards.length, 2);
  logitManifest = pre.manifestKey;
  shard = (i) => pre.shards[i]!.key;

  // What lth report writes, and what the other writers leave.
  await store.putBytes(K.report, Buffer.from(`# ${tag}\n\nlevels 0..1\n`), { contentType: 'text/markdown' });
  await store.putBytes(K.plot, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>\n'), {
    contentType: 'image/svg+xml',
  });
  const state = (await store.getBytes(K.level(0, 'rewind'))).bytes;
  for (const k of [K.liveCheckpoint, K.orphanRunCheckpoint, K.orphanLevelCheckpoint])
    await store.putBytes(k, state);
  const vec = { v: { dtype: 'float64' as const, shape: [3], data: Float64Array.from([1, 2, 3]) } };
  await store.putTensors(K.analysisArrays, vec, { measure: 'trace' });
  await store.putJson(K.analysisResult, { measure: 'trace', summary: { trace: 6 } });
  await store.putTensors(K.analysisDoneProgress, vec, { steps: '3' });
  await store.putTensors(K.analysisLiveProgress, vec, { steps: '1' });
  await store.putBytes(K.partialMask, (await store.getBytes(K.level(1, 'mask'))).bytes);
  await store.putBytes(K.partialRewind, (await store.getBytes(K.level(1, 'rewind'))).bytes);
  await rawPut(K.foreign, Buffer.from('not written by lth\n'), null);

  const first = await fsck(store);
  assert.deepEqual(byProblem(first), {
    corrupt: [],
    missing: [],
    orphan: sorted([K.orphanRunCheckpoint, K.orphanLevelCheckpoint, K.analysisDoneProgress]),
    unlisted: sorted([K.partialMask, K.partialRewind, K.foreign]),
  });
  // Four manifests (the run, levels 0 and 1, the logit set) listing 2 + 4 + 4 + 2 objects.
  assert.equal(first.manifests, 4);
  assert.equal(first.listed, 12);
  assert.deepEqual(first.kept, {
    'rewind-state': 1,
    report: 2,
    checkpoint: 1,
    'analysis-result': 1,
    'analysis-arrays': 1,
    'analysis-progress': 1,
  });
  assert.equal(first.clean, false);
  assert.deepEqual(first.notes, [RERUN_NOTE], 'the unfinished level 2 is finished by a new execution');
  for (const f of first.findings) assert.ok(f.next.length > 0 && f.detail.length > 0, f.key);
  assert.match(first.findings.find((f) => f.key === K.orphanRunCheckpoint)!.detail, /finished run/);
  assert.match(first.findings.find((f) => f.key === K.partialMask)!.detail, /no manifest/);

  const repaired = await fsck(store, { repair: true });
  assert.deepEqual(
    sorted(repaired.removed),
    sorted([K.orphanRunCheckpoint, K.orphanLevelCheckpoint, K.analysisDoneProgress]),
  );
  assert.equal(repaired.clean, true);
  const clean = await fsck(store);
  assert.equal(clean.clean, true);
  assert.deepEqual(byProblem(clean), {
    corrupt: [],
    missing: [],
    orphan: [],
    unlisted: sorted([K.partialMask, K.partialRewind, K.foreign]),
  });
  for (const k of [K.liveCheckpoint, K.partialMask, K.partialRewind, K.foreign, K.analysisLiveProgress])
    assert.ok(await store.exists(k), `${k} is kept`);
  before = await snapshot();
});

test('each kind of damage is found as exactly (problem, key); --repair leaves a clean store; the specs run again recompute the same bytes', async () => {
  assert.ok(before.size > 0, 'the first test produced the artifacts');
  // Level weights: a flipped byte. Level mask: other content (a valid mask) with its own, matching checksum header.
  await damage(K.level(0, 'weights'), flipByte);
  const otherMask = (await store.getBytes(K.level(1, 'mask'))).bytes;
  await rawPut(K.level(0, 'mask'), otherMask, sha256Hex(otherMask));
  // Logit shard: truncated. Run weights: deleted. Rewind state (listed by nothing): a flipped byte.
  await damage(shard(1), truncate);
  await raw.removeObject(bucket, K.runWeights);
  await damage(K.rewindState, flipByte);
  // A checkpoint of an unfinished run: truncated. A manifest: a flipped byte. A report: a flipped byte.
  await damage(K.liveCheckpoint, truncate);
  await damage(K.levelManifest(1), flipByte);
  await damage(K.report, flipByte);

  const level1Objects = [K.level(1, 'weights'), K.level(1, 'mask'), K.level(1, 'rewind'), K.levelMetrics(1)];
  const expected = {
    corrupt: sorted([
      K.level(0, 'weights'),
      K.level(0, 'mask'),
      shard(1),
      K.rewindState,
      K.liveCheckpoint,
      K.levelManifest(1),
      K.report,
    ]),
    missing: [K.runWeights],
    orphan: [],
    // Level 1's objects: nothing vouches for them while its manifest is unreadable; never removed.
    unlisted: sorted([K.partialMask, K.partialRewind, K.foreign, ...level1Objects]),
  };

  // The command: exit 1, and the same findings as JSON.
  const ran = await lth(['fsck', '--json'], 120_000);
  assert.equal(ran.code, 1, `lth fsck on a damaged store exits 1:\n${ran.stderr}`);
  const report = JSON.parse(ran.stdout) as FsckReport;
  assert.deepEqual(byProblem(report), expected);
  assert.equal(report.clean, false);
  assert.deepEqual(report.notes, [RERUN_NOTE]);
  const find = (k: string) => report.findings.find((f) => f.key === k)!;
  assert.equal(find(K.level(0, 'weights')).listedBy, K.levelManifest(0));
  assert.equal(find(K.level(0, 'weights')).kind, 'level-weights');
  assert.match(find(K.level(0, 'mask')).detail, /other content/);
  assert.equal(find(K.level(0, 'mask')).kind, 'level-mask');
  assert.equal(find(shard(1)).listedBy, logitManifest);
  assert.match(find(shard(1)).detail, /bytes, the manifest lists/);
  assert.equal(find(K.runWeights).listedBy, K.runManifest);
  assert.equal(find(K.rewindState).kind, 'rewind-state');
  assert.equal(find(K.liveCheckpoint).kind, 'checkpoint');
  assert.equal(find(K.levelManifest(1)).kind, 'manifest');
  assert.equal(find(K.report).kind, 'report');
  assert.match(find(K.level(1, 'weights')).detail, /unreadable/);

  // The readable text, and --repair through the command.
  const text = await lth(['fsck'], 120_000);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /7 corrupt, 1 missing, 0 orphan, 7 unlisted/);
  assert.match(text.stdout, /next: /);
  const fixed = await lth(['fsck', '--repair'], 120_000);
  assert.equal(
    fixed.code,
    0,
    `lth fsck --repair exits 0 once everything it found is repaired:\n${fixed.stdout}`,
  );
  assert.match(fixed.stdout, /repaired: the store is clean/);

  // What went: each corrupt object with its manifest, the manifest of the missing object, nothing ambiguous.
  const gone = [
    K.level(0, 'weights'),
    K.level(0, 'mask'),
    K.levelManifest(0),
    shard(1),
    logitManifest,
    K.runManifest,
    K.rewindState,
    K.liveCheckpoint,
    K.levelManifest(1),
    K.report,
  ];
  for (const k of gone) assert.equal(await store.exists(k), false, `${k} was removed`);
  const afterRepair = await fsck(store);
  assert.equal(afterRepair.clean, true);
  assert.deepEqual(byProblem(afterRepair), {
    corrupt: [],
    missing: [],
    orphan: [],
    unlisted: sorted([
      K.partialMask,
      K.partialRewind,
      K.foreign,
      ...level1Objects,
      K.level(0, 'rewind'),
      K.levelMetrics(0),
      K.runMetrics,
      shard(0),
    ]),
  });

  // lth attaches to the completed trunk of the same spec and returns its old result...
  const attached = await startOrAttachLottery(workers.client, lottery);
  assert.equal(attached.started, false);
  // ...so, as fsck's note says, that execution is deleted first; the same spec then starts a new one, in which
  // the manifests' absence makes it redo the dense run and both levels.
  await deleteExecution(workers.client, attached.workflowId);
  const again = await startOrAttachLottery(workers.client, lottery);
  assert.equal(again.started, true);
  const rerun = await again.handle.result();
  assert.deepEqual(
    rerun.levels.map((l) => [l.level, l.reused]),
    [
      [0, false],
      [1, false],
    ],
  );
  const pre = await workers.client.workflow.execute(precomputeLogitsWorkflow, {
    args: [precompute],
    taskQueue: LIGHT_TASK_QUEUE,
    workflowId: `${tag}-precompute-rerun`,
  });
  assert.equal(pre.manifestKey, logitManifest);
  assert.equal(pre.computedShards, 1);
  assert.equal(pre.skippedShards, 1);

  // Every object the specs produce is back with the bytes it had; the report (lth report writes it) and the
  // unfinished run's checkpoint (its run is not started again here) are not recomputed by the specs.
  const now = await snapshot();
  const expectedNow = new Map(before);
  expectedNow.delete(K.report);
  expectedNow.delete(K.liveCheckpoint);
  assert.deepEqual(sorted([...now.keys()]), sorted([...expectedNow.keys()]));
  for (const [k, sha] of expectedNow)
    assert.equal(now.get(k), sha, `${k} has its SHA-256 from before the damage`);
  const final = await fsck(store);
  assert.equal(final.clean, true);
  assert.deepEqual(byProblem(final), {
    corrupt: [],
    missing: [],
    orphan: [],
    unlisted: sorted([K.partialMask, K.partialRewind, K.foreign]),
  });
});
