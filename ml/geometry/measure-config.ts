/**
 * The measures an analysis can run and each one's configuration with its defaults: plain schemas with no TF.js
 * behind them, so that a spec is checked where TF.js cannot load (the workflow sandbox). measures.ts maps each
 * name to its implementation, and the compiler rejects a name without one.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const range = z
  .tuple([z.number(), z.number()])
  .refine(([a, b]) => a < b, 'the range must run from a smaller to a larger value');

export const MEASURE_CONFIG_SCHEMAS = {
  /** Train and test loss and error at the solution. */
  loss: z.object({}).strict(),
  /** Loss and error along one filter-normalised direction. */
  slice1d: z.object({ points: int(3, 401).default(41), range: range.default([-1, 1]) }).strict(),
  /** Loss and error on the plane of two filter-normalised directions. */
  slice2d: z.object({ points: int(3, 101).default(21), range: range.default([-1, 1]) }).strict(),
  /** The straight path from the previous level's solution (Paul et al.: are successive levels connected?). */
  path: z.object({ points: int(3, 401).default(21) }).strict(),
  /** The straight path from the twin (same rewind point, another data order): the instability barrier. */
  'twin-path': z.object({ points: int(3, 401).default(21) }).strict(),
  /** The straight path from the rewind point the level trained from to its solution. */
  'rewind-path': z.object({ points: int(3, 401).default(21) }).strict(),
  /** Top-k Hessian eigenvalues (power iteration with deflation), and each prunable layer's top one. */
  hessian: z
    .object({
      k: int(1, 50).default(5),
      maxIterations: int(1, 10_000).default(100),
      tol: z.number().positive().max(0.5).default(1e-3),
      perLayer: z.boolean().default(true),
    })
    .strict(),
  /**
   * Hutchinson's estimate of the Hessian trace, and each prunable layer's from the same probes: at least
   * `minSamples` probes, then until the standard error is at most `relativeError` of the trace, at most `samples`.
   */
  trace: z
    .object({
      samples: int(2, 100_000).default(100),
      minSamples: int(2, 100_000).default(10),
      relativeError: z.number().min(0).max(1).default(0.05),
      perLayer: z.boolean().default(true),
    })
    .strict(),
  /** Keskar's ε-sharpness. */
  sharpness: z
    .object({ epsilon: z.number().positive().max(1).default(1e-3), steps: int(1, 1000).default(10) })
    .strict(),
  /**
   * Jiang et al.'s PAC-Bayes σ: the largest σ whose Gaussian noise raises the training 0-1 error (`on: error`, the
   * published definition) or the loss (`on: loss`) by `deviation` on average.
   */
  'pac-bayes': z
    .object({
      on: z.enum(['error', 'loss']).default('error'),
      deviation: z.number().positive().default(0.1),
      samples: int(1, 1000).default(10),
    })
    .strict(),
  /** Basin radii along random directions, and the log-volume. */
  basin: z
    .object({ directions: int(1, 10_000).default(20), threshold: z.number().positive().default(0.1) })
    .strict(),
  /** Distance and sign agreement to the rewind point, per-layer norms, mask overlap with the previous level. */
  descriptors: z.object({}).strict(),
} as const;

export type MeasureName = keyof typeof MEASURE_CONFIG_SCHEMAS;
export const MEASURE_NAMES = Object.keys(MEASURE_CONFIG_SCHEMAS) as MeasureName[];
export type MeasureConfig<M extends MeasureName> = z.output<(typeof MEASURE_CONFIG_SCHEMAS)[M]>;
/** A stored solution a measure may read besides the one it measures. */
export type MeasureInput = 'previous' | 'twin' | 'rewind';

/**
 * Each measure's inputs and definition, besides its options: what else it reads (a stored result is keyed by these,
 * so that it is reused only for the same inputs), which of them it cannot run without (a solution without it is not
 * measured by it), and the revision of its definition where it changed after results were stored (a new revision is
 * a new key: results of the old definition are never reused for the new one).
 */
export const MEASURE_INPUTS: {
  [M in MeasureName]: {
    reads: readonly MeasureInput[];
    requires?: MeasureInput;
    revision?: string;
    /** Run over the analysis's replicates (data subsets × probe seeds) and reported as mean, std and n. */
    replicated?: boolean;
  };
} = {
  loss: { reads: [] },
  slice1d: { reads: [] },
  slice2d: { reads: [] },
  path: { reads: ['previous'], requires: 'previous', revision: 'barriers: meanEndpoints, interpolated' },
  'twin-path': { reads: ['twin'], requires: 'twin', revision: 'barriers: meanEndpoints, interpolated' },
  'rewind-path': { reads: ['rewind'], requires: 'rewind', revision: 'barriers: meanEndpoints, interpolated' },
  hessian: { reads: [], revision: 'hvp: double-backward', replicated: true },
  trace: { reads: [], revision: 'hvp: double-backward', replicated: true },
  sharpness: { reads: [], replicated: true },
  'pac-bayes': { reads: [], replicated: true },
  basin: { reads: [], replicated: true },
  descriptors: { reads: ['previous', 'rewind'] },
};

/** What a measure needs besides the solution; a solution without it is not measured by it. */
export const MEASURE_NEEDS: Partial<Record<MeasureName, MeasureInput>> = Object.fromEntries(
  MEASURE_NAMES.flatMap((m) => {
    const need = MEASURE_INPUTS[m].requires;
    return need ? [[m, need]] : [];
  }),
);
