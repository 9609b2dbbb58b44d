// Ids and keys derived from specs are the addresses of stored artifacts and running workflows: a refactor that
// changes one orphans what users have. The recorded values (test/fixtures/identities.json) were computed before
// the contract/registry refactor; regenerate them only for a change that means to move artifacts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { computeIdentities, REPO } from './support/identities';

const recorded = JSON.parse(
  fs.readFileSync(path.join(REPO, 'test/fixtures/identities.json'), 'utf8'),
) as Record<string, unknown>;

test('parsed specs, workflow ids, lineage ids and store keys of the example specs are unchanged', () => {
  const now = computeIdentities();
  assert.deepEqual(Object.keys(now).sort(), Object.keys(recorded).sort());
  for (const [name, value] of Object.entries(now)) {
    assert.deepEqual(JSON.parse(JSON.stringify(value)), recorded[name], name);
  }
});
