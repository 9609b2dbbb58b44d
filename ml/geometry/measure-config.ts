/**
 * The registry of the measures an analysis can run: one entry per measure with its options (a schema with
 * defaults), what it reads besides the solution, the revision of its definition, whether it runs over replicates,
 * and the summary values a report shows as columns. Plain schemas with no TF.js behind them, so that a spec is
 * checked where TF.js cannot load (the workflow sandbox). measures.ts maps each name to its implementation, and the
 * compiler rejects a name without one. A new measure is one entry here and one function there.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const range = z
  .tuple([z.number(), z.number()])
  .refine(([a, b]) => a < b, 'the range must run from a smaller to a larger value');
const pathOptions = z.object({ points: int(3, 401).default(21) }).strict();
/**
 * The finite-difference step the Hessian measures took before their products became exact: still accepted, so that
 * specs written for it (and analyses started with them, whose workflows replay their input) parse, and dropped.
 */
const legacyStep = { epsilon: z.number().positive().max(1).optional() };
const withoutLegacyStep = <T extends { epsilon?: number }>({ epsilon: _dropped, ...rest }: T) => rest;

/** A stored solution a measure may read besides the one it measures. */
export type MeasureInput = 'previous' | 'twin' | 'rewind';

/** A summary value a report shows as a column (and plots against % of weights remaining). */
export interface MeasureColumn {
  key: string;
  header: string;
  title: string;
}

export interface MeasureEntry {
  options: z.ZodType;
  /**
   * The stored solutions it reads besides the measured one: a stored result is keyed by them, so that it is reused
   * only for the same inputs.
   */
  reads: readonly MeasureInput[];
  /** The one of them it cannot run without: a solution without it is not measured by it. */
  requires?: MeasureInput;
  /**
   * The revision of its definition where that changed after results were stored: part of a result's key, so results
   * of an earlier definition are never reused for the current one.
   */
  revision?: string;
  /** Run over the analysis's replicates (data subsets × probe seeds) and reported as mean, std and n. */
  replicated?: boolean;
  columns?: readonly MeasureColumn[];
}

const BARRIERS = 'barriers: meanEndpoints, interpolated';
const EXACT_HVP = 'hvp: double-backward';

export const MEASURE_REGISTRY = {
  /** Train and test loss and error at the solution. */
  loss: {
    options: z.object({}).strict(),
    reads: [],
    columns: [
      { key: 'trainLoss', header: 'train loss', title: 'training loss (subset)' },
      { key: 'testLoss', header: 'test loss', title: 'test loss (subset)' },
      { key: 'testError', header: 'test error', title: 'test error (subset)' },
    ],
  },
  /** Loss and error along one filter-normalised direction. */
  slice1d: {
    options: z.object({ points: int(3, 401).default(41), range: range.default([-1, 1]) }).strict(),
    reads: [],
  },
  /** Loss and error on the plane of two filter-normalised directions. */
  slice2d: {
    options: z.object({ points: int(3, 101).default(21), range: range.default([-1, 1]) }).strict(),
    reads: [],
  },
  /** The straight path from the previous level's solution (Paul et al.: are successive levels connected?). */
  path: {
    options: pathOptions,
    reads: ['previous'],
    requires: 'previous',
    revision: BARRIERS,
    columns: [
      { key: 'testErrorBarrier', header: 'L-1→L barrier', title: 'test-error barrier from level L-1' },
    ],
  },
  /** The straight path from the twin (same rewind point, another data order): the instability barrier. */
  'twin-path': {
    options: pathOptions,
    reads: ['twin'],
    requires: 'twin',
    revision: BARRIERS,
    columns: [
      { key: 'testErrorBarrier', header: 'twin barrier', title: 'instability: twin test-error barrier' },
    ],
  },
  /** The straight path from the rewind point the level trained from to its solution. */
  'rewind-path': {
    options: pathOptions,
    reads: ['rewind'],
    requires: 'rewind',
    revision: BARRIERS,
    columns: [
      {
        key: 'testErrorBarrierInterpolated',
        header: 'rewind→L barrier (interpolated)',
        title: 'test-error barrier from the rewind point, against the line between the endpoints',
      },
    ],
  },
  /** Top-k Hessian eigenvalues (power iteration with deflation), and each prunable layer's top one. */
  hessian: {
    options: z
      .object({
        k: int(1, 50).default(5),
        maxIterations: int(1, 10_000).default(100),
        tol: z.number().positive().max(0.5).default(1e-3),
        perLayer: z.boolean().default(true),
        ...legacyStep,
      })
      .strict()
      .transform(withoutLegacyStep),
    reads: [],
    revision: EXACT_HVP,
    replicated: true,
    columns: [{ key: 'topEigenvalue', header: 'λmax', title: 'top Hessian eigenvalue' }],
  },
  /**
   * Hutchinson's estimate of the Hessian trace, and each prunable layer's from the same probes: at least
   * `minSamples` probes, then until the standard error is at most `relativeError` of the trace, at most `samples`.
   */
  trace: {
    options: z
      .object({
        samples: int(2, 100_000).default(100),
        minSamples: int(2, 100_000).default(10),
        relativeError: z.number().min(0).max(1).default(0.05),
        perLayer: z.boolean().default(true),
        ...legacyStep,
      })
      .strict()
      .transform(withoutLegacyStep),
    reads: [],
    revision: EXACT_HVP,
    replicated: true,
    columns: [{ key: 'trace', header: 'trace', title: 'Hessian trace (Hutchinson)' }],
  },
  /** Keskar's ε-sharpness. */
  sharpness: {
    options: z
      .object({ epsilon: z.number().positive().max(1).default(1e-3), steps: int(1, 1000).default(10) })
      .strict(),
    reads: [],
    replicated: true,
    columns: [{ key: 'epsSharpness', header: 'ε-sharpness', title: 'ε-sharpness (Keskar, %)' }],
  },
  /**
   * Jiang et al.'s PAC-Bayes σ: the largest σ whose Gaussian noise raises the training 0-1 error (`on: error`, the
   * published definition) or the loss (`on: loss`) by `deviation` on average.
   */
  'pac-bayes': {
    options: z
      .object({
        on: z.enum(['error', 'loss']).default('error'),
        deviation: z.number().positive().default(0.1),
        samples: int(1, 1000).default(10),
      })
      .strict(),
    reads: [],
    replicated: true,
    columns: [{ key: 'pacBayesSigma', header: 'PAC-Bayes σ', title: 'PAC-Bayes σ' }],
  },
  /** Basin radii along random directions, and the log-volume. */
  basin: {
    options: z
      .object({ directions: int(1, 10_000).default(20), threshold: z.number().positive().default(0.1) })
      .strict(),
    reads: [],
    replicated: true,
    columns: [
      { key: 'meanLogRadius', header: 'mean ln r', title: 'basin: mean log radius' },
      { key: 'logVolume', header: 'log-volume', title: 'basin log-volume' },
    ],
  },
  /** Distance and sign agreement to the rewind point, per-layer norms, mask overlap with the previous level. */
  descriptors: { options: z.object({}).strict(), reads: ['previous', 'rewind'] },
} as const satisfies Record<string, MeasureEntry>;

export type MeasureName = keyof typeof MEASURE_REGISTRY;
export const MEASURE_NAMES = Object.keys(MEASURE_REGISTRY) as MeasureName[];

/** Each measure's options schema (the registry's `options`). */
export const MEASURE_CONFIG_SCHEMAS = Object.fromEntries(
  MEASURE_NAMES.map((m) => [m, MEASURE_REGISTRY[m].options]),
) as { [M in MeasureName]: (typeof MEASURE_REGISTRY)[M]['options'] };
export type MeasureConfig<M extends MeasureName> = z.output<(typeof MEASURE_CONFIG_SCHEMAS)[M]>;

/** Each measure's entry, typed as the general shape (its optional fields readable on every measure). */
export const MEASURE_INPUTS: Record<MeasureName, MeasureEntry> = MEASURE_REGISTRY;

/** What a measure needs besides the solution; a solution without it is not measured by it. */
export const MEASURE_NEEDS: Partial<Record<MeasureName, MeasureInput>> = Object.fromEntries(
  MEASURE_NAMES.flatMap((m) => {
    const need = MEASURE_INPUTS[m].requires;
    return need ? [[m, need]] : [];
  }),
);
