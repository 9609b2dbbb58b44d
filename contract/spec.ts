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

/** Parses a spec, turning every problem into a line naming the offending field. */
export function parseSpec<S extends z.ZodType>(schema: S, input: unknown, what = 'spec'): z.infer<S> {
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
