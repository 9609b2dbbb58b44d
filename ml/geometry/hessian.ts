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
import { dot, norm, rademacher, restrict, scale, unitDirection, type ParamSpace, type Vec } from './space.js';

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

/** 1 on the free coordinates of parameter `block` (all of them when absent), 0 elsewhere. */
function supportOf(space: ParamSpace, block?: string): Uint8Array {
  if (block === undefined) return space.free;
  const at = space.params.findIndex((p) => p.name === block);
  if (at < 0) throw new MlInputError(`'${block}' is not a parameter of the model`);
  const start = space.offsets[at] as number;
  const end = at + 1 < space.params.length ? (space.offsets[at + 1] as number) : space.size;
  const out = new Uint8Array(space.size);
  for (let i = start; i < end; i++) out[i] = space.free[i] as number;
  return out;
}

function within(support: Uint8Array, v: Vec): Vec {
  for (let i = 0; i < v.length; i++) if (!support[i]) v[i] = 0;
  return v;
}

/**
 * The k eigenvalues of largest magnitude of the Hessian in the free subspace, largest first: power iteration on
 * Hv, each start vector seeded from `seed` and its index, kept orthogonal to the eigenvectors already found, until
 * the Rayleigh quotient changes by less than `tol` relative (or `maxIterations`). With `block`, those of the
 * Hessian's diagonal block of that one parameter (the curvature of one layer with the others held fixed).
 */
export async function topEigenvalues(
  objective: Objective,
  theta: Vec,
  opts: {
    k?: number;
    maxIterations?: number;
    tol?: number;
    seed?: number;
    block?: string;
    resume?: EigenState;
    onIteration?: (state: EigenState) => void | Promise<void>;
  } = {},
): Promise<Eigenpair[]> {
  const k = opts.k ?? 5;
  const maxIterations = opts.maxIterations ?? 100;
  const tol = opts.tol ?? 1e-3;
  const support = supportOf(objective.space, opts.block);
  const dimension = support.reduce((a, b) => a + b, 0);
  if (!Number.isInteger(k) || k < 1 || k > dimension) {
    throw new MlInputError(`k must be an integer in 1..${dimension}, got ${k}`);
  }
  const found = [...(opts.resume?.found ?? [])];
  let current = opts.resume?.current ?? null;
  while (found.length < k) {
    const index = found.length;
    const basis = found.map((p) => p.vector);
    if (!current) {
      const rng = new Rng(deriveSeed(opts.seed ?? 0, 'eigen', ...(opts.block ? [opts.block] : []), index));
      const start = within(support, unitDirection(objective.space, rng));
      current = { vector: start, iteration: 0, previous: null };
    }
    let { vector, iteration, previous } = current;
    let value = previous ?? 0;
    for (;;) {
      orthogonalize(vector, basis);
      vector = scale(vector, 1 / norm(vector));
      const hv = within(support, await hessianVectorProduct(objective, theta, vector));
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

export interface TraceSamples {
  /** vᵀHv of each probe. */
  total: number[];
  /** v_bᵀ(Hv)_b of each probe, per block b named in `blocks`: an unbiased estimate of that block's trace. */
  blocks: Record<string, number[]>;
}

export interface TraceEstimate {
  /** Mean of vᵀHv over the samples. */
  trace: number;
  /** Its standard error: the samples' standard deviation over √samples. */
  standardError: number;
  samples: number[];
  /** The trace of each named block's diagonal Hessian block, from the same probes. */
  blocks: Record<string, { trace: number; standardError: number }>;
  raw: TraceSamples;
}

function meanAndError(samples: readonly number[]): { mean: number; standardError: number } {
  const n = samples.length;
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : Infinity;
  return { mean, standardError: Math.sqrt(variance / n) };
}

/**
 * Hutchinson's estimate of tr(H) in the free subspace from Rademacher probes: at least `minSamples` (default 10),
 * then until the standard error is at most `relativeError` (default 0.05) of |trace|, at most `samples` (default
 * 100; `relativeError: 0` always takes `samples`). The same probes give the trace of each parameter's diagonal block
 * named in `blocks`.
 */
export async function hessianTrace(
  objective: Objective,
  theta: Vec,
  opts: {
    samples?: number;
    minSamples?: number;
    relativeError?: number;
    blocks?: readonly string[];
    seed?: number;
    resume?: TraceSamples;
    onSample?: (samples: TraceSamples) => void | Promise<void>;
  } = {},
): Promise<TraceEstimate> {
  const cap = opts.samples ?? 100;
  const relativeError = opts.relativeError ?? 0.05;
  const minSamples = Math.min(opts.minSamples ?? 10, cap);
  if (!Number.isInteger(cap) || cap < 2)
    throw new MlInputError(`samples must be an integer >= 2, got ${cap}`);
  if (!Number.isInteger(minSamples) || minSamples < 2)
    throw new MlInputError(`minSamples must be an integer >= 2, got ${opts.minSamples}`);
  if (!(relativeError >= 0)) throw new MlInputError(`relativeError must be >= 0, got ${relativeError}`);
  const space = objective.space;
  const names = [...(opts.blocks ?? [])];
  const supports = names.map((name) => supportOf(space, name));
  const raw: TraceSamples = {
    total: [...(opts.resume?.total ?? [])],
    blocks: Object.fromEntries(names.map((n) => [n, [...(opts.resume?.blocks[n] ?? [])]])),
  };
  const done = () => {
    const n = raw.total.length;
    if (n >= cap) return true;
    if (n < minSamples || relativeError === 0) return false;
    const { mean, standardError } = meanAndError(raw.total);
    return standardError <= relativeError * Math.abs(mean);
  };
  while (!done()) {
    const v = rademacher(space, new Rng(deriveSeed(opts.seed ?? 0, 'hutchinson', raw.total.length)));
    const hv = await hessianVectorProduct(objective, theta, v);
    raw.total.push(dot(v, hv));
    names.forEach((name, b) => {
      const support = supports[b] as Uint8Array;
      let s = 0;
      for (let i = 0; i < v.length; i++) if (support[i]) s += (v[i] as number) * (hv[i] as number);
      (raw.blocks[name] as number[]).push(s);
    });
    await opts.onSample?.({ total: [...raw.total], blocks: structuredClone(raw.blocks) });
  }
  const total = meanAndError(raw.total);
  return {
    trace: total.mean,
    standardError: total.standardError,
    samples: raw.total,
    blocks: Object.fromEntries(
      names.map((n) => {
        const e = meanAndError(raw.blocks[n] as number[]);
        return [n, { trace: e.mean, standardError: e.standardError }];
      }),
    ),
    raw,
  };
}
