// The chaos run, one seed, in the suite (`npm run chaos` runs five, with longer outages): the whole pipeline, an
// IMP experiment with a rewind point, two branches and the geometry of every level, and a distillation whose two
// teachers are trained and their logits precomputed, survives five SIGKILLed compute workers (one in the middle of
// an upload), a SIGKILLed and restarted Temporal server and a stopped MinIO, and every stored object equals, byte
// for byte, those of an undisturbed run of the same specs. Runs on stacks of its own (bench/chaos-run.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { runChaos, runUndisturbed } from '../bench/chaos-run';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-chaos-'));
const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);
after(() => fs.rmSync(home, { recursive: true, force: true }));

test('the pipeline completes through kills, a server restart and a store outage, identical to an undisturbed run', async () => {
  const reference = await runUndisturbed(path.join(home, 'reference'), log);
  assert.ok(reference.digests.size > 50, `the undisturbed run stored ${reference.digests.size} objects`);
  const row = await runChaos(
    { seed: 7, kills: 5, storeOutageSeconds: 10, home: path.join(home, 'seed-7'), log },
    reference,
  );
  assert.equal(row.kills, 5);
  assert.ok(row.killsDuringUpload >= 1, 'one kill landed during an upload');
  assert.equal(row.serverRestarts, 1);
  assert.equal(row.storeOutages, 1);
  assert.equal(row.completed, true);
  assert.deepEqual(row.differing, [], 'objects that differ from the undisturbed run');
  assert.equal(row.identical, true);
  // Security: the store's keys appear in no workflow history and no worker log.
  assert.ok(
    row.credentialScan.histories >= 10 && row.credentialScan.logs >= 5,
    JSON.stringify(row.credentialScan),
  );
  assert.deepEqual(row.credentialScan.leaks, []);
});
