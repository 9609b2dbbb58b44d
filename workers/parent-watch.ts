// A worker started as someone's child (workers/spawn.ts: `lth worker`, the demo, tests and benchmarks) stops when
// that parent dies, even by SIGKILL, which leaves no chance to stop it: otherwise it would live on, adopted by
// init, polling queues and holding a backend's threads. Workers started on their own (`lth worker compute` by a
// user, the cluster profile's detached workers) carry no LTH_EXIT_WITH_PARENT and are not watched.
import { z } from 'zod';

import { optionalEnv, parseEnv } from '../infra/env-schema';

const envSchema = z.object({ LTH_EXIT_WITH_PARENT: optionalEnv(z.coerce.number().int().positive()) });

/** The variable spawnWorker sets to its own pid. */
export const EXIT_WITH_PARENT_VAR = 'LTH_EXIT_WITH_PARENT';

/**
 * Calls `stop` (the worker's graceful shutdown: in-flight activities drain and checkpoint) once the process whose
 * pid LTH_EXIT_WITH_PARENT names is no longer this process's parent. Checks every `everyMs`; never keeps the
 * process alive by itself. Returns a function that stops watching.
 */
export function stopWithParent(
  stop: () => void,
  log: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  everyMs = 1000,
): () => void {
  const parent = parseEnv(envSchema, env).LTH_EXIT_WITH_PARENT;
  if (parent === undefined) return () => {};
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log(`parent process ${parent} is gone (now ${process.ppid}): stopping`);
    stop();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
