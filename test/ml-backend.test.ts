import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  backendFromEnv,
  BackendUnavailableError,
  currentBackend,
  resolveBackendRequest,
  selectBackend,
  type BackendInfo,
} from '../ml/backend';

const run = promisify(execFile);
const installed = (pkg: string) => {
  try {
    createRequire(__filename).resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const hasNodeGpu = installed('@tensorflow/tfjs-node-gpu');
const hasNode = installed('@tensorflow/tfjs-node');

test('currentBackend throws before any backend is selected', () => {
  assert.throws(() => currentBackend(), /no backend selected/);
});

test('LTH_BACKEND and LTH_THREADS are validated, with the variable named', () => {
  assert.deepEqual(backendFromEnv({}), {});
  assert.deepEqual(backendFromEnv({ LTH_BACKEND: '', LTH_THREADS: ' ' }), {});
  assert.deepEqual(backendFromEnv({ LTH_BACKEND: 'wasm', LTH_THREADS: '4' }), { prefer: 'wasm', threads: 4 });
  assert.deepEqual(backendFromEnv({ LTH_BACKEND: 'auto' }), { prefer: 'auto' });
  assert.throws(
    () => backendFromEnv({ LTH_BACKEND: 'gpu' }),
    /LTH_BACKEND must be one of auto, tensorflow-gpu, .*got 'gpu'/,
  );
  assert.throws(() => backendFromEnv({ LTH_BACKEND: 'CPU' }), /LTH_BACKEND/);
  for (const bad of ['0', '-1', '1.5', 'two', '2000']) {
    assert.throws(() => backendFromEnv({ LTH_THREADS: bad }), new RegExp(`LTH_THREADS .*got '${bad}'`));
  }
});

test('options win over the environment, the environment over the defaults', () => {
  const env = { LTH_BACKEND: 'wasm', LTH_THREADS: '2' };
  assert.deepEqual(resolveBackendRequest({}, env), { prefer: 'wasm', threads: 2 });
  assert.deepEqual(resolveBackendRequest({ prefer: 'cpu' }, env), { prefer: 'cpu', threads: 2 });
  assert.deepEqual(resolveBackendRequest({ threads: 1 }, env), { prefer: 'wasm', threads: 1 });
  assert.deepEqual(resolveBackendRequest({}, {}), { prefer: 'auto' });
  // An invalid environment is an error even when options decide, so a typo never goes unnoticed.
  assert.throws(() => resolveBackendRequest({ prefer: 'cpu' }, { LTH_BACKEND: 'nope' }), /LTH_BACKEND/);
  assert.throws(() => resolveBackendRequest({ threads: 0 }, {}), /threads must be a positive integer/);
});

test(
  'an explicitly requested backend that is not installed is an error, not a fallback',
  { skip: hasNodeGpu },
  async () => {
    const logs: string[] = [];
    await assert.rejects(
      selectBackend({ prefer: 'tensorflow-gpu', log: (m) => logs.push(m) }),
      (e: Error) =>
        e instanceof BackendUnavailableError &&
        /backend 'tensorflow-gpu' \(@tensorflow\/tfjs-node-gpu\) is not available: package not installed/.test(
          e.message,
        ),
    );
    assert.equal(logs.length, 0, 'nothing else was tried');
    assert.throws(() => currentBackend(), /no backend selected/);
  },
);

test('LTH_BACKEND naming an unavailable backend is an error too', { skip: hasNode }, async () => {
  const saved = process.env.LTH_BACKEND;
  process.env.LTH_BACKEND = 'tensorflow';
  try {
    await assert.rejects(selectBackend({ log: () => {} }), /backend 'tensorflow' \(@tensorflow\/tfjs-node\)/);
  } finally {
    if (saved === undefined) delete process.env.LTH_BACKEND;
    else process.env.LTH_BACKEND = saved;
  }
});

test('auto logs why it skips each backend and settles on the best available', async () => {
  const logs: string[] = [];
  const info = await selectBackend({ prefer: 'auto', log: (m) => logs.push(m) });
  const expected = hasNodeGpu ? 'tensorflow-gpu' : hasNode ? 'tensorflow' : 'wasm';
  assert.equal(info.name, expected);
  if (!hasNodeGpu)
    assert.ok(
      logs.some((l) => /skipping tensorflow-gpu: .*tfjs-node-gpu.*not installed/.test(l)),
      logs.join('\n'),
    );
  if (!hasNodeGpu && !hasNode) assert.ok(logs.some((l) => /skipping tensorflow: /.test(l)));
  assert.match(logs.at(-1) ?? '', new RegExp(`using ${expected} \\(@tensorflow/`));
  assert.deepEqual(currentBackend(), info);
  assert.match(info.version, /^\d+\.\d+\.\d+/);
});

test('switching to cpu works and is reported; wasm threads cannot change within a process', async () => {
  const cpu = await selectBackend({ prefer: 'cpu', log: () => {} });
  assert.deepEqual(cpu, {
    name: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    version: '4.22.0',
    threads: 1,
  });
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(currentBackend().name, 'cpu');
  if (hasNodeGpu || hasNode) return;
  // wasm was initialised by the auto test above with the default thread count.
  await assert.rejects(
    selectBackend({ prefer: 'wasm', threads: 3, log: () => {} }),
    /thread count cannot change/,
  );
  const wasm = await selectBackend({ prefer: 'wasm', log: () => {} });
  assert.equal(wasm.name, 'wasm');
});

async function child(
  backend: string,
  threads: string,
): Promise<{ info: BackendInfo; logs: string[]; weightsSha256: string }> {
  const script = path.join(__dirname, 'fixtures-ml', 'train-child.ts');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, backend, threads], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, LTH_BACKEND: '', LTH_THREADS: '' },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    info: BackendInfo;
    logs: string[];
    weightsSha256: string;
  };
}

test('wasm asked for 2 threads runs single-threaded under Node and is deterministic run to run', async () => {
  const [a, b, one] = await Promise.all([child('wasm', '2'), child('wasm', '2'), child('wasm', '1')]);
  // tfjs-backend-wasm 4.22 hard-codes WASM_HAS_MULTITHREAD_SUPPORT=false under Node (tfjs issue #3830).
  assert.equal(a.info.threads, 1);
  assert.ok(
    a.logs.some((l) => /asked for 2 threads but wasm uses 1/.test(l)),
    a.logs.join('\n'),
  );
  assert.equal(a.weightsSha256, b.weightsSha256, 'two runs give the same bits');
  assert.equal(a.weightsSha256, one.weightsSha256, 'and the same bits as threads=1');
});
