// The services a test talks to: the ones test/run.ts started (or was given) and exported.
import { resolveEndpoints, type StackEndpoints } from '../../infra/endpoints';

export function testEndpoints(): StackEndpoints {
  if (!process.env.TEMPORAL_ADDRESS || !process.env.S3_ENDPOINT) {
    throw new Error(
      'TEMPORAL_ADDRESS / S3_ENDPOINT are not set: run the tests with `npm test` ' +
        '(test/run.ts starts an isolated Temporal + MinIO for the run), or set them to existing services',
    );
  }
  return resolveEndpoints(process.env);
}

/** Runs `fn` with these environment variables set (undefined: unset), then puts back what was there. */
export function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const put = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  put(vars);
  try {
    return fn();
  } finally {
    put(before);
  }
}
