// Every bench's command line, without running a bench: `--help` prints its usage and exits 0, an unknown option or a
// stray argument exits non-zero with a line naming it, and none of them touches bench/results. Then writeResult
// (bench/support.ts), through which every bench writes its results: a run that measured nothing replaces nothing.
// No services needed; the spawns run side by side and take a couple of seconds each (loading the bench's modules).
//   node --import tsx --test test/bench-cli.test.ts
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { writeFileAtomic, writeResult } from '../bench/support';
import { REPO_ROOT } from '../infra/paths';

/** Every bench entry point (bench/<name>.ts), internal ones included: bench/chaos-proxy.ts is started by chaos-run. */
const BENCHES = [
  'backends',
  'chaos',
  'chaos-proxy',
  'distill',
  'geometry',
  'imp',
  'logits',
  'peer',
  'profile',
  'scaleout',
];
/** Bench scripts that are not spawned here (none: `--help` and a refused option start no work). */
const NOT_SPAWNED: string[] = [];
/**
 * A stray argument is refused by benchCommand (bench/support.ts), which every bench builds its command line with
 * (checked below); spawned for one bench of each shape: options only, a variadic filter list, declared arguments.
 */
const STRAY: Record<string, string[]> = {
  imp: ['stray-argument'],
  backends: ['stray-argument'],
  'chaos-proxy': ['9000', '2000000', 'stray-argument'],
};

const RESULTS = path.join(REPO_ROOT, 'bench', 'results');

/**
 * Every file under bench/results, by content and mtime, but the geometry bench's: it may be running beside this test
 * (a campaign runs a seed at a time, for hours), and no bench spawned here writes them.
 */
function snapshot(dir = RESULTS, out = new Map<string, string>()): Map<string, string> {
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (dir === RESULTS && ent.name.startsWith('geometry')) continue;
    if (ent.isDirectory()) snapshot(p, out);
    else {
      const hash = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
      out.set(path.relative(RESULTS, p), `${hash} ${fs.statSync(p).mtimeMs}`);
    }
  }
  return out;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

// At most this many benches load at once, so that a small machine is not swamped.
let slots = Math.max(2, os.availableParallelism());
const waiting: (() => void)[] = [];

async function bench(name: string, args: string[]): Promise<Ran> {
  while (slots === 0) await new Promise<void>((resolve) => waiting.push(resolve));
  slots--;
  try {
    return await new Promise<Ran>((resolve, reject) => {
      const t0 = performance.now();
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'bench', `${name}.ts`), ...args],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
          // A bench that started working after all would not stop on its own.
          timeout: 60_000,
          killSignal: 'SIGKILL',
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.once('error', reject);
      child.once('close', (code) =>
        resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }),
      );
    });
  } finally {
    slots++;
    waiting.shift()?.();
  }
}

const before = snapshot();
// Started together, awaited one test at a time.
const runs = new Map(
  BENCHES.map((name) => [
    name,
    {
      help: bench(name, ['--help']),
      unknown: bench(name, ['--no-such-option']),
      ...(STRAY[name] ? { stray: bench(name, STRAY[name]) } : {}),
    },
  ]),
);

function unchangedResults(what: string): void {
  assert.deepEqual(snapshot(), before, `${what}: a file under bench/results changed`);
}

function show(r: Ran): string {
  return `exit ${r.code} after ${r.seconds.toFixed(1)} s\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

test('the list covers every bench script in package.json', () => {
  const scripts = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  const named = Object.values(scripts)
    .map((s) => /\bbench\/([\w-]+)\.ts\b/.exec(s)?.[1])
    .filter((n): n is string => n !== undefined);
  assert.ok(named.length >= 8, `too few bench scripts found: ${named.join(', ')}`);
  for (const n of named)
    assert.ok([...BENCHES, ...NOT_SPAWNED].includes(n), `bench/${n}.ts is not tested here`);
});

test('every bench builds its command line with benchCommand and writes bench/results through writeResult', () => {
  for (const name of BENCHES) {
    const source = fs.readFileSync(path.join(REPO_ROOT, 'bench', `${name}.ts`), 'utf8');
    assert.match(source, /\bbenchCommand\(/, `bench/${name}.ts`);
    assert.doesNotMatch(source, /new Command\(/, `bench/${name}.ts`);
    if (name !== 'chaos-proxy') assert.match(source, /\bwriteResult\(/, `bench/${name}.ts`);
  }
});

for (const name of BENCHES) {
  test(`bench/${name}.ts: --help prints its usage, exits 0 and writes nothing`, async () => {
    const r = await (runs.get(name) as { help: Promise<Ran> }).help;
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, new RegExp(`^Usage: \\S*${name} \\[options\\]`), show(r));
    assert.match(r.stdout, /-h, --help/, show(r));
    assert.equal(r.stderr, '', show(r));
    unchangedResults(`${name} --help`);
  });

  test(`bench/${name}.ts: an unknown option exits non-zero naming it and writes nothing`, async () => {
    const r = await (runs.get(name) as { unknown: Promise<Ran> }).unknown;
    assert.notEqual(r.code, 0, show(r));
    assert.notEqual(r.code, null, `killed: it did not stop at its arguments\n${show(r)}`);
    assert.equal(r.stderr.trim(), "error: unknown option '--no-such-option'", show(r));
    assert.equal(r.stdout, '', show(r));
    unchangedResults(`${name} --no-such-option`);
  });

  if (!STRAY[name]) continue;
  test(`bench/${name}.ts: a stray argument exits non-zero naming it and writes nothing`, async () => {
    const r = await (runs.get(name) as { stray: Promise<Ran> }).stray;
    assert.notEqual(r.code, 0, show(r));
    assert.notEqual(r.code, null, `killed: it did not stop at its arguments\n${show(r)}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, show(r));
    assert.match(lines[0] as string, /^error: .*'stray-argument'/, show(r));
    unchangedResults(`${name} stray-argument`);
  });
}

test("bench/backends.ts keeps its --child mode (bench:backends' and bench:peer's one configuration)", async () => {
  // Not a spec: the child mode takes it and fails parsing it, before any training.
  const r = await bench('backends', ['--child', 'not-a-spec']);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /SyntaxError: .*JSON/, show(r));
  assert.doesNotMatch(r.stderr, /unknown option/, show(r));
  unchangedResults('backends --child');
});

test('writeResult: a result that measured nothing is refused, naming the file, and the stored one stays', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-bench-write-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'results.json');
  const isEmpty = (r: { rows: number[] }) => r.rows.length === 0;

  assert.throws(
    () => writeResult(file, { rows: [] }, { isEmpty }),
    (e: Error) => e.message.includes(file),
  );
  assert.deepEqual(fs.readdirSync(dir), [], 'a refused result created a file');

  writeResult(file, { rows: [1, 2] }, { isEmpty });
  assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify({ rows: [1, 2] }, null, 2) + '\n');
  const stored = fs.statSync(file).mtimeMs;
  assert.throws(
    () => writeResult(file, { rows: [] }, { isEmpty }),
    /refusing to write .*results\.json: this run measured nothing/,
  );
  assert.equal(fs.readFileSync(file, 'utf8'), JSON.stringify({ rows: [1, 2] }, null, 2) + '\n');
  assert.equal(fs.statSync(file).mtimeMs, stored);

  writeResult(file, { rows: [3] }, { isEmpty });
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { rows: [3] });
  assert.deepEqual(fs.readdirSync(dir), ['results.json'], 'a temporary file was left behind');
});

test('writeFileAtomic: a write that fails leaves no temporary file behind', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-bench-write-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The rename fails: a non-empty directory holds the name.
  const file = path.join(dir, 'taken');
  fs.mkdirSync(file);
  fs.writeFileSync(path.join(file, 'inside'), 'x');
  assert.throws(() => writeFileAtomic(file, 'data'));
  assert.deepEqual(fs.readdirSync(dir), ['taken']);
  assert.deepEqual(fs.readdirSync(file), ['inside']);
});

test('how long the spawns took', async (t) => {
  const all = (await Promise.all([...runs.values()].flatMap((r) => Object.values(r)))).map((r) => r.seconds);
  t.diagnostic(
    `${all.length} spawns, ${Math.max(2, os.availableParallelism())} at a time: slowest ${Math.max(...all).toFixed(1)} s, ` +
      `median ${[...all].sort((a, b) => a - b)[Math.floor(all.length / 2)]?.toFixed(1)} s`,
  );
});
