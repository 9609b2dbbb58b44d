// A worker started through spawnWorker stops when the process that started it dies, even by SIGKILL (no cleanup
// runs then): it must not live on adopted by init, polling the queues. A worker started on its own is not watched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

import { stopWithParent } from '../workers/parent-watch';
import { testEndpoints } from './support/env';

testEndpoints(); // the worker needs the test stack

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a light worker spawned by a process that is SIGKILLed stops by itself', async () => {
  // The parent: a node process that spawns a worker as lth's commands do, says the worker's pid, then waits.
  const parentScript = `
    const { spawnWorker } = require('./workers/spawn.ts');
    const w = spawnWorker('light', { env: { LTH_BACKEND: 'wasm' } });
    w.ready.then(() => process.stdout.write('worker ' + w.child.pid + '\\n'));
    setInterval(() => {}, 1000);
  `;
  const parent = spawn(process.execPath, ['--import', 'tsx', '-e', parentScript], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const workerPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /worker (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    parent.once('exit', (code) =>
      reject(new Error(`the parent exited (${String(code)}) before its worker was ready`)),
    );
  });
  assert.ok(alive(workerPid));
  parent.kill('SIGKILL');
  const deadline = Date.now() + 30_000;
  while (alive(workerPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const stillAlive = alive(workerPid);
  if (stillAlive) process.kill(workerPid, 'SIGKILL');
  assert.equal(stillAlive, false, 'the orphaned worker was still running 30 s after its parent died');
});

test('a process without LTH_EXIT_WITH_PARENT is not watched; a wrong value is refused naming the variable', () => {
  let stopped = false;
  const unwatch = stopWithParent(
    () => (stopped = true),
    () => {},
    {},
  );
  unwatch();
  assert.equal(stopped, false);
  assert.throws(
    () =>
      stopWithParent(
        () => {},
        () => {},
        { LTH_EXIT_WITH_PARENT: 'me' },
      ),
    /LTH_EXIT_WITH_PARENT="me"/,
  );
});

test('the watch calls stop once its parent is no longer the parent', async () => {
  const lines: string[] = [];
  // The watch's timer does not hold the event loop open (by design); this one does, and fails the test if stop never comes.
  let guard: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    guard = setTimeout(() => reject(new Error('stop was not called')), 5000);
    // A pid that is not this process's parent stands for a parent that died and left us to init.
    stopWithParent(resolve, (l) => lines.push(l), { LTH_EXIT_WITH_PARENT: String(process.ppid + 1) }, 20);
  });
  clearTimeout(guard);
  assert.match(lines.join('\n'), /parent process \d+ is gone/);
});
