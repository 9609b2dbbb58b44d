// The geometry analysis of stored IMP levels (analyzeWorkflow): which solutions, which measures with which
// configuration, on which data subset. Pure zod: the workflow sandbox imports it. Measures and their options are
// ml/geometry/measure-config.ts's; each (solution, measure) is one activity whose result is content-addressed.
import { z } from 'zod';

import { DATASET_NAMES } from '../ml/data/names';
import { MODEL_NAMES } from '../ml/models/names';
import {
  MEASURE_CONFIG_SCHEMAS,
  MEASURE_INPUTS,
  MEASURE_NAMES,
  MEASURE_NEEDS,
  type MeasureColumn,
  type MeasureName,
} from '../ml/geometry/measure-config';

export { MEASURE_INPUTS, MEASURE_NAMES, MEASURE_NEEDS, type MeasureColumn, type MeasureName };
import type { LevelResult } from './lottery';
import { experimentSchema, heartbeatTimeoutSchema, objectRefSchema, parseSpec } from './spec';

// Each measure's options, every field defaulted: an absent section is the measure's defaults.
const measureSections = z
  .object(
    Object.fromEntries(
      MEASURE_NAMES.map((m) => [m, (MEASURE_CONFIG_SCHEMAS[m] as z.ZodType).prefault({})]),
    ) as unknown as { [M in MeasureName]: z.ZodPrefault<(typeof MEASURE_CONFIG_SCHEMAS)[M]> },
  )
  .strict();

/** How every solution of an analysis is measured. */
export const analysisConfigSchema = z
  .object({
    /** Which measures (default all). */
    measures: z
      .array(z.enum(MEASURE_NAMES as [MeasureName, ...MeasureName[]]))
      .min(1)
      .default([...MEASURE_NAMES])
      .refine((m) => new Set(m).size === m.length, 'a measure is listed twice'),
    /** Class-balanced subsets of the training and test splits the losses average over. */
    subset: z
      .object({
        train: z.number().int().min(10).max(60_000).default(1000),
        test: z.number().int().min(10).max(10_000).default(1000),
      })
      .strict()
      .default({ train: 1000, test: 1000 }),
    batchSize: z.number().int().min(1).max(10_000).default(1000),
    /** Seeds every random direction and draw. */
    seed: z.number().int().min(0).default(0),
    /**
     * The curvature and flatness measures (hessian, trace, sharpness, pac-bayes, basin) run on `subsets` disjoint
     * training subsets of `subset.train` examples, each with `seeds` probe seeds, and report mean, std and n.
     */
    replicates: z
      .object({
        seeds: z.number().int().min(1).max(20).default(3),
        subsets: z.number().int().min(1).max(10).default(2),
      })
      .strict()
      .default({ seeds: 3, subsets: 2 }),
    options: measureSections.prefault({}),
  })
  .strict()
  .refine((c) => c.subset.train * c.replicates.subsets <= 60_000, {
    message: 'subset.train × replicates.subsets must fit in the training split (60,000 at most)',
    path: ['replicates', 'subsets'],
  });

export type AnalysisConfig = z.output<typeof analysisConfigSchema>;

/** One stored solution: an IMP level of the trunk or of a branch. */
export const analysisTargetSchema = z
  .object({
    /** For people: trunk, or the branch label. */
    label: z.string(),
    level: z.number().int().min(0),
    remainingPct: z.number(),
    model: z.enum(MODEL_NAMES),
    dataset: z.enum(DATASET_NAMES),
    weights: objectRefSchema,
    mask: objectRefSchema.nullable(),
    /** The training state the level started from (weights under `weights/`). */
    rewind: objectRefSchema.nullable(),
    /** The level before it in the same lineage, for the pairwise measures. */
    previous: z.object({ weights: objectRefSchema, mask: objectRefSchema.nullable() }).strict().nullable(),
    /** The same level's twin (a `twin` branch: same rewind point, another data order), for `twin-path`. */
    twin: z.object({ weights: objectRefSchema }).strict().nullable().default(null),
  })
  .strict();

export type AnalysisTarget = z.output<typeof analysisTargetSchema>;

export const analysisSpecSchema = z
  .object({
    experiment: experimentSchema,
    targets: z.array(analysisTargetSchema).min(1),
    config: analysisConfigSchema.prefault({}),
    /** Measures run at once (each is one activity on a compute worker). */
    parallelism: z.number().int().min(1).max(64).default(2),
    heartbeatTimeoutSeconds: heartbeatTimeoutSchema,
  })
  .strict();

export type AnalysisSpec = z.output<typeof analysisSpecSchema>;

export function parseAnalysisSpec(input: unknown): AnalysisSpec {
  return parseSpec(analysisSpecSchema, input, 'analysis spec');
}

/**
 * The solutions to measure: each finished level of the runs given (the trunk, branches), with the level before it
 * in the same run, and for a trunk level the same level of the twin branch when there is one.
 */
export function levelTargets(
  runs: { label: string; levels: LevelResult[] }[],
  about: { model: AnalysisTarget['model']; dataset: AnalysisTarget['dataset'] },
  opts: { levels?: number[]; twin?: { levels: LevelResult[] } } = {},
): AnalysisTarget[] {
  const twins = new Map<number, LevelResult>((opts.twin?.levels ?? []).map((l) => [l.level, l]));
  return runs.flatMap((run) => {
    const byLevel = new Map<number, LevelResult>(run.levels.map((l) => [l.level, l]));
    return [...run.levels]
      .sort((a, b) => a.level - b.level)
      .filter((l) => !opts.levels || opts.levels.includes(l.level))
      .map((l) => {
        const before = byLevel.get(l.level - 1);
        const twin = run.label === 'trunk' ? twins.get(l.level) : undefined;
        return {
          label: run.label,
          level: l.level,
          remainingPct: l.remainingPct,
          ...about,
          weights: l.weights,
          mask: l.mask,
          rewind: l.rewind,
          previous: before ? { weights: before.weights, mask: before.mask } : null,
          twin: twin ? { weights: twin.weights } : null,
        };
      });
  });
}

/** Whether a target has what a measure needs (the previous level, a twin, a rewind point). */
export function measures(target: AnalysisTarget, measure: MeasureName): boolean {
  const need = MEASURE_NEEDS[measure];
  return need === undefined || target[need] !== null;
}

export interface MeasureActivityInput {
  target: AnalysisTarget;
  measure: MeasureName;
  config: AnalysisConfig;
}

export interface MeasureRecord {
  measure: MeasureName;
  /** analysis/<hash>/result.json: the summary, the config and what was measured; arrays beside it. */
  resultKey: string;
  arraysKey: string;
  summary: Record<string, number>;
  reused: boolean;
  /** The step the measure resumed from a checkpoint at (0: from the start). */
  resumedFrom: number;
  seconds: number;
}

export interface AnalysisResult {
  targets: { label: string; level: number; remainingPct: number; measures: MeasureRecord[] }[];
}

export interface AnalysisStatus {
  phase: 'measuring' | 'done' | 'failed';
  experiment: string;
  total: number;
  done: number;
  reused: number;
}
