// What every spec shares: parsing that names each offending field, the SpecError that carries those lines,
// the name rule for experiments and teachers, and refs to stored objects. Pure zod: the workflow sandbox imports
// it, and the CLI, workflows and activities all check a spec with the same code.
import { z } from 'zod';

import { issueLines } from '../store/errors';

export { objectRefSchema, type ObjectRef } from '../store/refs';

/** A spec that cannot run as written; `issues` holds one `field: problem` line each. No retry fixes it. */
export class SpecError extends Error {
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

/** A SpecError about one field, for checks that need more than the schema (e.g. the model's layer names). */
export function specError(what: string, field: string, problem: string): SpecError {
  const line = `${field}: ${problem}`;
  return new SpecError(`invalid ${what}:\n  ${line}`, [line]);
}

/** Deeper than any spec is written: a value nested further is refused before the schema recurses into it. */
export const MAX_SPEC_DEPTH = 64;

/** The path of the first value nested deeper than `max` arrays and objects, or null (iterative: no recursion). */
export function tooDeep(input: unknown, max = MAX_SPEC_DEPTH): (string | number)[] | null {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: input, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop() as { v: unknown; path: (string | number)[] };
    if (v === null || typeof v !== 'object') continue;
    if (path.length >= max) return path;
    for (const [k, x] of Object.entries(v))
      stack.push({ v: x, path: [...path, Array.isArray(v) ? Number(k) : k] });
  }
  return null;
}

/** Parses a spec, turning every problem into a line naming the offending field. */
export function parseSpec<S extends z.ZodType>(schema: S, input: unknown, what = 'spec'): z.infer<S> {
  const deep = tooDeep(input);
  if (deep) {
    const at = deep.slice(0, 3).map(String).join('.');
    throw specError(
      what,
      at,
      `nests deeper than ${MAX_SPEC_DEPTH} levels (at ${deep.slice(0, 8).join('.')}...)`,
    );
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.infer<S>;
  const issues = issueLines(result.error);
  throw new SpecError(`invalid ${what}:\n  ${issues.join('\n  ')}`, issues);
}

/** Experiment labels and teacher names: they appear in workflow ids, search attributes and file names. */
export const nameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash, underscore; at most 64');

export const experimentSchema = nameSchema.default('default');

/** Seconds without a heartbeat after which Temporal declares the compute worker lost. */
export const heartbeatTimeoutSchema = z.number().int().positive().default(60);
