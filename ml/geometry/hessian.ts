/**
 * Curvature of the loss in the free subspace: Hessian-vector products, the top eigenvalues (power iteration with
 * deflation, as PyHessian) and the trace (Hutchinson, Rademacher vectors), per layer too.
 *
 * Hv is exact: the objective's double backward (ml/second-order.ts), the Hessian autograd gives, with a ReLU
 * network's activation pattern and max-pool's argmax held at the point. (Central differences of gradients are not
 * an HVP on such networks: any step float32 resolves moves some pre-activations across zero, and each crossing adds
 * a gradient jump that does not shrink with the step; ../../../shared/REFERENCES.md.) The measures' revision in
 * measure-config.ts names the method in every stored result's key, so results of the old one are never reused.
 */
import { MlInputError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';
import type { Objective } from './objective.js';
import { dot, norm, rademacher, restrict, scale, unitDirection, type Vec } from './space.js';

/** H·v in the free subspace (v's pruned coordinates are ignored; the product is 0 there). */
export async function hessianVectorProduct(objective: Objective, theta: Vec, v: Vec): Promise<Vec> {
  if (norm(restrict(objective.space, Float64Array.from(v))) === 0) return new Float64Array(v.length);
  return objective.hessianVectorProduct(theta, v);
}

export interface Eigenpair {
  value: number;
  vector: Vec;
  iterations: number;
}

/** Where power iteration stands: the pairs found, and the one being iterated. */
export interface EigenState {
  found: Eigenpair[];
  current: { vector: Vec; iteration: number; previous: number | null } | null;
}

/** Makes v orthogonal to every vector of `basis` (unit vectors), in place (modified Gram-Schmidt). */
function orthogonalize(v: Vec, basis: readonly Vec[]): void {
  for (const b of basis) {
    const c = dot(v, b);
    for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) - c * (b[i] as number);
  }
}

/**
 * The k eigenvalues of largest magnitude of the Hessian in the free subspace, largest first: power iteration on
 * Hv, each start vector seeded from `seed` and its index, kept orthogonal to the eigenvectors already found, until
 * the Rayleigh quotient changes by less than `tol` relative (or `maxIterations`).
 */
export async function topEigenvalues(
  objective: Objective,
  theta: Vec,
  opts: {
    k?: number;
    maxIterations?: number;
    tol?: number;
    seed?: number;
    resume?: EigenState;
    onIteration?: (state: EigenState) => void | Promise<void>;
  } = {},
): Promise<Eigenpair[]> {
  const k = opts.k ?? 5;
  const maxIterations = opts.maxIterations ?? 100;
  const tol = opts.tol ?? 1e-3;
  if (!Number.isInteger(k) || k < 1 || k > objective.space.freeCount) {
    throw new MlInputError(`k must be an integer in 1..${objective.space.freeCount}, got ${k}`);
  }
  const found = [...(opts.resume?.found ?? [])];
  let current = opts.resume?.current ?? null;
  while (found.length < k) {
    const index = found.length;
    const basis = found.map((p) => p.vector);
    if (!current) {
      const start = unitDirection(objective.space, new Rng(deriveSeed(opts.seed ?? 0, 'eigen', index)));
      current = { vector: start, iteration: 0, previous: null };
    }
    let { vector, iteration, previous } = current;
    let value = previous ?? 0;
    for (;;) {
      orthogonalize(vector, basis);
      vector = scale(vector, 1 / norm(vector));
      const hv = await hessianVectorProduct(objective, theta, vector);
      value = dot(vector, hv);
      iteration++;
      const converged = previous !== null && Math.abs(value - previous) <= tol * (Math.abs(previous) + 1e-12);
      const hvNorm = norm(hv);
      // Hv = 0: v is in the kernel; its eigenvalue is 0 and power iteration cannot move.
      if (hvNorm > 0) vector = scale(hv, 1 / hvNorm);
      previous = value;
      if (converged || iteration >= maxIterations || hvNorm === 0) break;
      current = { vector, iteration, previous };
      await opts.onIteration?.({ found: [...found], current });
    }
    orthogonalize(vector, basis);
    found.push({ value, vector: scale(vector, 1 / norm(vector)), iterations: iteration });
    current = null;
    await opts.onIteration?.({ found: [...found], current: null });
  }
  return found.sort((a, b) => b.value - a.value);
}

export interface TraceEstimate {
  /** Mean of vᵀHv over the samples. */
  trace: number;
  /** Its standard error: the samples' standard deviation over √samples. */
  standardError: number;
  samples: number[];
}

/** Hutchinson's estimate of tr(H) in the free subspace from `samples` Rademacher vectors (default 100). */
export async function hessianTrace(
  objective: Objective,
  theta: Vec,
  opts: {
    samples?: number;
    seed?: number;
    resume?: number[];
    onSample?: (samples: number[]) => void | Promise<void>;
  } = {},
): Promise<TraceEstimate> {
  const count = opts.samples ?? 100;
  if (!Number.isInteger(count) || count < 2)
    throw new MlInputError(`samples must be an integer >= 2, got ${count}`);
  const samples = [...(opts.resume ?? [])];
  while (samples.length < count) {
    const v = rademacher(objective.space, new Rng(deriveSeed(opts.seed ?? 0, 'hutchinson', samples.length)));
    samples.push(dot(v, await hessianVectorProduct(objective, theta, v)));
    await opts.onSample?.([...samples]);
  }
  const mean = samples.reduce((a, b) => a + b, 0) / count;
  const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (count - 1);
  return { trace: mean, standardError: Math.sqrt(variance / count), samples };
}
