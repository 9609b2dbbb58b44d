// A sweep: one spec of any kind (the base) and axes over its fields, as a grid or as seeded random draws; each
// trial is the base with one value per axis, run as its kind's workflow. This file is the schema and the
// arithmetic of trials (which values trial i has): pure zod and numbers (random draws use ml/rng.ts's mulberry32,
// as sandbox-safe), so the sweep workflow imports it. Turning a trial into a parsed spec and a workflow id (the
// kind registry, content hashes) is contract/sweep-trials.ts.
import { z } from 'zod';

import { mulberry32 } from '../ml/rng';
import { nameSchema, parseSpec } from './spec';

/** A JSON value an axis may set: numbers, strings, booleans, and objects or arrays (e.g. `rewind: {step: 100}`). */
const jsonValueSchema: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.number(),
    z.string(),
    z.boolean(),
    z.null(),
    z.array(jsonValueSchema),
    z.record(z.string(), jsonValueSchema),
  ]),
);

const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const rangeSchema = z
  .tuple([z.number(), z.number()])
  .refine(([lo, hi]) => lo <= hi, 'the low end must not exceed the high end');

export const axisSchema = z
  .object({
    /** A dotted path into the base spec, e.g. `pruning.fraction`, `train.optimizer.lr`, `rewind`. */
    field: z.string().regex(FIELD_RE, 'a dotted field path such as pruning.fraction'),
    /** The values the grid takes (or random draws choose from). */
    values: z.array(jsonValueSchema).min(1, 'an axis needs at least one value').optional(),
    /** Random draws only: uniform in [low, high]. */
    uniform: rangeSchema.optional(),
    /** Random draws only: log-uniform in [low, high], both positive. */
    logUniform: rangeSchema.refine(([lo]) => lo > 0, 'log-uniform bounds must be positive').optional(),
    /** Random draws only: an integer uniform in [low, high], both ends included. */
    int: rangeSchema
      .refine(([lo, hi]) => Number.isInteger(lo) && Number.isInteger(hi), 'integer bounds')
      .optional(),
  })
  .strict()
  .refine((a) => [a.values, a.uniform, a.logUniform, a.int].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of values, uniform, logUniform, int',
    path: ['values'],
  });

export type Axis = z.infer<typeof axisSchema>;

/** At most this many trials in one sweep (a grid's product or the random trial count). */
export const MAX_TRIALS = 100_000;

export const sweepSpecSchema = z
  .object({
    /** The sweep's name: the `Sweep` search attribute of the sweep and its trials, and its id's prefix. */
    sweep: nameSchema,
    /** The spec every trial starts from, of one kind (train, lottery, precompute, distill). */
    base: z.record(z.string(), z.unknown()),
    /** The base's kind, when its shape alone does not say. */
    kind: z.string().optional(),
    axes: z.array(axisSchema).min(1, 'a sweep needs at least one axis'),
    /** Seeded random draws instead of the full grid. */
    random: z
      .object({
        trials: z.number().int().positive().max(MAX_TRIALS),
        seed: z.number().int().nonnegative().default(0),
      })
      .strict()
      .optional(),
    /** Trials running at once. */
    maxParallel: z.number().int().positive().max(256).default(4),
    /** Trials one workflow run starts before it continues as new (keeps each run's history bounded). */
    trialsPerRun: z.number().int().positive().max(10_000).default(100),
    /** The metric the sweep's plot shows (default: the kind's first, e.g. testAccuracy). */
    metric: z.string().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Map<string, number>();
    s.axes.forEach((a, i) => {
      const j = seen.get(a.field);
      if (j !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['axes', i, 'field'],
          message: `'${a.field}' is already axes[${j}]`,
        });
      seen.set(a.field, i);
      if (!s.random && a.values === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['axes', i, 'values'],
          message: 'a grid axis lists its values (uniform, logUniform and int need `random:`)',
        });
    });
    if (!s.random) {
      const n = s.axes.reduce((p, a) => p * (a.values?.length ?? 1), 1);
      if (n > MAX_TRIALS)
        ctx.addIssue({
          code: 'custom',
          path: ['axes'],
          message: `the grid has ${n} trials; at most ${MAX_TRIALS}`,
        });
    }
  });

export type SweepSpec = z.infer<typeof sweepSpecSchema>;
export type SweepSpecInput = z.input<typeof sweepSpecSchema>;

export function parseSweepSpec(input: unknown): SweepSpec {
  return parseSpec(sweepSpecSchema, input, 'sweep spec');
}

export function trialCount(spec: SweepSpec): number {
  return spec.random ? spec.random.trials : spec.axes.reduce((p, a) => p * (a.values?.length ?? 1), 1);
}

/** One value per axis, in axis order. */
export type Assignments = [field: string, value: unknown][];

/**
 * The values of trial `index`: in a grid, the first axis varies slowest (nested loops in the order written); in
 * random mode, each trial has its own generator seeded by (seed, index), so trial i is the same whatever ran before.
 */
export function trialAssignments(spec: SweepSpec, index: number): Assignments {
  if (!Number.isInteger(index) || index < 0 || index >= trialCount(spec))
    throw new RangeError(`trial ${index} is outside 0..${trialCount(spec) - 1}`);
  if (!spec.random) {
    const out: Assignments = [];
    let rest = index;
    for (let i = spec.axes.length - 1; i >= 0; i--) {
      const values = spec.axes[i]?.values ?? [];
      out.unshift([spec.axes[i]?.field ?? '', values[rest % values.length]]);
      rest = Math.floor(rest / values.length);
    }
    return out;
  }
  const next = mulberry32(mix(spec.random.seed, index));
  return spec.axes.map((a) => [a.field, draw(a, next)]);
}

function draw(a: Axis, next: () => number): unknown {
  const u = next();
  if (a.values) return a.values[Math.min(a.values.length - 1, Math.floor(u * a.values.length))];
  // Six significant digits: readable labels, and the same value wherever the trial is expanded.
  if (a.uniform) return round6(a.uniform[0] + u * (a.uniform[1] - a.uniform[0]));
  if (a.logUniform) {
    const [lo, hi] = a.logUniform.map(Math.log) as [number, number];
    return round6(Math.exp(lo + u * (hi - lo)));
  }
  const [lo, hi] = a.int as [number, number];
  return Math.min(hi, lo + Math.floor(u * (hi - lo + 1)));
}

const round6 = (x: number) => Number(x.toPrecision(6));

/** A 32-bit seed from (seed, index): two rounds of an integer hash, so neighbouring trials are unrelated. */
function mix(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index >>> 0, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** How a trial is named in tables and in its `Trial` search attribute: `pruning.fraction=0.4 train.seed=2`. */
export function trialLabel(assignments: Assignments): string {
  return assignments.map(([f, v]) => `${f}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
}

/** A copy of `obj` with `value` at the dotted `field`; a missing or non-object step becomes an object. */
export function withField(
  obj: Record<string, unknown>,
  field: string,
  value: unknown,
): Record<string, unknown> {
  const [head, ...rest] = field.split('.') as [string, ...string[]];
  if (rest.length === 0) return { ...obj, [head]: value };
  const inner = obj[head];
  const base =
    inner && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : {};
  return { ...obj, [head]: withField(base, rest.join('.'), value) };
}

/** The value at a dotted field, or undefined where the path does not lead. */
export function fieldValue(obj: unknown, field: string): unknown {
  let cur: unknown = obj;
  for (const k of field.split('.')) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** A trial as the sweep workflow starts it (planned by a light activity: the workflow cannot hash). */
export interface PlannedTrial {
  index: number;
  /** The trial's workflow summary in the UI. */
  summary: string;
  label: string;
  assignments: Assignments;
  kind: string;
  workflowType: string;
  workflowId: string;
  workflowArgs: unknown[];
  experiment: string;
  runKind: string;
}

export interface TrialsPage {
  total: number;
  trials: PlannedTrial[];
}

/** A trial's outcome in the sweep's table. */
export interface TrialRow {
  index: number;
  label: string;
  assignments: Assignments;
  workflowId: string;
  status: 'done' | 'failed';
  /** Its kind's headline numbers (SpecKind.metrics); absent for a failed trial. */
  metrics?: Record<string, number>;
  error?: string;
  /** True when its workflow had already finished (or was running) and the sweep only attached to it. */
  attached: boolean;
}

export type SweepPhase = 'running' | 'done' | 'failed' | 'cancelled';

export interface SweepStatus {
  phase: SweepPhase;
  sweep: string;
  kind: string | null;
  total: number | null;
  /** Trials started by this run or an earlier one of this sweep. */
  started: number;
  running: { index: number; label: string; workflowId: string }[];
  rows: TrialRow[];
  /** True while a `pause` holds new trials back (running ones finish). */
  paused: boolean;
}

export interface SweepResult {
  sweep: string;
  kind: string;
  total: number;
  rows: TrialRow[];
}

export interface SweepWorkflowInput {
  spec: unknown;
  /** Carried over continue-as-new: the finished trials and the next index to start. */
  rows?: TrialRow[];
  next?: number;
  paused?: boolean;
  /** The one-line summary the client gave the first run (a continued run has no static summary of its own). */
  summary?: string;
}
