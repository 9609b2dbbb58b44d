// Reading LTH_* / TEMPORAL_* / S3_* variables through zod: the pieces infra/endpoints.ts and
// infra/cluster-options.ts share, so every invalid variable is reported the same way, by name.
import { z } from 'zod';

/** An environment, e.g. process.env; an unset variable and an empty one are the same. */
export type Env = Record<string, string | undefined>;

export const portSchema = z.coerce.number().int().min(1).max(65535);

// An empty variable counts as unset, as shells make it easy to export one by accident.
const unsetIfEmpty = (v: unknown): unknown => (v === '' ? undefined : v);

/** An optional variable: unset or empty gives undefined. */
export const optionalEnv = <T extends z.ZodType>(s: T) => z.preprocess(unsetIfEmpty, s.optional());

/** Parses env with schema; every problem names its variable and value. */
export function parseEnv<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const name = String(i.path[0] ?? '?');
    return `  ${name}=${JSON.stringify(env[name] ?? '')}: ${i.message}`;
  });
  throw new Error(`invalid environment:\n${lines.join('\n')}`);
}
