// `npm test`: runs the suite against real services. Unless TEMPORAL_ADDRESS and S3_ENDPOINT
// already name some, it starts a private embedded stack (temporary home, ports picked now, so
// it never meets a developer's `lth up`), hands its endpoints to the tests through the
// environment, and always takes it down again, also on Ctrl-C, SIGTERM or a crash.
//
//   npm test                                   # every test/**/*.test.ts
//   npm test -- test/stack-*.test.ts           # files or glob patterns
//   npm test -- --test-name-pattern=reuse x.ts # --flags go to node's test runner
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { stackDown, stackUp } from '../infra/embedded-stack';
import {
  endpointsToEnv,
  resolveEndpoints,
  freeStackOptions,
  type StackEndpoints,
  type StackOptions,
} from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (line: string) => process.stderr.write(`[test/run] ${line}\n`);

const SKIP_DIRS = new Set(['node_modules', '.git', '.tools', '.data']);

function walk(dir: string, out: string[] = []): string[] {
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(ent.name)) continue;
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) walk(p, out);
    else if (ent.isFile()) out.push(p);
  }
  return out;
}

/** A shell-style glob (`*`, `**`, `?`) as a regex over repo-relative paths. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches zero or more folders.
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Node 20's --test takes no globs, so patterns are expanded here. */
function testFiles(patterns: string[]): string[] {
  if (patterns.length === 0) patterns = ['test/**/*.test.ts'];
  const all = walk(REPO_ROOT).map((p) => path.relative(REPO_ROOT, p).split(path.sep).join('/'));
  const files = new Set<string>();
  for (const pat of patterns) {
    const abs = path.resolve(pat);
    if (fs.existsSync(abs) && fs.statSync(abs).isFile()) {
      files.add(abs);
      continue;
    }
    const rel = path.relative(REPO_ROOT, abs).split(path.sep).join('/');
    const re = globToRegExp(rel);
    const hits = all.filter((f) => re.test(f));
    if (hits.length === 0) throw new Error(`no test file matches ${pat}`);
    for (const h of hits) files.add(path.join(REPO_ROOT, h));
  }
  return [...files].sort();
}

interface Stack {
  endpoints: StackEndpoints;
  /** Set when we started it, and so must stop it. */
  own: { opts: StackOptions; tmp: string } | null;
}

async function startStack(): Promise<Stack> {
  if (process.env.TEMPORAL_ADDRESS && process.env.S3_ENDPOINT) {
    const endpoints = resolveEndpoints(process.env);
    say(
      `using the services named by the environment: ${endpoints.temporal.address}, ${endpoints.s3.endpoint}`,
    );
    return { endpoints, own: null };
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-test-'));
  const opts = await freeStackOptions(
    path.join(tmp, 'stack'),
    {
      // The tests get the workers' least-privilege user (infra/endpoints.ts), which may use only the stack's bucket;
      // the store tests' throw-away buckets (test/support/s3.ts, uniqueBucket) are added to its policy here.
      s3WorkerExtraBuckets: ['lth-test-*'],
    },
    process.env,
  );
  own = { opts, tmp };
  say(`starting a private stack in ${opts.home}`);
  const endpoints = await stackUp(opts, (l) => say(l));
  say(`Temporal ${endpoints.temporal.address} (UI ${endpoints.temporal.uiUrl}), S3 ${endpoints.s3.endpoint}`);
  return { endpoints, own };
}

let own: Stack['own'] = null;
let child: ChildProcess | null = null;
let cleaning: Promise<void> | null = null;

/** Stops leftovers of the test run, then our stack; safe to call more than once. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const pgid = child?.pid;
    // The runner is its own process group: whatever a test spawned and forgot ends here too.
    // Helpers such as tsx's esbuild service exit on their own a moment after the runner.
    for (let i = 0; pgid !== undefined && i < 30 && groupAlive(pgid); i++) await sleep(100);
    if (pgid !== undefined && groupAlive(pgid)) {
      say('processes started by the tests are still running; stopping them');
      killGroup(pgid, 'SIGTERM');
      for (let i = 0; i < 50 && groupAlive(pgid); i++) await sleep(100);
      if (groupAlive(pgid)) killGroup(pgid, 'SIGKILL');
    }
    if (own) {
      say('stopping the private stack');
      try {
        await stackDown(own.opts, 10_000);
      } catch (err) {
        say(`could not stop the stack: ${err instanceof Error ? err.message : String(err)}`);
      }
      fs.rmSync(own.tmp, { recursive: true, force: true });
    }
  })();
  return cleaning;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* gone */
  }
}

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const nodeFlags = argv.filter((a) => a.startsWith('--'));
  const files = testFiles(argv.filter((a) => !a.startsWith('--')));

  let interrupted: NodeJS.Signals | null = null;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = sig;
      say(`${sig}: stopping the tests and the stack`);
      if (child?.pid !== undefined) killGroup(child.pid, 'SIGTERM');
      // Without a runner (still starting the stack) nothing else will end the process.
      if (!child) void cleanup().then(() => process.exit(SIGNAL_EXIT[sig] ?? 1));
    });
  }

  const stack = await startStack();
  if (interrupted) return SIGNAL_EXIT[interrupted as NodeJS.Signals] ?? 1;
  const env: NodeJS.ProcessEnv = { ...process.env, ...endpointsToEnv(stack.endpoints) };
  if (stack.own) {
    // Tests that read stackOptionsFromEnv() (or spawn `lth`) see this stack, not the developer's.
    const o = stack.own.opts;
    Object.assign(env, {
      LTH_HOME: o.home,
      LTH_TEMPORAL_PORT: String(o.temporalPort),
      LTH_UI_PORT: String(o.uiPort),
      LTH_MINIO_PORT: String(o.minioPort),
      LTH_CONSOLE_PORT: String(o.consolePort),
    });
  }
  const args = [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    ...nodeFlags,
    ...files,
  ];
  say(`node ${args.join(' ')}`);
  const runner = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: 'inherit', detached: true });
  child = runner;
  const code = await new Promise<number>((resolve) => {
    runner.once('error', (err) => {
      say(`could not start the test runner: ${err.message}`);
      resolve(1);
    });
    runner.once('exit', (c, sig) => resolve(c ?? 128 + (sig ? (os.constants.signals[sig] ?? 0) : 0)));
  });
  return interrupted ? (SIGNAL_EXIT[interrupted as NodeJS.Signals] ?? code) : code;
}

main()
  .catch((err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    return 1;
  })
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  });
