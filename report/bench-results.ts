// report/: what the README's result tables read from bench/results/*.json. Each schema holds only the fields a
// table shows (other fields pass unchecked), so a bench may record more without breaking the README; a field a
// table needs that is missing or of the wrong type fails with its dotted path, not with a table of NaN.
import { z } from 'zod';

/** A result file that does not hold what a table needs; `issues` has one `field: problem` line each. */
export class BenchResultError extends Error {
  override readonly name = 'BenchResultError';

  constructor(
    readonly issues: readonly string[],
    what: string,
  ) {
    super(`${what}: ${issues.join('; ')}`);
  }
}

function issueLines(error: z.ZodError): string[] {
  return error.issues.map(
    (i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`,
  );
}

/** `json` checked against `schema`; `what` (the table) heads the error. */
export function parseBenchResult<S extends z.ZodType>(schema: S, json: unknown, what: string): z.output<S> {
  const result = schema.safeParse(json);
  if (!result.success) throw new BenchResultError(issueLines(result.error), what);
  return result.data;
}

/** A BenchResultError about one field, for what a schema cannot say (a level the table shows is absent). */
export function fieldError(what: string, field: string, problem: string): BenchResultError {
  return new BenchResultError([`${field}: ${problem}`], what);
}

const count = z.number().int().nonnegative();
const rate = z.number().nonnegative();
/** A statistic over seeds; mean and std are fractions of the test set. */
const overSeeds = z.object({ mean: z.number(), std: z.number().nonnegative(), n: count });

/** bench/results/imp-lenet-mnist.json (bench/imp.ts). */
export const impResultSchema = z.object({
  levels: z
    .array(
      z.object({
        level: count,
        remainingPct: z.number().positive().max(100),
        ticket: overSeeds,
        reinit: overSeeds.optional(),
        randomPrune: overSeeds.optional(),
      }),
    )
    .min(1),
});

/** bench/results/logits.json (bench/logits.ts). */
export const logitsResultSchema = z.object({
  teachers: z
    .array(
      z.object({
        name: z.string().min(1),
        dataset: z.string().min(1),
        testAccuracy: z.number().min(0).max(1),
        precomputeByBackend: z.record(z.string(), z.object({ perSec: rate })),
      }),
    )
    .min(1),
  formats: z
    .array(
      z.object({
        format: z.string().min(1),
        teacher: z.string().min(1),
        bytesPerSample: rate,
        klToFull: z.number().nonnegative(),
      }),
    )
    .min(1),
});

/** bench/results/distill.json (bench/distill.ts). */
export const distillResultSchema = z.object({
  runs: z
    .array(
      z.object({
        dataset: z.string().min(1),
        trainFraction: z.number().positive().max(1),
        variant: z.string().min(1),
        epochs: z.number().positive(),
        testAccuracy: overSeeds,
      }),
    )
    .min(1),
});

/** bench/results/scaleout.json (bench/scaleout.ts). */
export const scaleoutResultSchema = z.object({
  runs: z
    .array(
      z.object({
        profile: z.string().min(1),
        workers: z.number().int().positive(),
        wallSeconds: z.number().positive(),
        speedup: z.number().positive(),
        overheadShare: z.number(),
        scheduleToStartP50Ms: rate,
        scheduleToStartP95Ms: rate,
      }),
    )
    .min(1),
});

/** bench/results/backends.json (bench/backends.ts). */
export const backendsResultSchema = z.object({
  results: z
    .array(
      z.object({
        backend: z.string().min(1),
        model: z.string().min(1),
        batch: z.number().int().positive(),
        // The plain CPU backend has no thread setting: null.
        threads: z.number().int().positive().nullable(),
        samplesPerSec: rate,
      }),
    )
    .min(1),
});

const peerRow = z.object({
  model: z.string().min(1),
  framework: z.string().min(1),
  threads: z.number().int().positive(),
  samplesPerSec: rate,
  peakRssMiB: rate,
  version: z.string(),
  // Rows measured before the step engines were recorded have none.
  engine: z.string().optional(),
  invocation: z.string().min(1),
});

/** bench/results/peer.json (bench/peer.ts): rows of every invocation kept, each naming the one that measured it. */
export const peerResultSchema = z.object({
  invocations: z.array(z.object({ startedAt: z.string().min(1) })).min(1),
  results: z.array(peerRow),
  baselines: z.array(peerRow),
});

export type PeerRow = z.output<typeof peerRow>;

/** bench/results/profile-tensorflow.json (bench/profile.ts): one training step per model, taken apart. */
export const profileResultSchema = z.object({
  models: z
    .array(
      z.object({
        model: z.string().min(1),
        wallMs: z.number().positive(),
        // Null where the model's step cannot run as a graph on the profiled backend.
        graphWallMs: z.number().positive().nullable(),
        kernels: count,
        outermostKernels: count,
        kernelMs: z.number().nonnegative(),
        // (wall - kernels) / wall: negative where kernels timed one by one sum to more than the step's wall.
        outsideShare: z.number().max(1),
        tensorsAllocated: count,
        // The bench keeps the ten with the most outermost time; nested calls are counted but add no ms.
        topKernels: z.array(
          z.object({
            name: z.string().min(1),
            count: z.number().int().positive(),
            nested: count,
            ms: z.number().nonnegative(),
          }),
        ),
      }),
    )
    .min(1),
});

/**
 * One value of a geometry level (bench/geometry.ts's acrossSeeds and the replicates beside it). Every array holds
 * one entry per measured seed, in the order of the result's `seeds`; null where that seed has no such value (a
 * barrier at level 0, a measure without replicates). The mean is null where no seed measured it (n = 0), the std
 * where fewer than two did.
 */
const geometryValue = z.object({
  mean: z.number().nullable(),
  std: z.number().nonnegative().nullable(),
  n: count,
  perSeed: z.array(z.number().nullable()),
  replicateStd: z.array(z.number().nonnegative().nullable()),
  replicateN: z.array(count.nullable()),
});

export type GeometryValue = z.output<typeof geometryValue>;

/**
 * A level of a geometry series with the values the README's table shows, by the names bench/geometry.ts's KEYS
 * gives them. Each is required: the bench writes every key on every level (null inside where not measured), so an
 * absent one means a file of another format, which should fail by name rather than show as empty cells.
 */
const geometryLevel = z.object({
  level: count,
  // The bench writes null only where no seed file has the level's row; such a level has nothing to show.
  remainingPct: z.number().positive().max(100).nullable(),
  topEigenvalue: geometryValue,
  trace: geometryValue,
  pacBayesSigma: geometryValue,
  barrierPrevLevel: geometryValue,
  barrierRewindInterpolated: geometryValue,
  barrierTwin: geometryValue,
  testError: geometryValue,
});

export type GeometryLevel = z.output<typeof geometryLevel>;

/** bench/results/geometry-lenet-mnist.json (bench/geometry.ts), the per-seed format: series of levels of values. */
export const geometryResultSchema = z.object({
  seeds: z.array(z.number().int().nonnegative()).min(1),
  seedsPlanned: z.array(z.number().int().nonnegative()).min(1),
  // The replicate design, for the caption's words on what a one-seed ± is.
  spec: z.object({
    analysis: z.object({
      replicates: z.object({ seeds: z.number().int().positive(), subsets: z.number().int().positive() }),
    }),
  }),
  series: z.array(z.object({ name: z.string().min(1), levels: z.array(geometryLevel).min(1) })).min(1),
});
