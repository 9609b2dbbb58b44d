// With Temporal or the store down (nothing listens at the address) or hung (it accepts and never answers), `lth`
// and the workers say so in one clear error naming the service's address, within seconds: CLI commands fail at
// once; a worker waits for its services with a visible "waiting for ... (attempt n)" line for up to
// LTH_WORKER_CONNECT_WAIT_S, and fails like the CLI with 0. The target is 10 s from start to error; the tests assert
// 15 s so that a loaded machine (each run starts a Node process and tsx) does not fail them: the bound tells
// "fails in seconds" from "hangs".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';

import { REPO_ROOT } from '../infra/paths';
import { lthRunner, type Ran } from './support/cli';
import { testEndpoints } from './support/env';
import { startFlakyProxy, type FlakyProxy } from './support/flaky-proxy-process';
import { freePorts } from './support/ports';

const e = testEndpoints();
const LIMIT_MS = 15_000;
let deadTemporal: string;
let deadS3: string;
let hung: FlakyProxy;
let hungS3: FlakyProxy;

before(async () => {
  // Ports free now, with nothing started on them: a connection there is refused.
  const [a, b] = (await freePorts(2)) as [number, number];
  deadTemporal = `127.0.0.1:${a}`;
  deadS3 = `http://127.0.0.1:${b}`;
  // In front of the real Temporal, silent: it accepts connections and never answers.
  const [host, port] = e.temporal.address.split(':') as [string, string];
  hung = await startFlakyProxy(host, Number(port));
  await hung.set('silent');
  // The same in front of the real MinIO.
  const s3 = new URL(e.s3.endpoint);
  hungS3 = await startFlakyProxy(s3.hostname, Number(s3.port));
  await hungS3.set('silent');
});

after(() => {
  hung.stop();
  hungS3.stop();
});

function env(temporal: string, s3: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: temporal,
    S3_ENDPOINT: s3,
    S3_ACCESS_KEY: e.s3.accessKey,
    S3_SECRET_KEY: e.s3.secretKey,
    S3_BUCKET: e.s3.bucket,
    LTH_BACKEND: 'cpu',
  };
}

async function timed(run: () => Promise<Ran>): Promise<Ran & { ms: number }> {
  const started = Date.now();
  const r = await run();
  return { ...r, ms: Date.now() - started };
}

function failsNaming(r: Ran & { ms: number }, what: RegExp, address: string, t?: TestContext): void {
  t?.diagnostic(`failed after ${r.ms} ms`);
  assert.notEqual(r.code, 0, `expected a failure:\n${r.stdout}\n${r.stderr}`);
  assert.notEqual(r.code, null, `killed after ${r.ms} ms, i.e. it hung:\n${r.stderr}`);
  assert.match(r.stderr, what);
  assert.ok(r.stderr.includes(address), `the error does not name ${address}:\n${r.stderr}`);
  assert.ok(r.ms < LIMIT_MS, `took ${r.ms} ms:\n${r.stderr}`);
}

/** A worker process: its exit code and stderr, or (with `until`) its stderr once a line matches, then stopped. */
function worker(
  role: 'light' | 'compute',
  envv: NodeJS.ProcessEnv,
  until?: RegExp,
): Promise<Ran & { ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'workers', `${role}.ts`)],
      {
        cwd: REPO_ROOT,
        env: envv,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let matched = false;
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (until && !matched && until.test(stderr)) {
        matched = true;
        resolve({ code: 1, stdout: '', stderr, ms: Date.now() - started });
        child.kill('SIGKILL');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!matched) resolve({ code, stdout: '', stderr, ms: Date.now() - started });
    });
  });
}

test('both down: lth names the Temporal address (status, lottery) or the store endpoint (fsck)', async () => {
  const lth = lthRunner(env(deadTemporal, deadS3));
  const cannotReach = /cannot reach Temporal at .*connection refused/;
  failsNaming(await timed(() => lth(['status', 'nosuchexperiment'], 60_000)), cannotReach, deadTemporal);
  failsNaming(
    await timed(() => lth(['lottery', '--config', 'examples/lottery-lenet-mnist.yaml'], 60_000)),
    cannotReach,
    deadTemporal,
  );
  failsNaming(
    await timed(() => lth(['fsck'], 60_000)),
    /S3 store at .* is unavailable: .*ECONNREFUSED/,
    deadS3,
  );
});

test('Temporal up, store down: fsck and a compute worker (no wait) name the store; a waiting worker says so', async () => {
  const lth = lthRunner(env(e.temporal.address, deadS3));
  failsNaming(await timed(() => lth(['fsck'], 60_000)), /S3 store at .* is unavailable/, deadS3);
  failsNaming(
    await worker('compute', { ...env(e.temporal.address, deadS3), LTH_WORKER_CONNECT_WAIT_S: '0' }),
    /compute worker: S3 store at .* is unavailable/,
    deadS3,
  );
  const waiting = await worker(
    'compute',
    env(e.temporal.address, deadS3),
    /waiting for the S3 store at \S+ \(attempt 1 failed/,
  );
  assert.ok(waiting.stderr.includes(`waiting for the S3 store at ${deadS3} (attempt 1`), waiting.stderr);
  assert.ok(waiting.ms < LIMIT_MS, `the first waiting line came after ${waiting.ms} ms`);
});

test('store up, Temporal down: lth and a light worker (no wait) name Temporal; a waiting worker says so', async () => {
  failsNaming(
    await timed(() =>
      lthRunner(env(deadTemporal, e.s3.endpoint))(
        ['lottery', '--config', 'examples/lottery-lenet-mnist.yaml'],
        60_000,
      ),
    ),
    /cannot reach Temporal at /,
    deadTemporal,
  );
  failsNaming(
    await worker('light', { ...env(deadTemporal, e.s3.endpoint), LTH_WORKER_CONNECT_WAIT_S: '0' }),
    /light worker: cannot reach Temporal at /,
    deadTemporal,
  );
  const waiting = await worker(
    'light',
    env(deadTemporal, e.s3.endpoint),
    /waiting for Temporal at \S+ \(attempt 1/,
  );
  assert.ok(waiting.stderr.includes(`waiting for Temporal at ${deadTemporal} (attempt 1`), waiting.stderr);
  assert.ok(waiting.ms < LIMIT_MS, `the first waiting line came after ${waiting.ms} ms`);
});

test('Temporal hung (accepts, never answers): lth and a light worker fail naming it after the connect timeout', async () => {
  const hungEnv = env(hung.address, e.s3.endpoint);
  failsNaming(
    await timed(() => lthRunner(hungEnv)(['status', 'nosuchexperiment'], 60_000)),
    /cannot reach Temporal at .*did not complete a Temporal handshake within 5 s/,
    hung.address,
  );
  failsNaming(
    await worker('light', { ...hungEnv, LTH_WORKER_CONNECT_WAIT_S: '0' }),
    /light worker: cannot reach Temporal at /,
    hung.address,
  );
});

test('store hung (accepts, never answers): fsck and a compute worker (no wait) fail naming it, not after the idle timeout', async (t) => {
  const hungEnv = env(e.temporal.address, `http://${hungS3.address}`);
  // Requests without a large body must be answered within LTH_S3_ANSWER_TIMEOUT_S (3 s), and a silent store is
  // given up on within the retry budget (8 s): not after the 20 s LTH_S3_TIMEOUT_S a large transfer may stay silent.
  const didNotAnswer = /S3 store at .* is unavailable: .*did not answer \w+ within 3000 ms/;
  failsNaming(await timed(() => lthRunner(hungEnv)(['fsck'], 60_000)), didNotAnswer, hungS3.address, t);
  failsNaming(
    await worker('compute', { ...hungEnv, LTH_WORKER_CONNECT_WAIT_S: '0' }),
    /compute worker: S3 store at .* is unavailable: .*did not answer/,
    hungS3.address,
    t,
  );
});
