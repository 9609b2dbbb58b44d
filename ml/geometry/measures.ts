/**
 * The measures of an analysis, one function each (their configurations in measure-config.ts): what a solution's
 * geometry is, from its train and test objectives. Each returns scalar summaries and raw arrays (the curves, the
 * eigenvalues, the radii). Long ones resume from the state they last checkpointed and checkpoint as they go.
 */
import { MlInputError } from '../errors.js';
import type { NamedTensors } from '../host-tensor.js';
import { distance, layerNorms, maskJaccard, signAgreement } from './descriptors.js';
import { filterNormalizedDirection } from './directions.js';
import { basinRadii, epsSharpness, pacBayesSigma } from './flatness.js';
import { hessianTrace, topEigenvalues, type EigenState, type TraceSamples } from './hessian.js';
import type { MeasureConfig, MeasureName } from './measure-config.js';
import type { LossValue, Objective } from './objective.js';
import { linearPath, slice1d, slice2d } from './slices.js';
import { deriveSeed } from '../rng.js';
import type { Vec } from './space.js';

/** A measure's partial state: JSON values and float64 vectors. */
export type MeasureState = { [key: string]: unknown };

export interface MeasureContext {
  /** The loss on the training subset (curvature and flatness are of this one) and on the test subset. */
  train: Objective;
  test: Objective;
  theta: Vec;
  seed: number;
  masks: NamedTensors | null;
  /** The rewind point the level trained from (descriptors). */
  rewind: Vec | null;
  /** The previous level's solution and masks (path, descriptors). */
  previous: { theta: Vec; masks: NamedTensors | null } | null;
  /** The twin's solution: the same start trained on another data order (twin-path). */
  twin: Vec | null;
  resume: MeasureState | null;
  /** Records partial progress; the caller decides how often it reaches the store. */
  checkpoint(state: MeasureState): Promise<void>;
}

export interface MeasureOutput {
  summary: Record<string, number>;
  arrays: Record<string, Float64Array>;
}

type Measure<M extends MeasureName> = (
  ctx: MeasureContext,
  config: MeasureConfig<M>,
) => Promise<MeasureOutput>;

interface HessianState {
  all: EigenState | null;
  /** The top eigenvalue of each finished block. */
  layers: Record<string, number>;
  /** The block being iterated. */
  layer: EigenState | null;
}

/** The prunable parameters that have free coordinates: their diagonal blocks are the per-layer curvature. */
function prunableBlocks(ctx: MeasureContext): string[] {
  const space = ctx.train.space;
  return space.params
    .filter((p, i) => {
      if (!p.prunable) return false;
      const start = space.offsets[i] as number;
      const end = i + 1 < space.params.length ? (space.offsets[i + 1] as number) : space.size;
      for (let j = start; j < end; j++) if (space.free[j]) return true;
      return false;
    })
    .map((p) => p.name);
}

const series = (values: readonly LossValue[], key: keyof LossValue) =>
  Float64Array.from(values, (v) => v[key]);

/** Train then test along the same points, resumable point by point. */
async function bothSplits<T extends { values: LossValue[] }>(
  ctx: MeasureContext,
  run: (
    objective: Objective,
    known: (LossValue | null)[],
    onValue: (i: number, v: LossValue) => Promise<void>,
  ) => Promise<T>,
): Promise<{ train: T; test: T }> {
  const state = {
    train: [...((ctx.resume?.train as LossValue[] | undefined) ?? [])],
    test: [...((ctx.resume?.test as LossValue[] | undefined) ?? [])],
  };
  const side = (name: 'train' | 'test') => (i: number, v: LossValue) => {
    state[name][i] = v;
    return ctx.checkpoint({ train: state.train, test: state.test });
  };
  const train = await run(ctx.train, state.train, side('train'));
  const test = await run(ctx.test, state.test, side('test'));
  return { train, test };
}

function curves(prefix: string, values: readonly LossValue[]): Record<string, Float64Array> {
  return { [`${prefix}Loss`]: series(values, 'loss'), [`${prefix}Error`]: series(values, 'error') };
}

function requireVec(v: Vec | null | undefined, measure: string, what: string): Vec {
  if (!v) throw new MlInputError(`${measure} needs ${what}`);
  return v;
}

/** The straight path from `from` (α = 0) to the solution (α = 1) on both splits, and its barriers. */
async function pathMeasure(
  ctx: MeasureContext,
  config: { points: number },
  from: Vec,
): Promise<MeasureOutput> {
  const r = await bothSplits(ctx, (objective, known, onValue) =>
    linearPath(objective, from, ctx.theta, { points: config.points, known, onValue }),
  );
  return {
    // Both definitions (ml/geometry/README.md): `…Barrier` against the endpoints' mean, `…BarrierInterpolated`
    // against the straight line between them.
    summary: {
      trainLossBarrier: r.train.lossBarrier,
      trainErrorBarrier: r.train.errorBarrier,
      testLossBarrier: r.test.lossBarrier,
      testErrorBarrier: r.test.errorBarrier,
      trainLossBarrierInterpolated: r.train.lossBarrierInterpolated,
      trainErrorBarrierInterpolated: r.train.errorBarrierInterpolated,
      testLossBarrierInterpolated: r.test.lossBarrierInterpolated,
      testErrorBarrierInterpolated: r.test.errorBarrierInterpolated,
    },
    arrays: {
      alphas: Float64Array.from(r.train.alphas),
      ...curves('train', r.train.values),
      ...curves('test', r.test.values),
    },
  };
}

export const MEASURES: { [M in MeasureName]: Measure<M> } = {
  async loss(ctx) {
    const [train, test] = [await ctx.train.value(ctx.theta), await ctx.test.value(ctx.theta)];
    return {
      summary: { trainLoss: train.loss, trainError: train.error, testLoss: test.loss, testError: test.error },
      arrays: {},
    };
  },

  async slice1d(ctx, config) {
    const d = filterNormalizedDirection(ctx.train.space, ctx.theta, deriveSeed(ctx.seed, 'slice', 0));
    const r = await bothSplits(ctx, (objective, known, onValue) =>
      slice1d(objective, ctx.theta, d, { range: config.range, points: config.points, known, onValue }),
    );
    return {
      summary: {},
      arrays: {
        alphas: Float64Array.from(r.train.alphas),
        ...curves('train', r.train.values),
        ...curves('test', r.test.values),
      },
    };
  },

  async slice2d(ctx, config) {
    const d1 = filterNormalizedDirection(ctx.train.space, ctx.theta, deriveSeed(ctx.seed, 'slice', 0));
    const d2 = filterNormalizedDirection(ctx.train.space, ctx.theta, deriveSeed(ctx.seed, 'slice', 1));
    const r = await bothSplits(ctx, (objective, known, onValue) =>
      slice2d(objective, ctx.theta, d1, d2, { range: config.range, points: config.points, known, onValue }),
    );
    return {
      summary: {},
      arrays: {
        axis: Float64Array.from(r.train.alphas),
        ...curves('train', r.train.values),
        ...curves('test', r.test.values),
      },
    };
  },

  path: (ctx, config) =>
    pathMeasure(ctx, config, requireVec(ctx.previous?.theta, 'path', "the previous level's solution")),
  'twin-path': (ctx, config) =>
    pathMeasure(ctx, config, requireVec(ctx.twin, 'twin-path', "the twin's solution")),
  'rewind-path': (ctx, config) =>
    pathMeasure(ctx, config, requireVec(ctx.rewind, 'rewind-path', 'the rewind point')),

  async hessian(ctx, config) {
    // State: the whole space's pairs, then one block (prunable parameter) after another.
    const state = (ctx.resume as HessianState | null) ?? { all: null, layers: {}, layer: null };
    const save = () => ctx.checkpoint(state as unknown as MeasureState);
    const common = { maxIterations: config.maxIterations, tol: config.tol, seed: ctx.seed };
    const pairs = await topEigenvalues(ctx.train, ctx.theta, {
      ...common,
      k: config.k,
      resume: state.all ?? undefined,
      onIteration: (s) => {
        state.all = s;
        return save();
      },
    });
    state.all = { found: pairs, current: null };
    const summary: Record<string, number> = { topEigenvalue: pairs[0]?.value ?? NaN };
    if (config.perLayer) {
      for (const name of prunableBlocks(ctx)) {
        if (state.layers[name] === undefined) {
          const [top] = await topEigenvalues(ctx.train, ctx.theta, {
            ...common,
            k: 1,
            block: name,
            resume: state.layer ?? undefined,
            onIteration: (s) => {
              state.layer = s;
              return save();
            },
          });
          state.layers[name] = top?.value ?? NaN;
          state.layer = null;
          await save();
        }
        summary[`topEigenvalue.${name}`] = state.layers[name] as number;
      }
    }
    return {
      summary,
      arrays: {
        eigenvalues: Float64Array.from(pairs, (p) => p.value),
        iterations: Float64Array.from(pairs, (p) => p.iterations),
      },
    };
  },

  async trace(ctx, config) {
    const blocks = config.perLayer ? prunableBlocks(ctx) : [];
    const est = await hessianTrace(ctx.train, ctx.theta, {
      samples: config.samples,
      minSamples: config.minSamples,
      relativeError: config.relativeError,
      blocks,
      seed: ctx.seed,
      resume: (ctx.resume as TraceSamples | null) ?? undefined,
      onSample: (samples) => ctx.checkpoint(samples as unknown as MeasureState),
    });
    const summary: Record<string, number> = {
      trace: est.trace,
      traceStandardError: est.standardError,
      traceSamples: est.samples.length,
    };
    for (const [name, b] of Object.entries(est.blocks)) {
      summary[`trace.${name}`] = b.trace;
      summary[`traceStandardError.${name}`] = b.standardError;
    }
    return { summary, arrays: { samples: Float64Array.from(est.samples) } };
  },

  async sharpness(ctx, config) {
    const s = await epsSharpness(ctx.train, ctx.theta, {
      epsilon: config.epsilon,
      steps: config.steps,
      seed: ctx.seed,
    });
    return { summary: { epsSharpness: s.sharpness, maxLoss: s.maxLoss }, arrays: {} };
  },

  async 'pac-bayes'(ctx, config) {
    const p = await pacBayesSigma(ctx.train, ctx.theta, {
      on: config.on,
      deviation: config.deviation,
      samples: config.samples,
      seed: ctx.seed,
    });
    return { summary: { pacBayesSigma: p.sigma, deviation: p.deviation }, arrays: {} };
  },

  async basin(ctx, config) {
    const b = await basinRadii(ctx.train, ctx.theta, {
      directions: config.directions,
      threshold: config.threshold,
      seed: ctx.seed,
      resume: (ctx.resume?.radii as number[] | undefined) ?? undefined,
      onRadius: (radii) => ctx.checkpoint({ radii }),
    });
    return {
      summary: { logVolume: b.logVolume, meanLogRadius: b.meanLogRadius, dimension: b.dimension },
      arrays: { radii: Float64Array.from(b.radii) },
    };
  },

  async descriptors(ctx) {
    const space = ctx.train.space;
    const summary: Record<string, number> = { freeParameters: space.freeCount };
    if (ctx.rewind) {
      summary.distanceFromRewind = distance(space, ctx.theta, ctx.rewind);
      summary.signAgreementWithRewind = signAgreement(space, ctx.theta, ctx.rewind);
    }
    if (ctx.previous) {
      summary.distanceFromPrevious = distance(space, ctx.theta, ctx.previous.theta);
      if (ctx.masks && ctx.previous.masks)
        summary.maskJaccardWithPrevious = maskJaccard(ctx.masks, ctx.previous.masks);
    }
    for (const [name, n] of Object.entries(layerNorms(space, ctx.theta))) summary[`norm.${name}`] = n;
    return { summary, arrays: {} };
  },
};
