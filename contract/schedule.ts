// Scheduled runs: a spec (of any kind, or a sweep) started by a Temporal Schedule, each run labelled with the
// time it was scheduled for. The options a person gives `lth schedule create`, checked before the schedule exists;
// the stamp a scheduled run adds to its labels; what the scheduled workflow and its planning activity exchange.
import { z } from 'zod';

import { nameSchema } from './spec';

export const OVERLAP_POLICIES = [
  'skip',
  'buffer-one',
  'buffer-all',
  'cancel-other',
  'terminate-other',
  'allow-all',
] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** The SDK's spelling of an overlap policy. */
export function sdkOverlap(p: OverlapPolicy) {
  return p.toUpperCase().replace(/-/g, '_') as
    'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'TERMINATE_OTHER' | 'ALLOW_ALL';
}

const DURATION_RE = /^\d+(\.\d+)?(ms|s|m|h|d)$/;
const durationSchema = z
  .string()
  .regex(DURATION_RE, 'a duration such as 90s, 30m, 6h or 1d')
  .refine((d) => !DURATION_RE.test(d) || durationMs(d) > 0, 'must be longer than 0');

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function durationMs(d: string): number {
  const m = DURATION_RE.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(d.slice(0, d.length - (m[2] as string).length)) * (UNIT_MS[m[2] as string] as number);
}

/** `YYYYMMDDTHHMMSSZ`: 16 characters appended to an experiment or sweep name (names are at most 64). */
export const STAMP_LENGTH = 16;

export function scheduleStamp(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
}

/** A label with its run's stamp, `<label>-<stamp>`. */
export function stampedName(label: string, at: Date): string {
  return `${label}-${scheduleStamp(at)}`;
}

/** The longest label a scheduled spec may carry, so that the stamped one is still a valid name. */
export const MAX_STAMPED_LABEL = 64 - 1 - STAMP_LENGTH;

export const scheduleOptionsSchema = z
  .object({
    /** The schedule's id: `lth schedule describe <id>`. */
    id: nameSchema,
    /** Cron expressions (5 fields, or @daily and the like), in UTC. */
    cron: z.array(z.string()).default([]),
    /** Or: one run every this long. */
    every: durationSchema.optional(),
    overlap: z.enum(OVERLAP_POLICIES).default('skip'),
    /** Runs missed while the server was down are still started if they are at most this late. */
    catchupWindow: durationSchema.default('1d'),
    /** Each run starts up to this much later than its time, at random. */
    jitter: durationSchema.optional(),
    note: z.string().max(500).optional(),
    paused: z.boolean().default(false),
  })
  .strict()
  .refine((o) => o.cron.length > 0 || o.every !== undefined, {
    message: 'give --cron or --every',
    path: ['cron'],
  });

export type ScheduleOptions = z.infer<typeof scheduleOptionsSchema>;
export type ScheduleOptionsInput = z.input<typeof scheduleOptionsSchema>;

/** The scheduled workflow's input: the spec as written (its labels get the run's stamp). */
export interface ScheduledRunInput {
  spec: Record<string, unknown>;
}

/** The run a scheduled workflow starts as its child, planned by a light activity (it hashes). */
export interface PlannedRun {
  kind: string;
  /** The run's workflow summary in the UI. */
  summary: string;
  workflowType: string;
  workflowId: string;
  workflowArgs: unknown[];
  experiment: string;
  runKind: string;
  /** Set when the run is a sweep. */
  sweep?: string;
}

export interface ScheduledRunResult {
  scheduledFor: string;
  workflowId: string;
  kind: string;
  experiment: string;
}
