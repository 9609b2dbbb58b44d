// `npm run test:cluster`: the production topology run for real. An IMP experiment (a trunk and two control
// branches) runs on the cluster profile (Temporal server on PostgreSQL, erasure-coded MinIO over 4 drives, 3 compute
// workers); mid-run the compute worker training trunk level 1 is SIGKILLed and one MinIO drive folder is removed,
// then the drive comes back empty and `clusterUp` restarts the dead worker. The experiment must complete, the
// drive must be healed, and every object in the store must equal, byte for byte, those of the same spec run
// undisturbed on the embedded profile. Not part of `npm test`: it needs `bash infra/provision.sh cluster`.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import type { Client } from '@temporalio/client';

import { startOrAttachLottery } from '../client/runs';
import { trunkLineageId } from '../contract/ids';
import { parseLotterySpec, type LotterySpec } from '../contract/lottery';
import { clusterEndpoints, type ClusterOptions } from '../infra/cluster-options';
import {
  clusterDown,
  clusterSpecs,
  clusterStatus,
  clusterUp,
  driveDir,
  freeClusterOptions,
} from '../infra/cluster-stack';
import { stackDown, stackUp } from '../infra/embedded-stack';
import { freeStackOptions, type StackEndpoints, type StackOptions } from '../infra/endpoints';
import { checkpointPrefix, contentDigests, type ArtifactStore } from '../store';
import { connectClient, openStore } from '../workers/connection';
import { startTestWorkers, type TestWorkers } from './support/workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stderr.write(`[test:cluster] ${line}\n`);
const tag = Date.now().toString(36);
const WORKER_ENV = { LTH_BACKEND: 'wasm', LTH_PROGRESS_INTERVAL_MS: '200' };
const ITERATIONS = 120;
const CHECKPOINT_EVERY = 10;

const spec: LotterySpec = parseLotterySpec({
  experiment: `cluster${tag}`,
  train: {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
    batchSize: 64,
    iterations: ITERATIONS,
    evalEvery: 40,
    seed: 5,
    trainLimit: 640,
    testLimit: 200,
  },
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.2 },
  rewind: { step: 20 },
  branches: [{ kind: 'reinit' }, { kind: 'random-prune' }],
  checkpointEvery: CHECKPOINT_EVERY,
  heartbeatTimeoutSeconds: 5,
});

let tmp: string;
let cluster: ClusterOptions;
let embedded: StackOptions;
let embeddedWorkers: TestWorkers | null = null;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cluster-'));
  // PostgreSQL runs as the postgres user when the test runs as root: it must be able to reach its data folder.
  fs.chmodSync(tmp, 0o755);
  cluster = await freeClusterOptions(path.join(tmp, 'cluster'), { computeWorkers: 3 });
  embedded = await freeStackOptions(path.join(tmp, 'embedded'));
  const t0 = Date.now();
  await clusterUp(cluster, say, { workerEnv: WORKER_ENV });
  say(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)}s (home ${cluster.home})`);
});

after(async () => {
  await embeddedWorkers?.stop();
  await stackDown(embedded, 10_000);
  await clusterDown(cluster, 20_000);
  if (process.env.LTH_KEEP_TEST_HOME !== '1') fs.rmSync(tmp, { recursive: true, force: true });
});

async function checkpointSteps(store: ArtifactStore, runId: string): Promise<number[]> {
  return (await store.list(checkpointPrefix(runId))).map((o) =>
    Number(/(\d+)/.exec(path.basename(o.key))?.[1] ?? -1),
  );
}

/** The compute worker that last ran the trunk's pending activity, from the worker identity (`pid@host`). */
async function workerRunningTrunk(
  client: Client,
  workflowId: string,
): Promise<{ name: string; pid: number }> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  const identities = (desc.raw.pendingActivities ?? []).map((a) => a.lastWorkerIdentity ?? '');
  const pids = identities.map((id) => Number(id.split('@')[0])).filter((p) => Number.isInteger(p) && p > 0);
  for (const w of clusterSpecs(cluster).compute) {
    const file = JSON.parse(fs.readFileSync(w.pidFile, 'utf8')) as { pid: number };
    if (pids.includes(file.pid)) return { name: w.name, pid: file.pid };
  }
  throw new Error(
    `no cluster compute worker among the trunk's pending activity workers ${identities.join(', ')}`,
  );
}

function countObjects(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.name === 'xl.meta') n++;
  return n;
}

test('an IMP experiment survives a killed compute worker and a removed MinIO drive on the cluster profile, and equals the embedded run', async () => {
  const e: StackEndpoints = clusterEndpoints(cluster);
  const client = await connectClient(e);
  const store = await openStore(e);
  const lineage = trunkLineageId(spec);
  const t0 = Date.now();
  try {
    const run = await startOrAttachLottery(client, spec);
    assert.equal(run.started, true);

    // Kill once trunk level 1 has a checkpoint past its first, so the retry must resume mid-level.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const steps = await checkpointSteps(store, `${lineage}-L1`);
      if (Math.max(-1, ...steps) >= 20 + 2 * CHECKPOINT_EVERY) break;
      assert.ok(Date.now() < deadline, 'trunk level 1 reached no second checkpoint within five minutes');
      await sleep(50);
    }
    const victim = await workerRunningTrunk(client, run.workflowId);
    process.kill(victim.pid, 'SIGKILL');
    const drive = driveDir(cluster, 3);
    const bucketDir = path.join(drive, cluster.bucket);
    const before = countObjects(path.join(driveDir(cluster, 1), cluster.bucket));
    fs.rmSync(drive, { recursive: true, force: true });
    say(
      `SIGKILLed ${victim.name} (pid ${victim.pid}) and removed ${drive} (${before} objects on each drive)`,
    );

    // The experiment goes on with a drive missing (4 drives, parity 2); then the drive comes back empty and
    // clusterUp, idempotent, starts the dead worker again and reuses everything else.
    await sleep(5000);
    fs.mkdirSync(drive);
    const restarted: string[] = [];
    await clusterUp(cluster, (l) => (l.includes(': started ') ? restarted.push(l) : undefined), {
      workerEnv: WORKER_ENV,
    });
    assert.deepEqual(
      restarted.map((l) => l.split(':')[0]),
      [victim.name],
      'clusterUp restarts only the killed worker',
    );
    const status = await clusterStatus(cluster);
    assert.ok(
      status.services.every((s) => s.running && s.healthy),
      JSON.stringify(status.services),
    );

    const result = await run.handle.result();
    say(`cluster run done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const l1 = result.levels[1];
    assert.ok(
      l1 && l1.resumedFromStep > l1.startStep,
      `trunk level 1 resumed mid-level (${JSON.stringify(l1)})`,
    );

    // MinIO heals the fresh drive in the background: every object comes back on it.
    const healDeadline = Date.now() + 240_000;
    let healed = 0;
    let total = 0;
    for (;;) {
      total = countObjects(path.join(driveDir(cluster, 1), cluster.bucket));
      healed = countObjects(bucketDir);
      if (healed === total && fs.existsSync(path.join(drive, '.minio.sys', 'format.json'))) break;
      assert.ok(
        Date.now() < healDeadline,
        `drive 3 healed ${healed} of ${total} objects within four minutes`,
      );
      await sleep(2000);
    }
    say(`drive 3 healed: ${healed} of ${total} objects after ${((Date.now() - t0) / 1000).toFixed(1)}s`);

    // The same spec, undisturbed, on the embedded profile.
    const ee = await stackUp(embedded, say);
    embeddedWorkers = await startTestWorkers(ee, WORKER_ENV);
    const reference = await startOrAttachLottery(embeddedWorkers.client, spec);
    await reference.handle.result();
    const [got, want] = await Promise.all([contentDigests(store), contentDigests(await openStore(ee))]);
    assert.ok(want.size > 0);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'the same objects in both stores');
    for (const [key, sha] of want) assert.equal(got.get(key), sha, `${key} differs between the profiles`);
    say(`${want.size} objects identical between the cluster and the embedded profile`);
  } finally {
    await client.connection.close();
  }
});
