// `lth` as a user runs it: a child process of cli/main.ts, its exit code and both output streams.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

import { REPO_ROOT } from '../../infra/paths';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A runner of `lth ...args` with this environment; a run over `timeoutMs` is killed (code null). */
export function lthRunner(env: NodeJS.ProcessEnv): (args: string[], timeoutMs?: number) => Promise<Ran> {
  return (args, timeoutMs = 90_000) =>
    new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts'), ...args],
        {
          cwd: REPO_ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
}

/** The run, asserted to have exited 0; its output is in the failure message otherwise. */
export function ok(r: Ran, what: string): Ran {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r;
}
