// The layering of ARCHITECTURE.md holds for the tree, and its check (infra/layers.ts, run by `npm run lint`)
// catches each kind of violation in a generated tree.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { checkLayers, checkSandbox } from '../infra/layers';
import { REPO_ROOT } from '../infra/paths';

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-layers-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

test('every import in the repository follows the layering', () => {
  assert.deepEqual(checkLayers(REPO_ROOT), []);
  assert.deepEqual(checkSandbox(REPO_ROOT), []);
});

test('an import against the direction is reported with the file, line and rule', () => {
  const root = tree({
    'ml/a.ts': "import { x } from '../store/b';\n",
    'store/b.ts':
      "import { sizeOf } from '../ml/host-tensor';\nimport type { HostTensor } from '../ml/host-tensor';\n",
    'contract/c.ts': "import { Client } from '@temporalio/client';\n",
    'workflows/w.ts': "import type { A } from '../activities/a';\nimport { y } from '../contract/c';\n",
    'activities/a.ts': "import { z } from '../contract/c';\n",
  });
  const found = checkLayers(root).map((v) => `${v.file}:${v.line} ${v.spec}`);
  assert.deepEqual(found.sort(), [
    'contract/c.ts:1 @temporalio/client',
    'ml/a.ts:1 ../store/b',
    'store/b.ts:1 ../ml/host-tensor',
    'workflows/w.ts:1 ../activities/a',
  ]);
});

test('a Node built-in reached from a workflow is reported with the chain that reaches it', () => {
  const root = tree({
    'workflows/w.ts': "import { y } from '../contract/c';\nimport type { T } from '../contract/typed';\n",
    'contract/c.ts': "import { z } from 'zod';\nimport { n } from '../ml/names';\n",
    'ml/names.ts': "import { readFileSync } from 'node:fs';\n",
    'contract/typed.ts': "import crypto from 'node:crypto';\n",
  });
  const found = checkSandbox(root);
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.equal(found[0]?.file, 'ml/names.ts');
  assert.match(found[0]?.reason ?? '', /contract\/c\.ts <- workflows\/w\.ts/);
});
