/**
 * Loss along lines and planes through the parameter space: 1D and 2D slices along (filter-normalised) directions,
 * and the straight path between two solutions with its barrier (Frankle et al. 2020's instability: the largest
 * excess of the path over the mean of its endpoints).
 *
 * Every function evaluates points in a fixed order and can resume: `known` holds values already computed (from a
 * checkpoint), `onValue` sees each new one, so a long slice survives a lost worker point by point.
 */
import { MlInputError } from '../errors.js';
import type { LossValue, Objective } from './objective.js';
import type { Vec } from './space.js';

export interface Progress {
  /** Values already computed, by point index (null or absent: not yet). */
  known?: readonly (LossValue | null)[];
  onValue?: (index: number, value: LossValue) => void | Promise<void>;
}

/** n evenly spaced values from `from` to `to` inclusive. */
export function linspace(from: number, to: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 2) throw new MlInputError(`points must be an integer >= 2, got ${n}`);
  return Array.from({ length: n }, (_, i) => from + ((to - from) * i) / (n - 1));
}

/** The objective at each point, in order, skipping the known ones. */
async function evaluatePoints(
  objective: Objective,
  points: (() => Vec)[],
  progress: Progress,
): Promise<LossValue[]> {
  const out: LossValue[] = [];
  for (let i = 0; i < points.length; i++) {
    const known = progress.known?.[i];
    if (known) {
      out.push(known);
      continue;
    }
    const v = await objective.value((points[i] as () => Vec)());
    out.push(v);
    await progress.onValue?.(i, v);
  }
  return out;
}

function along(theta: Vec, terms: [number, Vec][]): Vec {
  const out = Float64Array.from(theta);
  for (const [a, d] of terms)
    if (a !== 0) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + a * (d[i] as number);
  return out;
}

export interface Slice1D {
  alphas: number[];
  values: LossValue[];
}

/** L(θ + α·d) for α in linspace(range[0], range[1], points) (default [-1, 1], 41 points). */
export async function slice1d(
  objective: Objective,
  theta: Vec,
  direction: Vec,
  opts: { range?: [number, number]; points?: number } & Progress = {},
): Promise<Slice1D> {
  const [from, to] = opts.range ?? [-1, 1];
  const alphas = linspace(from, to, opts.points ?? 41);
  const values = await evaluatePoints(
    objective,
    alphas.map((a) => () => along(theta, [[a, direction]])),
    opts,
  );
  return { alphas, values };
}

export interface Slice2D {
  alphas: number[];
  betas: number[];
  /** Row-major: values[i * betas.length + j] is at (alphas[i], betas[j]). */
  values: LossValue[];
}

/** L(θ + α·d1 + β·d2) on a points × points grid over range² (default [-1, 1], 21 × 21). */
export async function slice2d(
  objective: Objective,
  theta: Vec,
  d1: Vec,
  d2: Vec,
  opts: { range?: [number, number]; points?: number } & Progress = {},
): Promise<Slice2D> {
  const [from, to] = opts.range ?? [-1, 1];
  const axis = linspace(from, to, opts.points ?? 21);
  const points = axis.flatMap((a) =>
    axis.map(
      (b) => () =>
        along(theta, [
          [a, d1],
          [b, d2],
        ]),
    ),
  );
  return { alphas: axis, betas: axis, values: await evaluatePoints(objective, points, opts) };
}

export interface LinearPath {
  alphas: number[];
  /** values[k] is at (1 − α)·θa + α·θb. */
  values: LossValue[];
  /** `meanEndpoints` barrier of the loss: max over α of loss(α) − (loss(0) + loss(1)) / 2 (Frankle et al. 2020). */
  lossBarrier: number;
  /** The same for the error rate. */
  errorBarrier: number;
  /**
   * `interpolated` barrier of the loss: max over α of loss(α) − ((1 − α)·loss(0) + α·loss(1)) (Entezari et al. 2022),
   * the one for endpoints of different loss: a path that only descends from one to the other has 0 here, but half
   * the endpoints' gap as a `meanEndpoints` barrier.
   */
  lossBarrierInterpolated: number;
  /** The same for the error rate. */
  errorBarrierInterpolated: number;
}

/** The `meanEndpoints` barrier of a series: its largest excess over the mean of its two endpoints. */
export function barrier(series: readonly number[]): number {
  const ends = ((series[0] as number) + (series[series.length - 1] as number)) / 2;
  return Math.max(...series.map((v) => v - ends));
}

/**
 * The `interpolated` barrier of a series along `alphas` (0 to 1): its largest excess over the straight line between
 * its endpoints' values. 0 for a path that never rises above that line (the endpoints themselves are on it).
 */
export function interpolatedBarrier(alphas: readonly number[], series: readonly number[]): number {
  const [first, last] = [series[0] as number, series[series.length - 1] as number];
  return Math.max(
    ...series.map((v, k) => v - ((1 - (alphas[k] as number)) * first + (alphas[k] as number) * last)),
  );
}

/** The straight path from θa (α = 0) to θb (α = 1), default 21 points, and its loss and error barriers. */
export async function linearPath(
  objective: Objective,
  thetaA: Vec,
  thetaB: Vec,
  opts: { points?: number } & Progress = {},
): Promise<LinearPath> {
  const alphas = linspace(0, 1, opts.points ?? 21);
  const diff = along(thetaB, [[-1, thetaA]]);
  const values = await evaluatePoints(
    objective,
    alphas.map((a) => () => along(thetaA, [[a, diff]])),
    opts,
  );
  return {
    alphas,
    values,
    lossBarrier: barrier(values.map((v) => v.loss)),
    errorBarrier: barrier(values.map((v) => v.error)),
    lossBarrierInterpolated: interpolatedBarrier(
      alphas,
      values.map((v) => v.loss),
    ),
    errorBarrierInterpolated: interpolatedBarrier(
      alphas,
      values.map((v) => v.error),
    ),
  };
}
