/**
 * How flat and how wide the minimum is, in the free subspace (../../../shared/REFERENCES.md):
 *
 *  - ε-sharpness (Keskar et al. 2017): the largest loss increase in the box |δᵢ| ≤ ε(|θᵢ| + 1), relative to
 *    1 + L(θ), in percent. The maximum is searched by projected sign-gradient ascent from a seeded random point of
 *    the box (Keskar used L-BFGS-B): a lower bound of the true maximum, the same search for every solution.
 *  - PAC-Bayes σ (Jiang et al. 2020): the largest σ with E_u~N(0, σ²I)[L(θ + u)] − L(θ) ≤ δ, the expectation over
 *    a fixed set of Gaussian draws (common random numbers, so the deviation is a smooth function of σ), σ found by
 *    bisection on log σ.
 *  - Basin radius (Huang et al.): along each of M random unit directions u, the distance r(u) at which
 *    L(θ + r·u) − L(θ) reaches τ (bracketed by doubling, then bisection; for a loss that rises and falls again
 *    along u this is a crossing, not necessarily the first).
 *  - Log-volume: the basin as a star-shaped region with those radii, vol ≈ V_n · mean over u of r(u)ⁿ, V_n the
 *    volume of the unit n-ball and n the number of free parameters; returned as a natural log. With n in the
 *    hundreds of thousands it is dominated by the largest radii; the mean log-radius is returned beside it.
 */
import { MlInputError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';
import type { Objective } from './objective.js';
import { axpy, gaussian, unitDirection, type Vec } from './space.js';

export interface Sharpness {
  /** 100 · (max L(θ + δ) − L(θ)) / (1 + L(θ)). */
  sharpness: number;
  loss: number;
  maxLoss: number;
}

export async function epsSharpness(
  objective: Objective,
  theta: Vec,
  opts: { epsilon?: number; steps?: number; seed?: number } = {},
): Promise<Sharpness> {
  const epsilon = opts.epsilon ?? 1e-3;
  const steps = opts.steps ?? 10;
  if (!(epsilon > 0)) throw new MlInputError(`epsilon must be > 0, got ${epsilon}`);
  if (!Number.isInteger(steps) || steps < 1)
    throw new MlInputError(`steps must be an integer >= 1, got ${steps}`);
  const { free } = objective.space;
  const box = theta.map((t, i) => (free[i] ? epsilon * (Math.abs(t) + 1) : 0));
  // PGD's usual step: 2.5 box widths over the number of steps, so the search can cross the box and come back.
  const stepSize = 2.5 / steps;
  const base = await objective.value(theta);
  let maxLoss = base.loss;
  // A seeded random start inside the box: at a minimum the gradient is 0 and the ascent could not leave δ = 0.
  const rng = new Rng(deriveSeed(opts.seed ?? 0, 'eps-sharpness'));
  const delta = box.map((b) => (b === 0 ? 0 : (2 * rng.float() - 1) * b));
  for (let s = 0; s < steps; s++) {
    const { loss, gradient } = await objective.gradient(axpy(theta, 1, delta));
    maxLoss = Math.max(maxLoss, loss);
    for (let i = 0; i < delta.length; i++) {
      const b = box[i] as number;
      const g = gradient[i] as number;
      const next = (delta[i] as number) + stepSize * b * Math.sign(g);
      delta[i] = Math.min(b, Math.max(-b, next));
    }
  }
  maxLoss = Math.max(maxLoss, (await objective.value(axpy(theta, 1, delta))).loss);
  return { sharpness: (100 * (maxLoss - base.loss)) / (1 + base.loss), loss: base.loss, maxLoss };
}

export interface PacBayesSigma {
  sigma: number;
  /** E[f(θ + σz)] − f(θ) at that σ, f the training error or loss (`on`). */
  deviation: number;
}

/**
 * Jiang et al.'s PAC-Bayes flatness: the largest σ with E_z[f(θ + σz)] − f(θ) ≤ `deviation`, z ~ N(0, I) on the free
 * coordinates (`samples` fixed draws), found by bisection of log σ. f is the training 0-1 error by default, as the
 * paper and its code define it; `on: 'loss'` is the cross-entropy variant (name it so when reporting it).
 */
export async function pacBayesSigma(
  objective: Objective,
  theta: Vec,
  opts: { on?: 'error' | 'loss'; deviation?: number; samples?: number; steps?: number; seed?: number } = {},
): Promise<PacBayesSigma> {
  const target = opts.deviation ?? 0.1;
  const on = opts.on ?? 'error';
  const samples = opts.samples ?? 10;
  const steps = opts.steps ?? 16;
  if (!(target > 0)) throw new MlInputError(`deviation must be > 0, got ${target}`);
  const draws = Array.from({ length: samples }, (_, m) =>
    gaussian(objective.space, new Rng(deriveSeed(opts.seed ?? 0, 'pac-bayes', m))),
  );
  const base = (await objective.value(theta))[on];
  if (!Number.isFinite(base))
    throw new MlInputError(`pac-bayes on '${on}' needs an objective with a finite ${on}`);
  const deviationAt = async (sigma: number) => {
    let sum = 0;
    for (const z of draws) sum += (await objective.value(axpy(theta, sigma, z)))[on];
    return sum / samples - base;
  };
  // Bracket on a log scale, then bisect log σ.
  let lo = 1e-6;
  let hi = 1e-3;
  while ((await deviationAt(hi)) <= target) {
    lo = hi;
    hi *= 10;
    if (hi > 1e3) return { sigma: hi, deviation: await deviationAt(hi) };
  }
  for (let s = 0; s < steps; s++) {
    const mid = Math.sqrt(lo * hi);
    if ((await deviationAt(mid)) <= target) lo = mid;
    else hi = mid;
  }
  return { sigma: lo, deviation: await deviationAt(lo) };
}

export interface BasinEstimate {
  /** r(u) for each direction. */
  radii: number[];
  threshold: number;
  /** Free parameters: the dimension of the ball. */
  dimension: number;
  /** ln(V_n) + ln(mean of rⁿ). */
  logVolume: number;
  /** mean of ln r. */
  meanLogRadius: number;
}

/** ln Γ(x) for x > 0: Stirling's series above 10, the recurrence Γ(x) = Γ(x + 1)/x below. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new Error(`logGamma needs x > 0, got ${x}`);
  let shift = 0;
  while (x < 10) {
    shift += Math.log(x);
    x += 1;
  }
  const inv = 1 / x;
  const inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)));
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

/** ln of the volume of the unit ball in n dimensions: (n/2)·ln π − ln Γ(n/2 + 1). */
export function logUnitBallVolume(n: number): number {
  return (n / 2) * Math.log(Math.PI) - logGamma(n / 2 + 1);
}

/** ln(V_n · mean of rᵢⁿ), computed in logs (rⁿ overflows for any useful n). */
export function logVolume(radii: readonly number[], n: number): number {
  const logs = radii.map((r) => n * Math.log(r));
  const top = Math.max(...logs);
  const meanExp = logs.reduce((s, l) => s + Math.exp(l - top), 0) / radii.length;
  return logUnitBallVolume(n) + top + Math.log(meanExp);
}

export async function basinRadii(
  objective: Objective,
  theta: Vec,
  opts: {
    directions?: number;
    threshold?: number;
    steps?: number;
    seed?: number;
    resume?: number[];
    onRadius?: (radii: number[]) => void | Promise<void>;
  } = {},
): Promise<BasinEstimate> {
  const count = opts.directions ?? 20;
  const threshold = opts.threshold ?? 0.1;
  const steps = opts.steps ?? 20;
  if (!Number.isInteger(count) || count < 1)
    throw new MlInputError(`directions must be an integer >= 1, got ${count}`);
  if (!(threshold > 0)) throw new MlInputError(`threshold must be > 0, got ${threshold}`);
  const base = (await objective.value(theta)).loss;
  const rise = async (u: Vec, r: number) => (await objective.value(axpy(theta, r, u))).loss - base;
  const radii = [...(opts.resume ?? [])];
  while (radii.length < count) {
    const u = unitDirection(objective.space, new Rng(deriveSeed(opts.seed ?? 0, 'basin', radii.length)));
    let lo = 0;
    let hi = 1;
    while ((await rise(u, hi)) < threshold) {
      lo = hi;
      hi *= 2;
      if (hi > 1e9) throw new Error('basinRadii: the loss never reaches the threshold along a direction');
    }
    for (let s = 0; s < steps; s++) {
      const mid = (lo + hi) / 2;
      if ((await rise(u, mid)) < threshold) lo = mid;
      else hi = mid;
    }
    radii.push((lo + hi) / 2);
    await opts.onRadius?.([...radii]);
  }
  const n = objective.space.freeCount;
  return {
    radii,
    threshold,
    dimension: n,
    logVolume: logVolume(radii, n),
    meanLogRadius: radii.reduce((s, r) => s + Math.log(r), 0) / radii.length,
  };
}
